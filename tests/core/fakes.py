"""Small plugin kinds shared by the definition tests (loader, workflow, schema).

They stand in for the built-ins so these tests exercise structuring, checks
and schemas without running anything.
"""

from __future__ import annotations

from typing import Any

import attrs

from spindle import EffectHandler, Outcome, Runtime
from spindle.core.plugin import Executor


@attrs.define
class Echo(Runtime[str], kind="echo"):
    """Return a fixed text."""

    text: str

    async def _setup_runtime(self, task: Any) -> str:
        return self.text


@attrs.define
class Cmd(Runtime[str], kind="cmd"):
    """A command-like runtime: its first word is the program it starts."""

    command: str
    retries: int = 0

    async def _setup_runtime(self, task: Any) -> str:
        return self.command

    def executables(self) -> list[str] | None:
        return [self.command.split()[0]]


@attrs.define
class Code(Runtime[str], kind="python_code"):
    """Stands in for the built-in python_code runtime."""

    code: str

    async def _setup_runtime(self, task: Any) -> str:
        return self.code


@attrs.define
class Ask(EffectHandler, kind="ask_user"):
    """Ask a person."""

    prompt: str
    choices: list[str] | None = None

    async def handle(self, run: Any, effect: Any, ctx: Any) -> Any:
        return self.completed()


@attrs.define
class Inline(Executor[object], kind="inline"):
    """Run in process."""

    workers: int = 1

    async def _execute(self, payload: object, task: Any) -> Outcome:
        return Outcome(payload)
