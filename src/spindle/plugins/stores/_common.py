"""Plumbing the built-in stores share: compact JSON, store URLs, atomic files.

The rules every store must apply alike (ledger continuity, fencing, lease
eligibility, digests) are in :mod:`spindle.core.store`; this module holds
only how the memory and SQLite stores encode and write things.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from spindle.core.errors import ConfigError, RunNotFound, StoreCorrupt, StoreError
from spindle.core.model import converter

__all__ = [
    "dumps",
    "parse_options",
    "run_not_found",
    "split_url",
    "stored",
    "to_json",
    "write_atomically",
]

T = TypeVar("T")


def _refuse(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _make_dumps() -> Callable[[Any], str]:
    # ``json.dumps`` builds a new C encoder on every call, a measurable part of
    # a commit on the hot path (two encodings per step); build one once and
    # reuse it. ``c_make_encoder`` is None on interpreters without ``_json``.
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    encode = make(None, _refuse, json.encoder.encode_basestring, None, ":", ",", False, False, True)

    def dumps(value: Any) -> str:
        return "".join(encode(value, 0))

    return dumps


#: Compact JSON text of plain data (the stores' on-disk encoding).
dumps = _make_dumps()


def to_json(value: Any, what: str) -> str:
    """Serialize user data (an event payload, a definition) as JSON text.

    The project converter runs first, so attrs objects, enums and datetimes in
    the value become JSON data as they would anywhere else in spindle.

    Raises:
        StoreError: the value cannot be represented as JSON.
    """
    try:
        # Plain data (most of it: a definition is) encodes as it is; the converter,
        # which walks every container, runs only for what the encoder refused.
        return dumps(value)
    except (TypeError, ValueError, RecursionError):
        pass
    try:
        return dumps(converter.unstructure(value))
    except (TypeError, ValueError, RecursionError) as exc:
        raise StoreError(
            f"{what} is not JSON-serializable ({exc}); use dicts, lists, strings, "
            "numbers, booleans and null"
        ) from exc


def stored(body: str, cls: type[T], what: str, where: str, medium: str) -> T:
    """``cls`` from the JSON text ``body`` a store kept (``where``: the store, ``medium``:
    what holds it, for the message).

    Raises:
        StoreCorrupt: the text is not what spindle wrote.
    """
    try:
        return converter.structure(json.loads(body), cls)
    except Exception as exc:
        raise StoreCorrupt(
            f"{where}: the stored {what} cannot be read ({exc}); the {medium} was edited "
            "or written by an incompatible spindle"
        ) from exc


def run_not_found(run_id: str, where: str) -> RunNotFound:
    """The error for a run a durable store does not hold."""
    return RunNotFound(
        f"run {run_id!r} not found in {where}; check the id with 'spindle runs' and the store URL"
    )


# --- URLs and options -----------------------------------------------------------


def split_url(url: str, scheme: str) -> tuple[str, dict[str, str]]:
    """Split ``scheme://rest?a=b`` into ``rest`` and its query options.

    Raises:
        ConfigError: the URL has another scheme or a malformed query.
    """
    prefix = f"{scheme}://"
    if not url.startswith(prefix):
        raise ConfigError(f"store URL {url!r} does not start with {prefix!r}")
    rest, _, query = url[len(prefix) :].partition("?")
    try:
        options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError as exc:
        raise ConfigError(f"store URL {url!r}: malformed query string ({exc})") from exc
    return rest, options


def parse_options(
    url: str, query: Mapping[str, str], parsers: Mapping[str, Callable[[str], Any]]
) -> dict[str, Any]:
    """Convert URL query strings into typed store options.

    Raises:
        ConfigError: an option is unknown or its value does not parse.
    """
    options: dict[str, Any] = {}
    for name, text in query.items():
        parse = parsers.get(name)
        if parse is None:
            known = ", ".join(sorted(parsers)) or "(none)"
            raise ConfigError(f"store URL {url!r}: unknown option {name!r}; known options: {known}")
        try:
            options[name] = parse(text)
        except ValueError as exc:
            raise ConfigError(
                f"store URL {url!r}: option {name}={text!r} is invalid ({exc})"
            ) from exc
    return options


# --- files ---------------------------------------------------------------------


def write_atomically(target: Path, data: bytes, *, fsync: bool) -> None:
    """Write ``data`` to ``target`` so readers see all of it or nothing.

    The data goes to a temporary file in the same directory, which is then
    renamed over ``target``. With ``fsync`` the file and the rename are
    flushed to disk too (for ``durability="full"``).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            if fsync:
                file.flush()
                os.fsync(file.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    if fsync:
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
