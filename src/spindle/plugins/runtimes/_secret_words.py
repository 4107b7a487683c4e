"""Secrets in a command line travel in the environment, never in the line itself.

A process's command line is public on the machine: any user can read
``/proc/PID/cmdline`` (``ps -ef`` shows it). Its environment is not: only the
process's own user (and root) can read ``/proc/PID/environ``. So where a
command template substitutes a value that is, or contains, a secret input —
``{secrets.NAME}``, or ``{inputs.NAME}`` naming a secret workflow input or a
node input holding one — :class:`SecretWords` writes the shell word
``"$SPINDLE_SECRET_NAME"`` into the line and puts the value in the child's
environment under that name. The double quotes keep the expansion one word,
never split nor globbed, exactly as the quoted value would have been; the
value itself is never shell syntax. The shell and every process it starts
inherit the variable, so a program reads the value from its arguments as
before (``"$SPINDLE_SECRET_NAME"`` is expanded by the shell before it runs).
"""

from __future__ import annotations

import re
import shlex
from typing import TYPE_CHECKING

from spindle.core.model._templates import value_text

if TYPE_CHECKING:
    from spindle.plugins.runtimes._template import Placeholder

__all__ = ["SECRET_PREFIX", "SecretWords"]

#: The prefix of the environment variables that carry secrets to a command.
SECRET_PREFIX = "SPINDLE_SECRET_"

_NOT_NAME = re.compile(r"[^A-Z0-9_]")


class SecretWords:
    """Turns substituted values into shell words, moving secret ones into environment variables.

    Args:
        secrets: the clear values of the run's secret inputs, as text.
    """

    def __init__(self, secrets: tuple[str, ...]) -> None:
        self._secrets = tuple(s for s in secrets if s)
        #: The variables to add to the child's environment: name -> value.
        self.env: dict[str, str] = {}

    def word(self, placeholder: Placeholder, value: object) -> str:
        """The shell word for ``value``: shell-quoted, or ``"$VAR"`` when it holds a secret."""
        text = value_text(value)
        if placeholder.parts[0] != "secrets" and not any(s in text for s in self._secrets):
            return shlex.quote(text)
        return f'"${self._variable(placeholder, text)}"'

    def _variable(self, placeholder: Placeholder, text: str) -> str:
        """``SPINDLE_SECRET_NAME`` for the placeholder's name; ``_2``, ``_3``... if taken."""
        parts = placeholder.parts
        # {secrets.token} and {inputs.token} -> TOKEN; {x.path} -> X_PATH
        named = parts[0] in ("secrets", "inputs") and len(parts) == 2
        name = parts[1] if named else "_".join(parts)
        base = SECRET_PREFIX + (_NOT_NAME.sub("_", name.upper()) or "_")
        variable, n = base, 1
        while self.env.get(variable, text) != text:
            n += 1
            variable = f"{base}_{n}"
        self.env[variable] = text
        return variable
