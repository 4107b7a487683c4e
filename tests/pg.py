"""The PostgreSQL server the tests use: ``SPINDLE_TEST_POSTGRES_URL``, which ``.ci/run``
sets after starting a throwaway cluster (``.ci/postgres.sh``).

Each store under test gets a fresh schema of its own (dropped when the session
ends), so tests never see each other's runs. Without a server the PostgreSQL
tests are skipped with the reason on a developer's machine and fail in CI
(``CI=true``): there the server must run.
"""

from __future__ import annotations

import os
import uuid
from urllib.parse import quote

import pytest

#: Read when the tests are collected: the isolating fixture clears SPINDLE_* later.
POSTGRES_URL = os.environ.get("SPINDLE_TEST_POSTGRES_URL", "")
_SCHEMAS: list[str] = []

REASON = (
    "no PostgreSQL server for the tests: set SPINDLE_TEST_POSTGRES_URL, or run "
    'eval "$(.ci/postgres.sh start)" first'
)


def require_server() -> str:
    """The server's URL; skips (or, in CI, fails) the test when there is none."""
    if not POSTGRES_URL:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true but {REASON}")
        pytest.skip(REASON)
    return POSTGRES_URL


def postgres_url(**options: str) -> str:
    """A store URL of a fresh, empty schema on the test server (its own tables)."""
    import psycopg

    base = require_server()
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")  # type: ignore[arg-type]
    _SCHEMAS.append(schema)
    query = {"options": f"-csearch_path={schema}", "retry_for": "5", **options}
    sep = "&" if "?" in base else "?"
    return base + sep + "&".join(f"{k}={quote(v)}" for k, v in query.items())


def drop_schemas() -> None:
    """Drop every schema :func:`postgres_url` made."""
    if not (POSTGRES_URL and _SCHEMAS):
        return
    import psycopg

    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        for schema in _SCHEMAS:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")  # type: ignore[arg-type]
    _SCHEMAS.clear()
