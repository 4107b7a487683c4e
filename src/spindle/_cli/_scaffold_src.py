"""The plugin modules ``spindle new-plugin`` writes: one small, working example per kind.

Each template is the source of ``src/spindle_NAME/KIND.py`` with ``@@name@@``
standing for the plugin name (the kind users write) and ``@@Camel@@`` for its
class-name stem. The classes are meant to be edited into the real plugin;
they work as written, so the generated tests pass before the first edit.
"""

from __future__ import annotations

__all__ = ["CLASSES", "SOURCES"]

#: kind -> the public name the module defines (a class, or the hooks module itself).
CLASSES: dict[str, str] = {
    "runtime": "@@Camel@@Runtime",
    "executor": "@@Camel@@Executor",
    "effect": "@@Camel@@Handler",
    "store": "@@Camel@@Store",
    "observer": "@@Camel@@Observer",
    "middleware": "@@Camel@@Middleware",
}

RUNTIME = '''"""The ``@@name@@`` runtime: prepares a Python call that an executor runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from attrs import define
from spindle import PythonCall, Runtime, TaskError

if TYPE_CHECKING:
    from spindle import NodeSpec, TaskContext

__all__ = ["@@Camel@@Runtime", "greet"]


def greet(text: str, greeting: str, shout: bool) -> str:
    """The work itself: a module-level function, so any executor can import it."""
    line = f"{greeting}, {text}"
    return line.upper() if shout else line


@define
class @@Camel@@Runtime(Runtime[PythonCall], kind="@@name@@"):
    """Greets the node input ``text`` (replace this with what your runtime prepares).

    Attributes:
        greeting: the word put before the text.
        shout: upper-case the result.
    """

    default_executor: ClassVar[str] = "inline"

    greeting: str = "hello"
    shout: bool = False

    def check(self, node: NodeSpec, available: set[str]) -> list[str]:
        """Report, when the workflow is loaded, a node that gives no ``text`` input."""
        if "text" not in node.inputs:
            return ["@@name@@ needs a node input named 'text'"]
        return []

    async def _setup_runtime(self, task: TaskContext) -> PythonCall:
        """Build the call from the node's resolved inputs; the executor runs it."""
        text = task.inputs.get("text")
        if not isinstance(text, str):
            raise TaskError(
                f"node '{task.node_id}': @@name@@ needs a string 'text', got {text!r}",
                node_id=task.node_id,
            )
        return PythonCall(
            function=greet,
            kwargs={"text": text, "greeting": self.greeting, "shout": self.shout},
            reference="spindle_@@name@@.runtime:greet",
            name="greet",
        )
'''

EXECUTOR = '''"""The ``@@name@@`` executor: runs Python calls, sync ones on a worker thread."""

from __future__ import annotations

import asyncio
import functools
import time
from typing import TYPE_CHECKING, ClassVar

from attrs import define
from spindle import Executor, Outcome, PythonCall

if TYPE_CHECKING:
    from spindle import TaskContext

__all__ = ["@@Camel@@Executor"]


@define
class @@Camel@@Executor(Executor[PythonCall], kind="@@name@@"):
    """Runs Python calls: async ones on the event loop, sync ones on a thread.

    Attributes:
        threads: run sync functions on a worker thread (false: on the event loop,
            which blocks every other task meanwhile).
    """

    accepts: ClassVar[tuple[type, ...]] = (PythonCall,)

    threads: bool = True

    async def _execute(self, payload: PythonCall, task: TaskContext) -> Outcome:
        """Call the function; its return value is the node's result."""
        started = time.perf_counter()
        if payload.is_async:
            value = await payload.function(**payload.kwargs)
        elif self.threads:
            call = functools.partial(payload.function, **payload.kwargs)
            value = await asyncio.to_thread(call)
        else:
            value = payload.function(**payload.kwargs)
        return Outcome(
            value=value,
            duration=time.perf_counter() - started,
            details={"executor": "@@name@@", "attempt": task.attempt},
        )
'''

EFFECT = '''"""The ``@@name@@`` effect: waits for a person to answer yes or no."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from attrs import define
from spindle import EffectHandler, EffectOutcome, InvalidAnswer, WaitReason, WaitState

if TYPE_CHECKING:
    from spindle import Effect, EffectContext, RunState

__all__ = ["@@Camel@@Handler"]


@define
class @@Camel@@Handler(EffectHandler, kind="@@name@@"):
    """Asks a person to approve (replace this with what your effect asks of the engine).

    Attributes:
        prompt: the question ``spindle show`` and ``spindle run`` print.
        auto_approve: complete at once with ``{"approved": true}`` instead of waiting.
    """

    prompt: str = "approve?"
    auto_approve: bool = False

    async def handle(self, run: RunState, effect: Effect, ctx: EffectContext) -> EffectOutcome:
        """Complete now (``auto_approve``) or wait for an answer under ``ctx.wait_key``."""
        if self.auto_approve:
            return EffectOutcome.completed({"approved": True})
        wait = WaitState(
            ctx.wait_key, WaitReason.USER, ctx.node_id, prompt=self.prompt, choices=["yes", "no"]
        )
        return EffectOutcome.waiting(wait)

    @classmethod
    def accept(cls, wait: WaitState, payload: Any) -> Any:
        """Take ``"yes"`` or ``"no"``; refuse anything else (the run keeps waiting)."""
        if payload in ("yes", "no"):
            return {"approved": payload == "yes"}
        raise InvalidAnswer(f"answer '{wait.key}' with 'yes' or 'no', got {payload!r}")
'''

