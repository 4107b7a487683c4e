"""Command templates: ``{placeholder}`` substitution with shell quoting, and the programs a
command line starts.

A template is parsed once into literal text and placeholders. ``{{`` and
``}}`` are literal braces (so a shell ``${HOME}`` is written ``${{HOME}}``).
Every substituted value goes through :func:`shlex.quote`, so an input like
``x; rm -rf ~`` reaches the program as one argument and never as shell syntax.

Quoting only protects a value where the shell reads a plain word, so parsing
refuses a placeholder anywhere else: inside quotes (``'{inputs.x}'`` would
put the value *outside* the quotes again), in a comment (a newline in the
value would end it), after a backslash or a ``$``, or after a here-document
(``<<``, whose body the shell expands without honouring quotes).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from os import PathLike
from typing import Any

from attrs import define

from spindle.core.model._templates import Placeholder, TemplateError, parse_template, value_text

__all__ = ["Placeholder", "Template", "TemplateError", "executables", "quote_value"]


_BREAKS = frozenset(" \t\n;&|()<>")


class _ShellScan:
    """Follows the shell's quoting state through a template's literal text.

    Just enough of POSIX sh lexing to know whether the next placeholder lands
    where a quoted word is safe: quotes, backslash escapes, comments, and
    here-documents (conservatively: everything after a ``<<``).
    """

    def __init__(self) -> None:
        self.mode = "word"  # word | single | double | comment
        self.word_start = True
        self.escaped = False  # the previous character was an unescaped backslash
        self.dollar = False  # the previous character was an unescaped $
        self.less = 0  # run of unquoted '<'
        self.heredoc = False
        self.backquote = False  # inside `...`

    def feed(self, text: str) -> None:
        for ch in text:
            self._char(ch)

    def _char(self, ch: str) -> None:
        if self.mode == "single":
            if ch == "'":
                self.mode = "word"
            return
        if self.mode == "double":
            if self.escaped:
                self.escaped = False
            elif ch == "\\":
                self.escaped = True
            elif ch == '"':
                self.mode = "word"
            elif ch == "`":
                self.backquote = not self.backquote
            return
        if self.mode == "comment":
            if ch == "\n":
                self.mode, self.word_start = "word", True
            return
        if self.less == 2 and ch != "<":
            self.heredoc = True
        self.less = self.less + 1 if ch == "<" and not self.escaped else 0
        if self.escaped:
            self.escaped = self.dollar = self.word_start = False
            return
        self.dollar = ch == "$"
        if ch == "\\":
            self.escaped, self.word_start = True, False
        elif ch == "'":
            self.mode, self.word_start = "single", False
        elif ch == '"':
            self.mode, self.word_start = "double", False
        elif ch == "#" and self.word_start:
            self.mode = "comment"
        elif ch == "`":
            self.backquote, self.word_start = not self.backquote, True
        else:
            self.word_start = ch in _BREAKS

    def problem(self) -> str | None:
        """Why a placeholder may not come next, or None when a quoted word is safe here."""
        if self.less == 2:
            self.heredoc = True
        if self.mode in ("single", "double"):
            return "is inside quotes; remove the quotes around it (every value is shell-quoted)"
        if self.mode == "comment":
            return "is inside a comment, which a newline in the value would end"
        if self.backquote:
            return "is inside backquotes, where quoting does not protect it; use $( ) instead"
        if self.heredoc:
            return (
                "follows a here-document (<<), where the shell does not honour quoting; "
                "pass the value as an argument or through a file"
            )
        if self.escaped:
            return "follows a backslash, which would unquote the value"
        if self.dollar:
            return "follows a '$'"
        return None

    def placeholder(self) -> None:
        """A quoted word was just placed."""
        self.word_start = self.dollar = False
        self.less = 0


@define(frozen=True)
class Template:
    """A parsed template: literal strings and :class:`Placeholder` items in order."""

    source: str
    items: tuple[str | Placeholder, ...]

    @classmethod
    def parse(cls, source: str, what: str = "command") -> Template:
        """Parse ``source``.

        Raises:
            TemplateError: a brace is unmatched, a placeholder is not a dotted name, or
                it stands where a shell-quoted word is not safe.
        """
        items = parse_template(source, what)
        shell = _ShellScan()
        for item in items:
            if isinstance(item, str):
                shell.feed(item)
                continue
            problem = shell.problem()
            if problem is not None:
                hint = ""
                if shell.dollar:
                    name = ".".join(item.parts)
                    hint = (
                        f"; drop the '$' for the value, or write '${{{{{name}}}}}' for a "
                        f"shell variable"
                    )
                raise TemplateError(f"placeholder '{item.text}' in {what} {problem}{hint}")
            shell.placeholder()
        return cls(source, items)

    @property
    def placeholders(self) -> list[Placeholder]:
        """Every placeholder, in order of appearance."""
        return [i for i in self.items if isinstance(i, Placeholder)]

    def skeleton(self) -> str:
        """The template with literal braces resolved and placeholders kept as ``{name}``.

        This is the command line as the shell will parse it, with each
        placeholder standing for exactly one quoted word.
        """
        return "".join(i.text if isinstance(i, Placeholder) else i for i in self.items)


def quote_value(value: Any) -> str:
    """Shell-quote ``value`` as one word (written as :func:`value_text` says)."""
    return shlex.quote(value_text(value))


# --- what a command line starts, for load policies ----------------------------------

#: Words that start a segment without being the program: skipped.
_PREFIX_WORDS = frozenset({"if", "then", "else", "elif", "do", "while", "until", "!", "{", "time"})
#: Words that end a compound command: not programs.
_CLOSING_WORDS = frozenset({"fi", "done", "esac", "}"})
#: Compound commands whose own segment holds no program (``for x in a b``).
_SKIP_SEGMENT = frozenset({"for", "case", "select", "in"})
_SEPARATORS = frozenset({";", "&", "&&", "|", "||", "|&", "(", "\n", ";;"})
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


def executables(command_line: str) -> list[str]:
    """The first word of each simple command in ``command_line``, in order, without repeats.

    Best effort for load policies: it follows ``;``, ``&&``, ``||``, ``|``, ``&``,
    newlines, subshells and ``$( )``, and skips ``VAR=value`` prefixes and
    ``if``/``then``/``do``... A word that cannot be judged (backquotes, a
    placeholder in program position, an unparseable line) is returned as it
    is, so an allow list refuses it rather than letting it through.
    """
    lexer = shlex.shlex(command_line, posix=True, punctuation_chars="();<>|&\n")
    lexer.whitespace = " \t\r"
    lexer.whitespace_split = True
    try:
        words = list(lexer)
    except ValueError as exc:  # unbalanced quotes
        return [f"<unparseable command: {exc}>"]
    out: list[str] = []
    at_start = True
    skipping = False
    for word in words:
        if word in _SEPARATORS:
            at_start, skipping = True, False
        elif "`" in word:
            out.append(word)
        elif skipping:
            pass
        elif at_start:
            if word in _PREFIX_WORDS or _ASSIGNMENT.match(word):
                pass
            elif word in _CLOSING_WORDS:
                at_start = False
            elif word in _SKIP_SEGMENT:
                at_start, skipping = False, True
            else:
                out.append(word)
                at_start = False
    seen: dict[str, None] = {}
    for w in out:
        seen.setdefault(w)
    return list(seen)


def path_text(value: Any) -> str | None:
    """The path a value stands for (a path, a string, ``x.path`` or ``x["path"]``), or None."""
    if isinstance(value, str | PathLike):
        return str(value)
    inner = getattr(value, "path", None)
    if isinstance(inner, str | PathLike):
        return str(inner)
    if isinstance(value, Mapping):
        inner = value.get("path")
        if isinstance(inner, str | PathLike):
            return str(inner)
    return None
