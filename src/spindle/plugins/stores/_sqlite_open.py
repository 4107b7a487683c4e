"""Opening a SQLite store file: refusing what is not one, creating a new one whole.

SQLite creates any file it is asked to open, so an empty or foreign file at
the store's path would otherwise be taken for a new store and written to —
a 0-byte ``spindle.db`` (truncated by accident, or a placeholder) would
silently lose every run it was supposed to hold. So the path is looked at
before SQLite sees it:

* a path that does not exist gets a new store, built under a temporary
  name beside it and hard-linked into place only once its schema is
  complete: another process opening the same new path at the same moment
  finds either nothing or a whole store, never a half-made file, and of
  two creators the first link wins (the other opens that one);
* an existing path must be a regular file that is not empty; what it holds
  is then checked by :func:`~spindle.plugins.stores._sqlite_schema.connect`
  (a SQLite database with spindle's tables, all of them).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
import stat
from pathlib import Path

from spindle.core.errors import StoreCorrupt, StoreError
from spindle.plugins.stores._sqlite_errors import file_failure
from spindle.plugins.stores._sqlite_schema import connect

__all__ = ["open_store"]


def open_store(path: Path, *, durability: str, busy_timeout: float) -> sqlite3.Connection:
    """Open the store file ``path`` (an absolute path), creating a new store if there is none.

    Raises:
        StoreCorrupt: the file exists but is empty, is not a SQLite database,
            is damaged, or lacks spindle's schema.
        StoreError: the path cannot hold a store (a directory, a device, a
            directory that cannot be created), or the file cannot be opened.
        SchemaTooNew: the file was written by a newer spindle.
    """
    if not _exists(path):
        _make_directory(path)
        _create(path, durability=durability, busy_timeout=busy_timeout)
    return connect(path, durability=durability, busy_timeout=busy_timeout)


def _exists(path: Path) -> bool:
    """Whether ``path`` holds a file to open; raises for anything that cannot be a store."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return False
    except NotADirectoryError:
        raise StoreError(
            f"cannot use SQLite store {path}: {_file_ancestor(path)} is a file, not a "
            "directory; give a path inside a directory"
        ) from None
    except OSError as exc:
        raise file_failure(exc, str(path), "the file") from exc
    if stat.S_ISDIR(info.st_mode):
        raise StoreError(
            f"SQLite store {path} is a directory, not a file; give the path of the store's "
            "file (e.g. sqlite:///.spindle/spindle.db)"
        )
    if not stat.S_ISREG(info.st_mode):
        raise StoreError(
            f"SQLite store {path} is not a regular file (a device, pipe or socket); give the "
            "path of a file"
        )
    if info.st_size == 0 and not _has_wal(path):
        raise StoreCorrupt(
            f"SQLite store {path} exists but is empty (0 bytes): it is not a spindle store; "
            "remove it to start a new store, or give the right path"
        )
    return True


def _has_wal(path: Path) -> bool:
    # A database whose pages are all still in its write-ahead log may show an
    # empty main file; SQLite reads it from the log, so let it look.
    try:
        return os.stat(f"{path}-wal").st_size > 0
    except OSError:
        return False


def _file_ancestor(path: Path) -> Path:
    """The first ancestor of ``path`` that exists and is not a directory."""
    for parent in reversed(path.parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return path.parent


def _make_directory(path: Path) -> None:
    directory = path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise StoreError(
            f"cannot create SQLite store {path}: {_file_ancestor(path)} is a file, not a "
            "directory; give a path inside a directory"
        ) from None
    except OSError as exc:
        raise StoreError(
            f"cannot create the directory {directory} for SQLite store {path} "
            f"({exc.strerror or exc}): give a path in a directory this user can write"
        ) from exc


def _create(path: Path, *, durability: str, busy_timeout: float) -> None:
    """Build a new store under a temporary name and link it into place at ``path``."""
    temp = path.with_name(f".{path.name}.new-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        # Closing the last connection checkpoints the log into the file and removes
        # the -wal and -shm files, so the temporary file alone is the whole store.
        connect(
            temp, durability=durability, busy_timeout=busy_timeout, new=True, shown=path
        ).close()
        try:
            os.link(temp, path)
        except FileExistsError:
            pass  # another process created the store first: that one is opened
        except OSError:
            # No hard links on this file system: a rename, which would replace a
            # store another process created in the instant since we looked.
            if not path.exists():
                os.replace(temp, path)
        if durability == "full":
            _fsync_directory(path.parent)
    except OSError as exc:
        raise file_failure(exc, str(path), "a new store file") from exc
    finally:
        for leftover in (temp, Path(f"{temp}-wal"), Path(f"{temp}-shm")):
            with contextlib.suppress(OSError):
                leftover.unlink()


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
