"""The PostgreSQL store (``pip install 'spindle[postgres]'``): one database that many
``spindle worker`` processes, on many machines, share.

``--store postgresql://user@host/db`` (or ``SPINDLE_STORE``, or ``store =`` in
``spindle.toml``) selects it. See :class:`PostgresStore` for its URL options and
``docs/deployment.md`` for running it.
"""

from __future__ import annotations

try:
    import psycopg  # noqa: F401
    import psycopg_pool  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised without the extra installed
    raise ImportError(
        f"the PostgreSQL store needs psycopg 3 and psycopg_pool ({exc}); install them with: "
        "pip install 'spindle[postgres]'"
    ) from exc

from spindle.contrib.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