STORE = '''"""The ``@@name@@`` store, chosen by URLs ``@@name@@://``.

It starts as spindle's in-memory store under a scheme of its own: every
method of the store contract works, and nothing survives the process.
Replace the methods one by one with your storage; the contract suite in
``tests/test_store.py`` (``spindle.testing.StoreContract``) says what must hold.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from attrs import define
from spindle import ConfigError
from spindle.core.store import check_durability
from spindle.plugins.stores.memory import MemoryStore

__all__ = ["@@Camel@@Store"]

SCHEME = "@@name@@://"


@define
class @@Camel@@Store(MemoryStore, kind="@@name@@"):
    """Keeps runs in process memory, under ``@@name@@://`` (the start of your store)."""

    @classmethod
    def from_url(cls, url: str, **options: Any) -> @@Camel@@Store:
        """Build the store from ``@@name@@://[?durability=normal|full]``.

        Raises:
            ConfigError: the URL has another scheme or an unknown option.
        """
        if not url.startswith(SCHEME):
            raise ConfigError(f"store URL {url!r} does not start with {SCHEME!r}")
        _location, _, query = url[len(SCHEME) :].partition("?")
        given = dict(parse_qsl(query, keep_blank_values=True))
        for name in given:
            if name != "durability":
                raise ConfigError(
                    f"store URL {url!r}: unknown option {name!r}; known options: durability"
                )
        if "durability" in given:
            options["durability"] = given["durability"]
        check_durability(options.get("durability", "normal"), f"URL {url!r}")
        return cls(url=url, **options)
'''

OBSERVER = '''"""The ``@@name@@`` observer: appends lifecycle events to a JSON-lines file."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

from attrs import define, field
from spindle import ObserverPlugin

if TYPE_CHECKING:
    from spindle import RunLifecycleEvent

__all__ = ["@@Camel@@Observer"]


@define
class @@Camel@@Observer(ObserverPlugin, kind="@@name@@"):
    """Appends one JSON line per selected lifecycle event to a file.

    Attributes:
        path: the file to append to.
        events: the event types to write (empty: every event).
    """

    path: str
    events: list[str] = field(factory=list)

    async def on_event(self, event: RunLifecycleEvent) -> None:
        """Write the event if it is selected; never change run state."""
        if self.events and event.type.value not in self.events:
            return
        line = json.dumps({"run_id": event.run_id, "type": event.type.value}) + "\\n"
        # Observers run on the engine's event loop: keep blocking I/O off it.
        await asyncio.to_thread(self._append, line)

    def _append(self, line: str) -> None:
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(line)
'''

MIDDLEWARE = '''"""The ``@@name@@`` middleware: a layer around every node's task."""

from __future__ import annotations

from typing import Any, ClassVar

from attrs import define, field
from spindle import CallNext, Middleware

__all__ = ["@@Camel@@Middleware"]


@define
class @@Camel@@Middleware(Middleware, kind="@@name@@"):
    """Puts ``prefix`` before every string a node returns (replace with your layer).

    Attributes:
        prefix: put before string results. It is required, so it is declared
            ``kw_only``: the ``Middleware`` base already has an option with a
            default (``priority``), and attrs lets a field without a default
            follow one only when it is keyword-only.
    """

    stages: ClassVar[frozenset[str]] = frozenset({"node"})

    prefix: str = field(kw_only=True)

    async def __call__(self, call_next: CallNext, *args: Any) -> Any:
        """Run the node (``call_next`` with the stage's arguments), then change its result."""
        result = await call_next(*args)
        return f"{self.prefix}{result}" if isinstance(result, str) else result
'''

HOOKS = '''"""The ``@@name@@`` hook module: engine hooks (see spindle's hook reference)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from spindle import hookimpl

if TYPE_CHECKING:
    from spindle import FinishingRun, UnsettledWork


@hookimpl
def spindle_on_finish(run: FinishingRun, output: Any, unsettled: UnsettledWork) -> None:
    """Label how each run ended: ``settled``, or ``unsettled`` when work was left behind."""
    left = any(unsettled.counts.values())
    run.set_disposition("@@name@@: unsettled" if left else "@@name@@: settled")
'''

#: kind -> the source of ``src/spindle_NAME/KIND.py``.
SOURCES: dict[str, str] = {
    "runtime": RUNTIME,
    "executor": EXECUTOR,
    "effect": EFFECT,
    "store": STORE,
    "observer": OBSERVER,
    "middleware": MIDDLEWARE,
    "hooks": HOOKS,
}
