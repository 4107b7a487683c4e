"""Text that PostgreSQL cannot hold as it is: a NUL character.

A run id, a workflow name or an event key may contain ``\\x00`` (the memory
and SQLite stores keep it), but a PostgreSQL ``text`` value cannot. The
store's connections escape it on the way in and back on the way out, for
every string parameter and every text column, so everything round-trips
unchanged: ``\\x00`` is written as U+FFFF followed by ``0``, and U+FFFF
itself (a noncharacter, rare in text) as U+FFFF followed by ``e``. Text
without either character, nearly all of it, passes through untouched.
"""

from __future__ import annotations

import re
from typing import Any

from psycopg.adapt import Buffer
from psycopg.types.string import StrDumperUnknown, TextLoader

__all__ = ["escape", "register", "unescape"]

_ESC = "\uffff"
_ESCAPED = re.compile(_ESC + "(.)", re.DOTALL)


def escape(text: str) -> str:
    """``text`` with NUL and U+FFFF escaped (reversibly)."""
    if "\x00" not in text and _ESC not in text:
        return text
    return text.replace(_ESC, _ESC + "e").replace("\x00", _ESC + "0")


def unescape(text: str) -> str:
    """The text :func:`escape` was given."""
    if _ESC not in text:
        return text
    return _ESCAPED.sub(lambda m: "\x00" if m.group(1) == "0" else _ESC, text)


class _Dumper(StrDumperUnknown):
    def dump(self, obj: str) -> Buffer | None:
        return super().dump(escape(obj))


class _Loader(TextLoader):
    def load(self, data: Buffer) -> Any:
        value = super().load(data)
        return unescape(value) if isinstance(value, str) else value


def register(conn: Any) -> None:
    """Make ``conn`` escape strings it sends and unescape text it receives."""
    conn.adapters.register_dumper(str, _Dumper)
    for name in ("text", "varchar", "bpchar", "name"):
        conn.adapters.register_loader(name, _Loader)
