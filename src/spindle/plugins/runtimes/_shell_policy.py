"""The plain command lines a load policy with ``allowed_executables`` lets run.

The shell is a programming language: ``allowed_executables = ["echo"]`` means
nothing if ``echo hi; case x in *) rm -rf ~;; esac`` may run. So under an
executable allow-list a command template must be *plain*, and this module's
own tokenizer (deliberately far smaller than the shell's grammar, and refusing
everything outside it) decides that at load time:

- simple commands joined by ``|``, ``&&``, ``||`` or ``;`` (a trailing ``;``
  is fine), each starting with a program that is an unquoted plain word
  (ASCII letters, digits, ``_./+-``) in the allow-list, compared exactly;
- arguments made of plain characters (globs, ``=``, ``~`` and such
  included), ``'single-quoted'`` text, ``"double-quoted"`` text without ``$``,
  backquotes or backslashes, and ``{placeholders}`` (one quoted word each);
- redirections only to the node's own declared outputs
  (``> {outputs.NAME.path}``, ``>>``, ``2>``) and between descriptors (``2>&1``).

Everything else is refused with the reason: newlines and carriage returns,
control and non-ASCII characters outside quotes, comments, ``$`` expansions,
backquotes, backslashes, ``( )``, ``{ }``, ``<`` in any form (input, here-documents,
process substitution), ``>( )``, ``&`` (background), ``;;``, ``^``, a program
that is quoted, a placeholder or an assignment (``BASH_ENV=x echo``), shell
reserved words (``case``, ``if``, ``for``, ``!``...) and the builtins that run
other code (``eval``, ``exec``, ``command``, ``builtin``, ``source``, ``.``,
``trap``, ``alias``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from attrs import define, field

from spindle.plugins.runtimes._template import Placeholder

__all__ = ["CommandRefused", "plain_commands"]

_PLAIN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-./,:=@%+*?[]~!")
_PROGRAM = re.compile(r"[A-Za-z0-9_./+-]+\Z")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_RESERVED = frozenset(
    {
        "!", "[[", "]]", "{", "}", "case", "coproc", "do", "done", "elif", "else", "esac",
        "fi", "for", "function", "if", "in", "select", "then", "time", "until", "while",
    }
)  # fmt: skip
_RUNNERS = frozenset(
    {".", "alias", "builtin", "command", "enable", "eval", "exec", "source", "trap"}
)
_TARGET_END = frozenset(" \t|;&<>")
_PLAIN_HINT = (
    "only plain commands of allowed executables, joined by |, &&, || or ;, "
    "may run under allowed_executables"
)


class CommandRefused(Exception):
    """A command line is not plain; ``str()`` is the reason and what is allowed."""

    def __init__(self, reason: str, hint: str = _PLAIN_HINT) -> None:
        super().__init__(f"{reason} ({hint})")


@define
class _Word:
    raw: list[str] = field(factory=list)  # the template text, for messages
    quoted: bool = False
    placeholder: bool = False

    @property
    def text(self) -> str:
        return "".join(self.raw)


def _char_reason(ch: str, following: object) -> str:
    """Why an unquoted ``ch`` (followed by ``following``) is refused."""
    reasons = {
        "#": "comment (#)",
        "`": "command substitution (backquotes)",
        "(": "'(' (a subshell, function or case pattern)",
        ")": "')' (a subshell, function or case pattern)",
        "{": "brace group or expansion { }",
        "}": "brace group or expansion { }",
        "^": "'^' (a pipe in old shells)",
        "\r": "carriage return in command",
        '"': "unterminated double quote",
        "'": "unterminated single quote",
    }
    if ch == "$":
        if following == "(":
            return "command substitution or arithmetic $( )"
        return "parameter expansion ($); pass values as {inputs.NAME}"
    if ch == "\\":
        return "line continuation (backslash-newline)" if following == "\n" else "backslash escape"
    if ch == "<":
        if following == "(":
            return "process substitution <( )"
        if following == "<":
            return "here-document (<<)"
        return "input redirection (<)"
    if ch in reasons:
        return reasons[ch]
    if ord(ch) < 0x20 or ord(ch) == 0x7F:
        return f"control character U+{ord(ch):04X} in command"
    return f"non-ASCII character {ch!r} (U+{ord(ch):04X}) outside quotes"


class _Lexer:
    """Splits a template into words and operators, refusing anything not plain."""

    def __init__(self, items: Sequence[str | Placeholder], outputs: Sequence[str]) -> None:
        self.stream: list[str | Placeholder] = []
        for item in items:
            self.stream.extend(item if isinstance(item, str) else [item])
        self.outputs = outputs
        self.pos = 0
        self.tokens: list[_Word | str] = []  # str: an operator
        self.word: _Word | None = None

    def peek(self, offset: int = 0) -> str | Placeholder | None:
        i = self.pos + offset
        return self.stream[i] if i < len(self.stream) else None

    def end_word(self) -> None:
        if self.word is not None:
            self.tokens.append(self.word)
            self.word = None

    def current(self) -> _Word:
        if self.word is None:
            self.word = _Word()
        return self.word

    def run(self) -> list[_Word | str]:
        if "\n" in self.stream:
            raise CommandRefused(
                "newline in command",
                "only single-line commands of allowed executables may run under "
                "allowed_executables",
            )
        while self.pos < len(self.stream):
            self.step(self.stream[self.pos])
        self.end_word()
        return self.tokens

    def step(self, ch: str | Placeholder) -> None:
        if isinstance(ch, Placeholder):
            word = self.current()
            word.raw.append(ch.text)
            word.placeholder = True
            self.pos += 1
        elif ch in " \t":
            self.end_word()
            self.pos += 1
        elif ch in "'\"":
            self.quoted(ch)
        elif ch == ">":
            self.redirect()
        elif ch in "|&;":
            self.end_word()
            self.operator(ch)
        elif ch in _PLAIN:
            self.current().raw.append(ch)
            self.pos += 1
        else:
            raise CommandRefused(_char_reason(ch, self.peek(1)))

    def quoted(self, quote: str) -> None:
        start = self.pos
        self.pos += 1
        while True:
            ch = self.peek()
            if ch is None:
                raise CommandRefused(_char_reason(quote, None))
            self.pos += 1
            if ch == quote:
                break
            if isinstance(ch, Placeholder):
                raise CommandRefused("placeholder inside quotes")
            if ord(ch) < 0x20 or ord(ch) == 0x7F:
                raise CommandRefused(_char_reason(ch, None))
            if quote == '"' and ch in "$`\\":
                raise CommandRefused(f"{_char_reason(ch, self.peek())} inside double quotes")
        word = self.current()
        word.raw.extend(str(c) for c in self.stream[start : self.pos])
        word.quoted = True

    def operator(self, ch: str) -> None:
        nxt = self.peek(1)
        if ch == "&" and nxt == "&":
            op = "&&"
        elif ch == "|" and nxt == "|":
            op = "||"
        elif ch == "|" and nxt == "&":
            raise CommandRefused("'|&' (a pipe of standard error)")
        elif ch == "&":
            raise CommandRefused("background command or redirection (&)")
        elif ch == ";" and nxt == ";":
            raise CommandRefused("';;' (part of a case statement)")
        else:
            op = ch
        self.pos += len(op)
        self.tokens.append(op)

    def redirect(self) -> None:
        word = self.word
        if word is not None and not word.quoted and not word.placeholder and word.text.isdigit():
            self.word = None  # an io-number: "2>" redirects descriptor 2
        else:
            self.end_word()
        self.pos += 1
        nxt = self.peek()
        if nxt == ">":
            self.pos += 1
        elif nxt == "(":
            raise CommandRefused("process substitution >( )")
        elif nxt == "|":
            raise CommandRefused("redirection '>|'")
        elif nxt == "&":
            self.pos += 1
            digits = 0
            while isinstance(self.peek(), str) and str(self.peek()).isdigit():
                self.pos += 1
                digits += 1
            if digits and (self.peek() is None or self.peek() in _TARGET_END):
                return
            raise CommandRefused(
                "redirection '>&' to something other than a file descriptor number"
            )
        while self.peek() in (" ", "\t"):
            self.pos += 1
        target = self.peek()
        after = self.peek(1)
        if (
            isinstance(target, Placeholder)
            and len(target.parts) == 3
            and target.parts[0] == "outputs"
            and target.parts[2] == "path"
            and target.parts[1] in self.outputs
            and (after is None or after in _TARGET_END)
        ):
            self.pos += 1
            self.tokens.append("redirect")
            return
        raise CommandRefused(
            "redirection to something other than a declared output path",
            "under allowed_executables a command may only write to its node's outputs, "
            "as '> {outputs.NAME.path}'",
        )


def plain_commands(items: Sequence[str | Placeholder], outputs: Sequence[str]) -> list[str]:
    """The program of each simple command of a plain command template, in order.

    Args:
        items: the template's literal text and placeholders.
        outputs: the declared outputs a command may redirect to.

    Raises:
        CommandRefused: the line is not plain (see the module documentation).
    """
    commands: list[list[_Word]] = [[]]
    ops: list[str] = []
    redirects = [0]
    for token in _Lexer(items, outputs).run():
        if token == "redirect":
            redirects[-1] += 1
        elif isinstance(token, str):
            if not commands[-1]:
                raise CommandRefused(f"missing command before '{token}'")
            ops.append(token)
            commands.append([])
            redirects.append(0)
        else:
            commands[-1].append(token)
    if not commands[-1]:
        if redirects[-1]:
            raise CommandRefused("redirection without a command")
        if not ops:
            raise CommandRefused("empty command")
        if ops[-1] != ";":
            raise CommandRefused(f"missing command after '{ops[-1]}'")
        commands.pop()
    if any(r and not c for c, r in zip(commands, redirects, strict=False)):
        raise CommandRefused("redirection without a command")
    return [_program(words[0]) for words in commands]


def _program(word: _Word) -> str:
    """The program a command's first word names; CommandRefused when it is not plain."""
    text = word.text
    if word.placeholder:
        raise CommandRefused(f"the program is a placeholder ('{text}'); name the program itself")
    if word.quoted:
        raise CommandRefused(f"the program {text!r} is quoted; write it as a plain word")
    if _ASSIGNMENT.match(text):
        raise CommandRefused(f"variable assignment before a command ('{text}')")
    if text in _RESERVED:
        raise CommandRefused(f"shell reserved word '{text}' (a compound command)")
    if text in _RUNNERS:
        raise CommandRefused(f"shell builtin '{text}' runs other commands")
    if not _PROGRAM.match(text):
        raise CommandRefused(f"the program '{text}' is not a plain name")
    return text
