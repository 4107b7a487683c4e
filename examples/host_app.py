"""spindle embedded in a host application: a workflow built in Python, run durably.

    python examples/host_app.py "the quick brown fox jumps over the lazy dog"

The run is recorded in the default store (``.spindle/spindle.db`` under the
current directory), so the CLI can inspect it afterwards::

    spindle runs
    spindle show RUN_ID
    spindle ledger verify RUN_ID
"""

import asyncio
import sys

import spindle

wf = spindle.Workflow("word_stats", inputs={"text": "to be or not to be"})


@wf.node
def words(text):
    """Split the text (a workflow input, filled by parameter name)."""
    return text.lower().split()


@wf.node(retry={"max_attempts": 2})
def counts(words):
    """Count each word (``words`` is the result of the node above)."""
    tally = {}
    for word in words:
        tally[word] = tally.get(word, 0) + 1
    return tally


@wf.node
def top(counts, ctx):
    """The most frequent words; ``ctx`` is the task context (run id, run dir, ...)."""
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return {"run": ctx.run_id, "top": ranked[:3], "distinct": len(counts)}


wf.output = "top"


def show_progress(event):
    """An observer can be any callable taking the lifecycle event."""
    if event.type == spindle.LifecycleEventType.NODE_COMPLETED:
        print(f"  {event.node_id} done")


async def main(text):
    async with spindle.Engine.from_config(observers=[show_progress]) as engine:
        state = await engine.run(wf, {"text": text})
    if state.status != spindle.RunStatus.COMPLETED:
        print(f"run {state.run_id} {state.status.value}: {state.error}", file=sys.stderr)
        return 1
    result = state.output
    print(f"{result['distinct']} distinct words; most frequent:")
    for word, n in result["top"]:
        print(f"  {word}: {n}")
    print(f"inspect it with: spindle show {state.run_id}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(" ".join(sys.argv[1:]) or wf.inputs["text"].default)))
