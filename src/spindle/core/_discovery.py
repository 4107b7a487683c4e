"""Find ``spindle.*`` entry points without importing anything, and cache the answer.

``importlib.metadata`` builds a ``Distribution`` object per installed package
and parses every metadata file: O(installed distributions) on each process
start. spindle only needs its own groups, so this module reads the
``entry_points.txt`` files directly and keeps the result in a small JSON
cache.

The cache key is the interpreter (executable and version), the ``sys.path``
entries, and for each entry the names and mtimes of its ``*.dist-info`` /
``*.egg-info`` entry-point files. Installing or removing a distribution adds
or removes a metadata directory, and rewriting one changes its mtime, so the
key changes and the cache is rebuilt — no manual invalidation. The cache is
written atomically (temp file + ``os.replace``) so processes sharing it never
read half a file; when the directory is read-only the scan result is simply
not kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from attrs import define

__all__ = ["EntryPointInfo", "cache_dir", "discover", "scan_path"]

_CACHE_FORMAT = 1
_PREFIX = "spindle."


@define(frozen=True)
class EntryPointInfo:
    """One ``spindle.*`` entry point as declared in metadata (nothing imported)."""

    group: str  # plugin group without the prefix: "runtime"
    kind: str  # the entry-point name
    value: str  # "module:attr"
    distribution: str
    version: str
    location: str  # the sys.path entry it was found under

    @property
    def spec(self) -> str:
        """The entry point as written in metadata: ``spindle.runtime:command = mod:Cls``."""
        return f"{_PREFIX}{self.group}:{self.kind} = {self.value}"


def cache_dir() -> Path:
    """Where the discovery cache lives: ``$SPINDLE_CACHE_DIR`` or the user cache dir."""
    env = os.environ.get("SPINDLE_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "spindle"


def _metadata_dirs(entry: str) -> list[tuple[str, str]]:
    """List ``(dirname, entry_points_file)`` for metadata dirs under one sys.path entry."""
    found: list[tuple[str, str]] = []
    try:
        with os.scandir(entry or ".") as it:
            for d in it:
                name = d.name
                if name.endswith((".dist-info", ".egg-info")):
                    found.append((name, os.path.join(d.path, "entry_points.txt")))
    except OSError:
        return []
    found.sort()
    return found


def _fingerprint(paths: Sequence[str]) -> tuple[str, list[tuple[str, list[tuple[str, str]]]]]:
    h = hashlib.sha256()
    h.update(sys.executable.encode())
    h.update(sys.version.encode())
    listing: list[tuple[str, list[tuple[str, str]]]] = []
    for entry in paths:
        dirs = _metadata_dirs(entry)
        listing.append((entry, dirs))
        h.update(b"\0P" + entry.encode())
        for name, ep_file in dirs:
            try:
                mtime = os.stat(ep_file).st_mtime_ns
            except OSError:
                mtime = -1
            h.update(f"\0{name}\0{mtime}".encode())
    return h.hexdigest(), listing


def _dist_name_version(dirname: str, meta_dir: str) -> tuple[str, str]:
    stem = dirname.rsplit(".", 1)[0]
    name, _, version = stem.partition("-")
    if dirname.endswith(".egg-info") or not version:
        # egg-info dirs are often named without a version; PKG-INFO has both.
        for meta in ("METADATA", "PKG-INFO"):
            try:
                with open(os.path.join(meta_dir, meta), encoding="utf-8") as f:
                    for line in f:
                        if line.startswith("Name:"):
                            name = line.split(":", 1)[1].strip()
                        elif line.startswith("Version:"):
                            version = line.split(":", 1)[1].strip()
                        elif not line.strip():
                            break
                break
            except OSError:
                continue
    return name.replace("_", "-"), version or "unknown"


def _parse_entry_points(text: str) -> Iterable[tuple[str, str, str]]:
    """Yield ``(group, name, value)`` for ``spindle.*`` sections of an entry_points.txt."""
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
        if sep:
            yield section[len(_PREFIX) :], name.strip(), value.strip()


def scan_path(listing: Sequence[tuple[str, Sequence[tuple[str, str]]]]) -> list[EntryPointInfo]:
    """Read every entry-point file in ``listing``; the first copy of a distribution wins.

    A distribution found under two ``sys.path`` entries is the same package
    shadowed, exactly as the import system resolves it, so only the first counts.
    """
    seen: set[str] = set()
    out: list[EntryPointInfo] = []
    for entry, dirs in listing:
        for dirname, ep_file in dirs:
            try:
                with open(ep_file, encoding="utf-8") as f:
                    text = f.read()
            except OSError:
                continue
            if _PREFIX not in text:
                continue
            dist, version = _dist_name_version(dirname, os.path.dirname(ep_file))
            key = dist.lower()
            if key in seen:
                continue
            seen.add(key)
            for group, kind, value in _parse_entry_points(text):
                out.append(EntryPointInfo(group, kind, value, dist, version, entry))
    return out


def _read_cache(path: Path, key: str) -> list[EntryPointInfo] | None:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != _CACHE_FORMAT or data.get("key") != key:
        return None
    try:
        return [EntryPointInfo(*row) for row in data["entry_points"]]
    except (TypeError, KeyError):
        return None


def _write_cache(path: Path, key: str, eps: Sequence[EntryPointInfo]) -> None:
    rows = [
        [e.group, e.kind, e.value, e.distribution, e.version, e.location] for e in eps
    ]
    payload = json.dumps({"format": _CACHE_FORMAT, "key": key, "entry_points": rows})
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".ep-", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(payload)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError:
        # A read-only or full cache dir only costs the next process a rescan.
        return



def discover(paths: Sequence[str] | None = None, *, use_cache: bool = True) -> list[EntryPointInfo]:
    """Return every ``spindle.*`` entry point visible on ``paths`` (default ``sys.path``).

    Reads the cache when its key matches, else scans and rewrites it. Set
    ``SPINDLE_NO_PLUGIN_CACHE=1`` (or ``use_cache=False``) to always scan.
    """
    search = list(sys.path if paths is None else paths)
    key, listing = _fingerprint(search)
    if not use_cache or os.environ.get("SPINDLE_NO_PLUGIN_CACHE"):
        return scan_path(listing)
    exe = hashlib.sha256(sys.executable.encode()).hexdigest()[:16]
    path = cache_dir() / f"entry-points-{exe}.json"
    cached = _read_cache(path, key)
    if cached is not None:
        return cached
    eps = scan_path(listing)
    _write_cache(path, key, eps)
    return eps
