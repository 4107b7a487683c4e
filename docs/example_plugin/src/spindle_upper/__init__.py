"""An example spindle plugin: an ``upper`` runtime and a ``slack`` observer."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from typing import TYPE_CHECKING, Any, ClassVar

from attrs import define, field
from spindle import ObserverPlugin, RunLifecycleEvent, Runtime
from spindle.plugins.payloads import PythonCall

if TYPE_CHECKING:
    from spindle import NodeSpec, TaskContext

__all__ = ["SlackObserver", "UpperRuntime", "post_json", "shout"]


def shout(text: str, suffix: str = "") -> str:
    """The work itself: a module-level function, so any executor can import it."""
    return text.upper() + suffix


@define
class UpperRuntime(Runtime[PythonCall], kind="upper", description="Upper-cases text."):
    """Upper-cases the node input ``text`` (or the ``text`` option).

    Attributes:
        text: the text to use when the node has no ``text`` input.
        suffix: appended after upper-casing (``"!"``).
    """

    default_executor: ClassVar[str] = "inline"

    text: str | None = None
    suffix: str = ""

    def check(self, node: NodeSpec, available: set[str]) -> list[str]:
        """Report, at load time, a node that gives no text at all."""
        if self.text is None and "text" not in node.inputs:
            return ["upper needs a 'text' option or a node input named 'text'"]
        return []

    async def _setup_runtime(self, task: TaskContext) -> PythonCall:
        """Prepare the call; an executor (``inline`` by default) runs it."""
        text = task.inputs.get("text", self.text)
        return PythonCall(
            function=shout,
            kwargs={"text": str(text), "suffix": self.suffix},
            reference="spindle_upper:shout",
            name="shout",
        )


def post_json(url: str, payload: dict[str, Any]) -> None:
    """POST ``payload`` as JSON to ``url`` (blocking; called in a thread)."""
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10):
        pass


@define
class SlackObserver(ObserverPlugin, kind="slack", description="Posts run events to Slack."):
    """Posts a line to a Slack incoming webhook for selected lifecycle events.

    Attributes:
        webhook: the incoming-webhook URL.
        events: the event types to post.
        channel: override the webhook's default channel.
    """

    webhook: str
    events: list[str] = field(factory=lambda: ["run_completed", "run_failed", "run_waiting"])
    channel: str | None = None

    async def on_event(self, event: RunLifecycleEvent) -> None:
        """Post the event if its type is selected; never change run state."""
        if event.type.value not in self.events:
            return
        text = f"run {event.run_id}: {event.type.value}"
        if event.node_id:
            text += f" (node {event.node_id})"
        payload: dict[str, Any] = {"text": text}
        if self.channel:
            payload["channel"] = self.channel
        # Observers run on the engine's event loop: keep blocking I/O off it.
        await asyncio.to_thread(post_json, self.webhook, payload)
