"""Find ``spindle.*`` entry points through ``importlib.metadata``, and cache the answer.

``importlib.metadata`` is the source of truth: each metadata directory
(``*.dist-info`` / ``*.egg-info``) of a ``sys.path`` entry is opened as a
``Distribution`` (``Distribution.at``), which gives its ``entry_points.txt``
and its name and version from the core metadata. Only the ``spindle.*``
sections are kept; they are parsed here, line by line, because
``importlib.metadata``'s own parser rejects a whole file for one malformed
line (and keeps the spaces of ``[ group ]``), and one broken distribution
must never hide the entry points of the others or crash discovery.

Parsing the metadata of every installed distribution on each process start
is O(installed distributions), so the answer is kept in a small JSON cache
layered over ``importlib.metadata``. The cache holds one record per
``sys.path`` entry: the entry's *listing* (each metadata directory name with
the mtime of its ``entry_points.txt``) and the entry points found there. On
start-up each entry is listed again (one ``listdir`` and one ``stat`` per
metadata directory, no file read); an entry whose listing is unchanged
reuses its record without importing ``importlib.metadata`` at all, any other
entry is scanned through it again. The scan opens exactly the listed
directories, so a record always describes the set its listing names.
Installing or removing a distribution adds or removes a metadata directory
and rewriting one changes its mtime, so the cache never needs manual
invalidation; keeping records per entry means a different working directory
(``python -m`` puts it on ``sys.path``) only rescans that one entry. The file
is per interpreter and written atomically (temp file + ``os.replace``), so
processes sharing it never read half a file; when the directory is not
writable the result is simply not kept.

This module is on the path of ``spindle --help``: it imports only the
standard library, nothing heavy (no attrs), and ``importlib.metadata`` only
when an entry has to be scanned.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

__all__ = [
    "EntryPointInfo",
    "cache_dir",
    "cache_file",
    "discover",
    "normalize_name",
    "scan_entry",
    "scan_path",
    "write_atomic",
]

_CACHE_FORMAT = 4  # bump when the scan or the record layout changes
_PREFIX = "spindle."
#: Records kept for sys.path entries not on the current path (other venvs' cwd...).
_MAX_STALE_ENTRIES = 64

#: One metadata dir under a sys.path entry: ``(dirname, mtime_ns of entry_points.txt or -1)``.
Listing = list[tuple[str, int]]


class EntryPointInfo(NamedTuple):
    """One ``spindle.*`` entry point as declared in metadata (nothing imported).

    Attributes:
        group: plugin group without the prefix (``runtime``).
        kind: the entry-point name.
        value: ``module:attr``.
        distribution: the distribution's name as its metadata spells it.
        version: the distribution's version.
        location: the ``sys.path`` entry it was found under.
    """

    group: str
    kind: str
    value: str
    distribution: str
    version: str
    location: str

    @property
    def spec(self) -> str:
        """The entry point as written in metadata: ``spindle.runtime:command = mod:Cls``."""
        return f"{_PREFIX}{self.group}:{self.kind} = {self.value}"


def cache_dir() -> str:
    """Where the discovery cache lives: ``$SPINDLE_CACHE_DIR`` or the user cache dir."""
    env = os.environ.get("SPINDLE_CACHE_DIR")
    if env:
        return env
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "spindle")


def cache_file() -> str:
    """The cache file of this interpreter (one per ``sys.executable``)."""
    import binascii  # builtin module: cheaper than hashlib for a file-name tag

    tag = binascii.crc32(os.fsencode(sys.executable or "python"))
    return os.path.join(cache_dir(), f"entry-points-{tag:08x}.json")


_SEPARATORS = re.compile(r"[-_.]+")


def normalize_name(name: str) -> str:
    """Normalize a distribution name for comparison (PEP 503: ``My_Pkg`` → ``my-pkg``)."""
    key = name.lower().replace("_", "-").replace(".", "-")
    # str.replace is enough unless separators repeat ("a__b"), which is rare.
    return _SEPARATORS.sub("-", key) if "--" in key else key


def _entry_key(entry: str) -> str:
    # "" means the current directory; key it by where that is right now.
    return os.path.abspath(entry) if entry in ("", ".") else entry


def list_entry(entry: str) -> Listing:
    """List the metadata directories of one ``sys.path`` entry with their mtimes.

    Returns an empty list for entries that are not directories (zip files,
    missing paths).
    """
    found: Listing = []
    try:
        names = [n for n in os.listdir(entry or ".") if n.endswith((".dist-info", ".egg-info"))]
    except OSError:
        return found
    # This runs for every installed distribution on every start-up: plain
    # string building, not os.path.join.
    base = (entry or ".") + os.sep
    stat = os.stat
    for name in sorted(names):
        try:
            mtime = stat(f"{base}{name}{os.sep}entry_points.txt").st_mtime_ns
        except OSError:
            mtime = -1
        found.append((name, mtime))
    return found


def _name_from_dir(dirname: str) -> tuple[str, str]:
    """``(name, version)`` spelled by a metadata directory's name (``my_pkg-1.0.dist-info``)."""
    stem = dirname.rsplit(".", 1)[0]
    name, _, version = stem.partition("-")
    return name.replace("_", "-"), version


