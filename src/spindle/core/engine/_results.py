"""Node results as the ledger keeps them (JSON data, large ones in the artifact store),
and node failures (one message naming the node, the traceback of the task's own code).

A result is normalized to what any store reads back (a JSON round trip), and
one larger than ``result_inline_limit`` bytes is kept as an artifact; the
ledger then holds ``{"$artifact": {"digest": ..., "size": ...}}``, fetched
again whenever a downstream node or the run's output needs the value.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import threading
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spindle.core.errors import SpindleError, TaskError
from spindle.core.model import normalized

if TYPE_CHECKING:
    from spindle.core.store import Store
    from spindle.core.workflow import NodeSpec

__all__ = [
    "ARTIFACT",
    "TRACEBACK_LIMIT",
    "Results",
    "describe",
    "pick",
    "storable",
    "storable_sized",
    "traceback_of",
]

#: The key of a result kept in the artifact store: ``{"$artifact": {digest, size}}``.
ARTIFACT = "$artifact"


def storable(node_id: str, value: Any) -> Any:
    """``value`` as the ledger will hold it.

    Raises:
        TaskError: the value cannot be represented as JSON.
    """
    return storable_sized(node_id, value)[0]


def storable_sized(node_id: str, value: Any) -> tuple[Any, int]:
    """:func:`storable`, and the length of its compact JSON text (-1 for a scalar), for
    :meth:`Results.offload` to decide without encoding the value again.

    Raises:
        TaskError: the value cannot be represented as JSON.
    """
    try:
        return normalized(value)
    except (TypeError, ValueError) as exc:
        raise TaskError(
            f"node '{node_id}' returned a value that cannot be recorded ({exc}); return "
            f"JSON-compatible data (dicts, lists, strings, numbers) or write a file output",
            node_id=node_id,
        ) from exc


def pick(node: NodeSpec, result: Any, member: str | None) -> Any:
    """What a reference to ``node`` (or ``node.member``) resolves to, given its result."""
    if not node.outputs or not isinstance(result, dict):
        return result
    if member:
        return result.get("outputs", {}).get(member)
    return result.get("value")


class Results:
    """Offloads large results of one run to the artifact store and fetches them back."""

    def __init__(self, store: Store, run_id: str, inline_limit: int) -> None:
        self.store = store
        self.run_id = run_id
        self.inline_limit = inline_limit

    def fits(self, value: Any, size: int = -1) -> bool:
        """Whether ``value`` is surely small enough to keep in the ledger, without encoding
        it (``size``: the length of its compact JSON text, or -1 if not known)."""
        if value is None or isinstance(value, bool | int | float):
            return True
        limit = self.inline_limit
        if isinstance(value, str) and len(value) * 4 <= limit:
            return True  # cheap bound: a str never takes more than 4 bytes per char
        # Likewise: its JSON text with the default separators takes at most 4 bytes
        # per character of the compact text.
        return size >= 0 and size * 4 <= limit

    async def offload(self, node_id: str, value: Any, size: int = -1) -> Any:
        """Keep a large result in the artifact store; return what the ledger holds.

        ``size`` is the length of the value's compact JSON text when known
        (:func:`storable_sized`), which spares encoding a small value to measure it.
        """
        if self.fits(value, size):
            return value
        data = json.dumps(value, ensure_ascii=False).encode()
        if len(data) <= self.inline_limit:
            return value
        ref = await self.store.put_artifact(
            self.run_id, data, name=f"{node_id}.result", media_type="application/json"
        )
        return {ARTIFACT: {"digest": ref.digest, "size": ref.size}}

    async def fetch(self, result: Any) -> Any:
        """A result as the node returned it, fetched from the artifact store if offloaded."""
        if isinstance(result, dict) and len(result) == 1 and ARTIFACT in result:
            data = await self.store.get_artifact(result[ARTIFACT]["digest"])
            return json.loads(data)
        return result


#: The most of a traceback a ledger record keeps (its end: where it was raised).
TRACEBACK_LIMIT = 16_384


def traceback_of(error: BaseException) -> dict[str, str] | None:
    """``{"traceback": text}`` for an error raised by a task's own code, else None.

    spindle's own errors (a command's exit code, a timeout) say all there is
    in their message; anything else keeps where it was raised, for ``spindle
    show`` and ``spindle logs`` (secrets are scrubbed from it like any result).
    """
    if isinstance(error, SpindleError) or error.__traceback__ is None:
        return None
    shown = traceback.TracebackException.from_exception(error)
    _trim(shown)
    text = "".join(shown.format())
    if len(text) > TRACEBACK_LIMIT:
        text = "...\n" + text[-TRACEBACK_LIMIT:]
    return {"traceback": text}


_SPINDLE = Path(__file__).parents[2]  # src/spindle, this file being core/engine/_results.py
#: Where the frames that lead to a task's code live: spindle (engine, executor,
#: middleware) and the thread and event-loop machinery that calls it.
_CALLERS = (
    f"{_SPINDLE}{os.sep}",
    f"{Path(asyncio.__file__).parent}{os.sep}",
    f"{Path(concurrent.futures.__file__).parent}{os.sep}",
    str(threading.__file__),
)


def _trim(shown: traceback.TracebackException) -> None:
    """Drop the frames before the task's own code, in ``shown`` and what it chains to.

    A traceback starts in the engine: half a dozen frames of spindle and asyncio
    before the first line the user wrote. Those are left out; every frame from
    the first one elsewhere on is kept (a ``ctx.step`` frame inside the task
    stays). A traceback that never leaves spindle is kept whole.
    """
    seen: set[int] = set()
    todo: list[traceback.TracebackException | None] = [shown]
    while todo:
        te = todo.pop()
        if te is None or id(te) in seen:
            continue
        seen.add(id(te))
        frames = te.stack
        first = next((i for i, f in enumerate(frames) if not f.filename.startswith(_CALLERS)), None)
        if first:
            te.stack = traceback.StackSummary.from_list(frames[first:])
        todo += [te.__cause__, te.__context__]


def describe(node_id: str, error: BaseException) -> str:
    """A node's failure as one message that names the node."""
    if isinstance(error, SpindleError):
        text = str(error)
        return text if node_id in text else f"node '{node_id}': {text}"
    return f"node '{node_id}' failed: {type(error).__name__}: {error}"
