"""The limits a workflow file is read under, so a hostile file costs little and errs clearly.

A workflow file may come from elsewhere (design.md, Security), and YAML lets a
few hundred bytes stand for gigabytes: an alias names a list or mapping
defined earlier, and nine aliases of nine aliases of ... expand, in anything
that walks the data (hashing, ``repr`` in an error, the JSON written to the
store), into billions of values. The loader therefore refuses, before any of
that happens:

* a file larger than :data:`MAX_FILE_BYTES`, and anything that is not a
  regular file (a directory, a named pipe that would block, a device);
* lists and mappings nested deeper than :data:`MAX_DEPTH`;
* a document that, with every alias expanded to what it stands for, holds
  more than :data:`MAX_VALUES` values or :data:`MAX_TEXT` characters of text;
* an alias that refers to the list or mapping it is inside (a structure that
  contains itself);
* a NUL character, raw in the file or from an escape (``"\\0"``,
  ``"\\u0000"``): commands, paths and environment variables cannot hold one,
  so it would only fail later, mid-run.

Sizes are counted as the YAML is composed, each anchored node once (its
expansion is remembered), so checking costs one pass over the file however
large the expansion would be.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import yaml

from spindle.core._quote import quote
from spindle.core.errors import ValidationError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_TEXT",
    "MAX_VALUES",
    "BoundedLoader",
    "check_data",
    "check_text_size",
    "read_workflow_file",
    "reader_error",
    "too_deep",
    "value_error",
]

#: The largest workflow file read, in bytes (1 MiB).
MAX_FILE_BYTES = 1 << 20
#: How deeply lists and mappings may nest (the document itself is level 1).
MAX_DEPTH = 100
#: How many values (scalars, lists, mappings) a document may hold, aliases expanded.
MAX_VALUES = 50_000
#: How many characters of scalar text a document may hold, aliases expanded (4 MiB).
MAX_TEXT = 4 << 20

_HOW = "give the path of a .yaml, .yml or .json file"


def read_workflow_file(path: Path, shown: str) -> str:
    """The text of the workflow file ``path`` (named ``shown`` in errors), within the limits.

    The file is opened without blocking and checked to be a regular file
    before a byte is read, so a named pipe or a device is refused instead of
    hanging or reading forever; at most :data:`MAX_FILE_BYTES` + 1 bytes are read.

    Raises:
        ValidationError: missing, unreadable, not a regular file, too large, not UTF-8.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise ValidationError(f"workflow file not found: {shown}") from None
    except IsADirectoryError:
        raise ValidationError(
            f"cannot read workflow file {shown}: it is a directory; {_HOW}"
        ) from None
    except OSError as exc:
        raise ValidationError(f"cannot read workflow file {shown}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
    except OSError as exc:
        os.close(fd)
        raise ValidationError(f"cannot read workflow file {shown}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
        os.close(fd)
    if stat.S_ISDIR(info.st_mode):
        raise ValidationError(f"cannot read workflow file {shown}: it is a directory; {_HOW}")
    if not stat.S_ISREG(info.st_mode):
        raise ValidationError(
            f"cannot read workflow file {shown}: it is not a regular file "
            f"({_file_type(info.st_mode)}); {_HOW}"
        )
    if info.st_size > MAX_FILE_BYTES:
        raise ValidationError(_too_large(shown, f"{info.st_size:,} bytes"))
    with os.fdopen(fd, "rb") as f:
        try:
            raw = f.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise ValidationError(
                f"cannot read workflow file {shown}: {exc.strerror or exc}"
            ) from None
    if len(raw) > MAX_FILE_BYTES:  # it grew, or st_size lied (/proc)
        raise ValidationError(_too_large(shown, f"more than {MAX_FILE_BYTES:,} bytes"))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(
            f"cannot read workflow file {shown}: not UTF-8 text (byte {exc.start})"
        ) from None


def check_text_size(text: str, filename: str) -> None:
    """Refuse workflow text longer than the file limit (text given directly, not read)."""
    if len(text) > MAX_FILE_BYTES:
        raise ValidationError(_too_large(filename, f"{len(text):,} characters"))


def _too_large(shown: str, size: str) -> str:
    return (
        f"workflow file {shown} is too large ({size}); the limit is "
        f"{MAX_FILE_BYTES:,} bytes (1 MiB) — split it into sub-workflows"
    )


def _file_type(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a file"


def reader_error(exc: yaml.reader.ReaderError, text: str, filename: str) -> ValidationError:
    """A clear error for a character YAML cannot hold (a NUL byte, a control character)."""
    pos = exc.position
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    char = exc.character
    code = char if isinstance(char, int) else ord(char)
    if code == 0:
        what = "the file holds a NUL byte (\\0); a workflow file must be text"
    else:
        what = (
            f"character #x{code:04x} is not allowed in a workflow file "
            "(control characters other than tab and newline)"
        )
    return ValidationError(f"{filename}:{line}:{column}: {what}")


def _refuse(filename: str, mark: Any, what: str) -> ValidationError:
    where = f"{filename}:{mark.line + 1}:{mark.column + 1}" if mark is not None else filename
    return ValidationError(f"{where}: {what}")


def _depth_message() -> str:
    return (
        f"lists and mappings nest more than {MAX_DEPTH} levels deep; a workflow "
        f"file may nest at most {MAX_DEPTH} levels (an alias counts as what it stands for)"
    )


def too_deep(filename: str) -> ValidationError:
    """The error for a document nested past :data:`MAX_DEPTH` (where no line is known)."""
    return ValidationError(f"{filename}: {_depth_message()}")


def value_error(exc: ValueError, filename: str) -> ValidationError:
    """The error for a scalar Python refuses to convert (an integer of 5,000 digits)."""
    if "integer string conversion" in str(exc):
        return ValidationError(
            f"{filename}: an integer has more than {sys.get_int_max_str_digits()} digits; "
            "quote it to make it a string"
        )
    return ValidationError(f"{filename}: invalid value ({quote(str(exc))})")


def _expansion_message(values: int, text: int, *, aliased: bool) -> str:
    what = (
        f"more than {MAX_VALUES:,} values"
        if values > MAX_VALUES
        else f"more than {MAX_TEXT:,} characters of text"
    )
    limit = f"a workflow file may hold at most {MAX_VALUES:,} values and {MAX_TEXT:,} characters"
    if aliased:
        return (
            f"the document holds {what} once its aliases are expanded; {limit}, "
            "each alias counted as what it stands for"
        )
    return f"the document holds {what}; {limit} — split it into sub-workflows"


_NUL_STRING = (
    "a string holds a NUL character (\\0); commands, paths and environment "
    "variables cannot carry one, so workflow text may not contain it"
)


class BoundedLoader(yaml.SafeLoader):
    """A safe YAML loader that counts what every node expands to and refuses past the limits.

    Args:
        text: the YAML text.
        filename: names the file in errors.

    Raises:
        ValidationError: (while composing) a limit is exceeded, or a NUL character.
        yaml.reader.ReaderError: (at once) the text holds a character YAML refuses.
    """

    def __init__(self, text: str, filename: str = "<string>") -> None:
        super().__init__(text)
        self.filename = filename
        self._depth = 0
        self._aliased = False
        # id(node) -> (values, characters, depth) of the node with aliases expanded;
        # every node stays alive in the graph while it is composed, so ids are stable.
        self._sizes: dict[int, tuple[int, int, int]] = {}
        # Running totals of what has been composed (aliases expanded), and for each open
        # list or mapping its start and the totals when it opened: a list past the limit
        # is refused at the value that passes it, not after the rest of it is read.
        self._values = 0
        self._text = 0
        self._open: list[tuple[Any, int, int]] = []

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:
        # The scanner reads ahead past every "[" that may start a simple key and
        # rechecks them all at each step: "[" * 5000 costs seconds before the
        # composer sees the first level. Refuse at the limit, here, in linear time.
        if self.flow_level >= MAX_DEPTH:
            raise _refuse(self.filename, self.get_mark(), _depth_message())
        super().fetch_flow_collection_start(TokenClass)

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]  # untyped in the stubs
        if isinstance(event, yaml.AliasEvent):
            node = super().compose_node(parent, index)
            size = self._sizes.get(id(node))
            if size is None:  # its anchor is still being composed: it contains itself
                raise _refuse(
                    self.filename,
                    event.start_mark,
                    f"alias *{event.anchor} refers to the list or mapping it is inside; "
                    "a workflow cannot hold a structure that contains itself",
                )
            self._aliased = True
            if self._depth + size[2] > MAX_DEPTH:
                raise _refuse(self.filename, event.start_mark, _depth_message())
            self._grew(size[0], size[1])
            return node
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _refuse(self.filename, event.start_mark, _depth_message())
        opens = isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent)
        if opens:
            self._open.append((event.start_mark, self._values, self._text))
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
            if opens:
                self._open.pop()
        if node is None:
            return None
        self._sizes[id(node)] = size = self._measure(node)
        if size[0] > MAX_VALUES or size[1] > MAX_TEXT:
            raise _refuse(
                self.filename,
                node.start_mark,
                _expansion_message(size[0], size[1], aliased=self._aliased),
            )
        if opens:
            self._grew(1, 0)  # the list or mapping itself
        else:
            self._grew(1, size[1])
        return node

    def _grew(self, values: int, text: int) -> None:
        """Count what was just composed; refuse the innermost open list or mapping once
        it holds more than the limits (it would, whatever follows)."""
        self._values += values
        self._text += text
        if not self._open:
            return
        mark, values_at, text_at = self._open[-1]
        held, chars = self._values - values_at + 1, self._text - text_at
        if held > MAX_VALUES or chars > MAX_TEXT:
            raise _refuse(
                self.filename, mark, _expansion_message(held, chars, aliased=self._aliased)
            )

    def _measure(self, node: yaml.Node) -> tuple[int, int, int]:
        if isinstance(node, yaml.ScalarNode):
            value = str(node.value)
            if "\0" in value:
                raise _refuse(self.filename, node.start_mark, _NUL_STRING)
            return 1, len(value), 1
        children: list[yaml.Node] = (
            [n for pair in node.value for n in pair]
            if isinstance(node, yaml.MappingNode)
            else list(node.value)
        )
        values, text, depth = 1, 0, 0
        for child in children:
            v, t, d = self._sizes[id(child)]
            values += v
            text += t
            depth = max(depth, d)
        return values, text, depth + 1


def check_data(data: Any, filename: str) -> None:
    """Apply the limits to parsed data (a JSON document, which has no aliases).

    Raises:
        ValidationError: too deep, too many values or characters, or a NUL character.
    """
    values = text = 0
    stack: list[tuple[Any, int, str]] = [(data, 1, "$")]
    while stack:
        item, depth, path = stack.pop()
        values += 1
        if depth > MAX_DEPTH:
            raise ValidationError(f"{filename}: {_depth_message()} @ {path}")
        if isinstance(item, str):
            text += len(item)
            if "\0" in item:
                raise ValidationError(f"{filename}: {_NUL_STRING} @ {path}")
        elif isinstance(item, Mapping):
            for k, v in item.items():
                child = str(k) if path == "$" else f"{path}.{k}"
                stack.append((k, depth + 1, child))
                stack.append((v, depth + 1, child))
        elif isinstance(item, list):
            stack.extend(
                (v, depth + 1, str(i) if path == "$" else f"{path}.{i}") for i, v in enumerate(item)
            )
        if values > MAX_VALUES or text > MAX_TEXT:
            raise ValidationError(f"{filename}: {_expansion_message(values, text, aliased=False)}")