def _parse_entry_points(text: str) -> Iterable[tuple[str, str, str]]:
    """Yield ``(group, name, value)`` for ``spindle.*`` sections of an entry_points.txt.

    Tolerant where ``importlib.metadata.EntryPoints`` is not: comment lines
    (``#`` or ``;``), spaces inside ``[ group ]`` and lines without ``=`` are
    skipped instead of failing the whole file.
    """
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            continue
        if section is None or not section.startswith(_PREFIX):
            continue
        name, sep, value = line.partition("=")
        if sep and name.strip():
            # "module:attr [extra1, extra2]": the extras do not name the object
            yield section[len(_PREFIX) :], name.strip(), value.partition("[")[0].strip()


def scan_entry(entry: str, listing: Sequence[tuple[str, int]]) -> list[EntryPointInfo]:
    """Read the distributions of one ``sys.path`` entry (its ``listing``) with importlib.metadata.

    Each listed metadata directory with an ``entry_points.txt`` is opened as
    an ``importlib.metadata.Distribution``; its name and version come from
    its core metadata (``METADATA``, or ``PKG-INFO`` for egg-info), falling
    back to the directory name when the metadata lacks them or cannot be
    decoded. Within the entry, the first metadata directory of a distribution
    wins (stale copies left by a broken upgrade are ignored). A distribution
    whose ``entry_points.txt`` cannot be read is skipped.
    """
    if all(mtime < 0 for _, mtime in listing):
        # Nothing declares entry points here (a new working directory on sys.path):
        # no need to import importlib.metadata, which the warm path never imports.
        return []
    from importlib.metadata import Distribution

    out: list[EntryPointInfo] = []
    seen: set[str] = set()
    base = entry or "."
    for dirname, mtime in listing:
        if mtime < 0:
            continue  # no entry_points.txt: nothing declared
        # The listed directories, not distributions(path=[entry]): the scan
        # must read exactly what the cache record's listing names, in its
        # (sorted, so deterministic) order; distributions() yields os.listdir
        # order and also looks into zip files the listing cannot see change.
        dist = Distribution.at(os.path.join(base, dirname))
        try:
            text = dist.read_text("entry_points.txt") or ""
        except (OSError, ValueError):  # unreadable, or not UTF-8
            continue
        if _PREFIX not in text:
            continue  # only distributions declaring spindle groups pay for the metadata
        name, version = _name_from_dir(dirname)
        try:
            meta = dist.metadata
        except (OSError, ValueError):
            pass  # undecodable core metadata: the directory name still says who it is
        else:
            # PackageMetadata has no .get() on 3.11, and indexing a missing
            # key is deprecated from 3.12 on: test membership first.
            headers = {key: meta[key] for key in ("Name", "Version") if key in meta}
            name = headers.get("Name") or name
            version = headers.get("Version") or version
        version = version or "unknown"
        key = normalize_name(name)
        if key in seen:
            continue
        seen.add(key)
        for group, kind, value in _parse_entry_points(text):
            out.append(EntryPointInfo(group, kind, value, name, version, entry))
    return out


def _merge(per_entry: Iterable[list[EntryPointInfo]]) -> list[EntryPointInfo]:
    """Concatenate entries in path order; a distribution seen earlier shadows later copies.

    A distribution found under two ``sys.path`` entries is the same package
    shadowed, exactly as the import system resolves it, so only the first counts.
    """
    out: list[EntryPointInfo] = []
    claimed: set[str] = set()
    keys: dict[str, str] = {}
    for eps in per_entry:
        here: set[str] = set()
        for ep in eps:
            key = keys.get(ep.distribution)
            if key is None:
                key = keys[ep.distribution] = normalize_name(ep.distribution)
            if key in claimed:
                continue
            here.add(key)
            out.append(ep)
        claimed |= here
    return out


def scan_path(paths: Sequence[str]) -> list[EntryPointInfo]:
    """Scan every entry of ``paths`` without the cache; the first copy of a distribution wins."""
    return _merge(scan_entry(e, list_entry(e)) for e in paths)


# --- the cache ---------------------------------------------------------------


def _read_cache(path: str) -> dict[str, Any]:
    """Return the cached records by entry key, or ``{}`` if absent, stale or corrupt."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    if (
        not isinstance(data, dict)
        or data.get("format") != _CACHE_FORMAT
        or data.get("python") != sys.version
        or data.get("executable") != sys.executable
        or not isinstance(data.get("entries"), dict)
    ):
        return {}
    entries: dict[str, Any] = data["entries"]
    return entries


def _cached_eps(record: Any, entry: str, listing: Listing) -> list[EntryPointInfo] | None:
    """The entry points of a cache record if it matches ``listing``, else None."""
    try:
        if [tuple(x) for x in record["listing"]] != listing:
            return None
        return [EntryPointInfo(g, k, v, d, ver, entry) for g, k, v, d, ver in record["eps"]]
    except (TypeError, KeyError, ValueError):
        return None


def write_atomic(path: str, text: str) -> bool:
    """Write ``text`` to ``path`` atomically (temp file + ``os.replace``).

    Readers see the old file or the new one, never a part. Returns False,
    quietly, when the directory cannot be created or written: a cache that
    cannot be kept only costs the next process some work.
    """
    tmp = f"{path}.{os.getpid()}.{id(text):x}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        # O_EXCL: never write into a file another process is writing.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError:
        return False
    return True


def _write_cache(path: str, entries: dict[str, Any]) -> None:
    payload = {
        "format": _CACHE_FORMAT,
        "python": sys.version,
        "executable": sys.executable,
        "entries": entries,
    }
    write_atomic(path, json.dumps(payload, separators=(",", ":")))


def discover(paths: Sequence[str] | None = None, *, use_cache: bool = True) -> list[EntryPointInfo]:
    """Return every ``spindle.*`` entry point visible on ``paths`` (default ``sys.path``).

    Entries whose listing matches the cache reuse it; the others are scanned
    and the cache is rewritten. Set ``SPINDLE_NO_PLUGIN_CACHE=1`` (or
    ``use_cache=False``) to always scan.

    Args:
        paths: directories to search, in priority order.
        use_cache: read and update the on-disk cache.

    Returns:
        The entry points in path order, each distribution counted once.
    """
    search = list(sys.path if paths is None else paths)
    if not use_cache or os.environ.get("SPINDLE_NO_PLUGIN_CACHE"):
        return scan_path(search)
    path = cache_file()
    cached = _read_cache(path)
    fresh: dict[str, Any] = {}
    per_entry: list[list[EntryPointInfo]] = []
    changed = False
    for entry in search:
        key = _entry_key(entry)
        listing = list_entry(entry)
        record = cached.get(key)
        eps = _cached_eps(record, entry, listing) if record is not None else None
        if eps is None:
            eps = scan_entry(entry, listing)
            record = {"listing": listing, "eps": [list(ep[:5]) for ep in eps]}
            changed = True
        fresh[key] = record
        per_entry.append(eps)
    if changed:
        # Keep a bounded number of records for entries not on this path, so
        # alternating working directories or PYTHONPATHs do not thrash.
        # The file lists the latest path first, so older records come last.
        stale = [(k, v) for k, v in cached.items() if k not in fresh]
        fresh.update(stale[:_MAX_STALE_ENTRIES])
        _write_cache(path, fresh)
    return _merge(per_entry)
