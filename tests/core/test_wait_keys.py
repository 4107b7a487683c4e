"""Templated wait keys: ``wait_event``/``ask_user``/``approval_quorum`` keys made from a
run's inputs, its id or the node's inputs; checked when the workflow loads."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spindle import RunStatus, ValidationError, Workflow
from spindle.core.engine._ending import event_keys
from spindle.core.model import parse_template
from spindle.core.workflow import fill_templates, load_workflow_text
from spindle.plugins.effects.waits import WaitEventHandler

from .conftest import run

ORDERS = """
name: orders
inputs:
  order: {}
nodes:
  paid:
    effect: {kind: wait_event, key: "order-{inputs.order}-paid"}
"""


def load(text: str) -> Workflow:
    return load_workflow_text(textwrap.dedent(text).lstrip(), filename="wf.yaml")


def problems(text: str) -> list[str]:
    with pytest.raises(ValidationError) as info:
        load(text)
    return info.value.problems


def waits_of(state: Any) -> list[str]:
    return [w.event_key or w.key for w in state.waits]


def test_each_run_waits_on_the_key_its_inputs_make(store_url, make_engine):
    """Two runs of one workflow wait on their own keys; an event reaches only its run."""
    wf = load(ORDERS)

    async def main():
        async with make_engine(store_url) as engine:
            first = await engine.run(wf, inputs={"order": 7})
            second = await engine.run(wf, inputs={"order": "A-8"})
            delivered = await engine.emit("order-A-8-paid", {"amount": 5})
            return (
                first,
                second,
                delivered,
                await engine.get_run(first.run_id),
                await engine.get_run(second.run_id),
            )

    first, second, delivered, first_now, second_now = run(main())
    assert waits_of(first) == ["order-7-paid"]
    assert waits_of(second) == ["order-A-8-paid"]
    assert delivered == [second.run_id]
    assert first_now.status == RunStatus.WAITING
    assert second_now.status == RunStatus.COMPLETED
    assert second_now.output == {"paid": {"amount": 5}}


def test_an_event_sent_before_the_run_waits_is_kept_for_its_key(store_url, make_engine):
    """The inbox is matched against the filled-in key, so an early event is not lost."""
    wf = load(ORDERS)

    async def main():
        async with make_engine(store_url) as engine:
            await engine.emit("order-9-paid", "early")
            return await engine.run(wf, inputs={"order": 9})

    state = run(main())
    assert state.status == RunStatus.COMPLETED
    assert state.output == {"paid": "early"}


def test_a_question_keyed_by_the_run_id_is_answered_by_that_key(store_url, make_engine):
    """``{run.id}`` makes a key no other run shares; resume names it."""
    wf = load(
        """
        name: review
        nodes:
          ship:
            effect: {kind: ask_user, prompt: "Ship it?", choices: [yes, no], key: "ship-{run.id}"}
        """
    )

    async def main():
        async with make_engine(store_url) as engine:
            waiting = await engine.run(wf)
            done = await engine.resume(waiting.run_id, f"ship-{waiting.run_id}", "yes")
            return waiting, done

    waiting, done = run(main())
    assert waits_of(waiting) == [f"ship-{waiting.run_id}"]
    assert done.status == RunStatus.COMPLETED
    assert done.output == {"ship": "yes"}


def test_a_key_from_an_upstream_result_through_the_nodes_inputs(store_url, make_engine):
    """``{NAME}`` is one of the node's own inputs, here the id an earlier node made."""
    wf = Workflow("shipments")
    wf.task("book", {"kind": "python", "function": _book})
    wf.effect(
        "delivered",
        {"kind": "wait_event", "key": "parcel-{parcel}-delivered"},
        inputs={"parcel": "book"},
    )

    async def main():
        async with make_engine(store_url) as engine:
            return await engine.run(wf)

    state = run(main())
    assert waits_of(state) == ["parcel-P-1001-delivered"]


def _book() -> str:
    return "P-1001"


def test_literal_braces_are_doubled_and_values_read_like_command_placeholders(
    store_url, make_engine
):
    """``{{``/``}}`` are braces; a list is compact JSON, a bool true/false, None empty."""
    wf = load(
        """
        name: literal
        inputs:
          tags: {default: [a, b]}
          urgent: {default: true}
          note: {default: null}
        nodes:
          got:
            effect: {kind: wait_event, key: "{{x}}-{inputs.tags}-{inputs.urgent}-{inputs.note}."}
        """
    )

    async def main():
        async with make_engine(store_url) as engine:
            return await engine.run(wf)

    assert waits_of(run(main())) == ['{x}-["a","b"]-true-.']


def test_a_literal_key_is_unchanged(store_url, make_engine):
    """A key without placeholders is the same string as before templates."""
    wf = load(
        """
        name: plain
        nodes:
          got:
            effect: {kind: wait_event, key: "invoices.paid"}
        """
    )

    async def main():
        async with make_engine(store_url) as engine:
            return await engine.run(wf)

    assert waits_of(run(main())) == ["invoices.paid"]


def test_the_finishing_snapshot_counts_events_under_the_filled_in_key():
    """Event keys for unsettled work are this run's keys; one from node inputs is skipped."""
    wf = load(
        """
        name: keys
        inputs: {order: {}}
        nodes:
          first:
            effect: {kind: wait_event, key: "order-{inputs.order}"}
          second:
            effect: {kind: wait_event, key: "after-{prev}"}
            inputs: {prev: first}
          third:
            effect: {kind: wait_event, key: "fixed"}
        """
    )

    class State:
        run_id = "r1"
        inputs = {"order": 5}

    assert event_keys(wf, State()) == ["order-5", "fixed"]  # type: ignore[arg-type]


# --- checked when the workflow loads ------------------------------------------------------

BAD = """
name: bad
inputs:
  order: {}
  token: {secret: true}
nodes:
  typo:
    effect: {kind: wait_event, key: "order-{inputs.ordr}-paid"}
  secret:
    effect: {kind: wait_event, key: "tok-{inputs.token}"}
  run_field:
    effect: {kind: ask_user, prompt: "p", key: "x-{run.name}"}
  brace:
    effect: {kind: wait_event, key: "x-{oops"}
  laundered:
    effect: {kind: wait_event, key: "x-{tok}"}
    inputs: {tok: inputs.token}
  stranger:
    effect: {kind: wait_event, key: "x-{who}"}
  quorum:
    effect: {kind: approval_quorum, prompt: "sign", key: "sign-{inputs.release}"}
  odd:
    effect: {kind: wait_event, key: "x-{}"}
"""


def test_every_bad_placeholder_is_reported_with_where_and_how_to_fix_it():
    """One line per problem, naming the node, the key, the placeholder and the field."""
    found = problems(BAD)
    by_node = {line.split("'")[1]: line for line in found}
    assert set(by_node) == {
        "typo",
        "secret",
        "run_field",
        "brace",
        "laundered",
        "stranger",
        "quorum",
        "odd",
    }, found
    assert by_node["typo"] == (
        "wf.yaml:7: node 'typo': wait_event key 'order-{inputs.ordr}-paid': {inputs.ordr} "
        "names no declared workflow input; declared inputs: order, token @ nodes.typo.effect.key"
    )
    assert (
        "{inputs.token} is a secret input; a key is stored and shown in clear"
        in (by_node["secret"])
    )
    assert "{tok} is the secret input 'inputs.token'" in by_node["laundered"]
    assert "{run.name} is not known (of the run, only {run.id} is)" in by_node["run_field"]
    assert (
        "unmatched '{' at position 3 in wait_event key 'x-{oops'; write '{{'" in (by_node["brace"])
    )
    assert (
        "{who} is neither a workflow input nor one of the node's inputs (it has no inputs)"
        in (by_node["stranger"])
    )
    assert "approval_quorum key 'sign-{inputs.release}'" in by_node["quorum"]
    assert "malformed placeholder '{}'" in by_node["odd"]
    assert all(line.endswith(".effect.key") for line in found), found


def test_a_workflow_built_in_python_is_checked_the_same_way():
    """``Workflow.validate`` refuses a bad key built in code too."""
    wf = Workflow("code", inputs={"order": 1})
    wf.effect("paid", {"kind": "wait_event", "key": "order-{inputs.id}"})
    with pytest.raises(ValidationError) as info:
        wf.validate()
    assert info.value.problems == [
        "node 'paid': wait_event key 'order-{inputs.id}': {inputs.id} names no declared "
        "workflow input; declared inputs: order @ nodes.paid.effect.key"
    ]


def test_a_key_made_in_code_mid_function_is_not_a_template(store_url, make_engine):
    """``ctx.wait_for_event(key)`` takes the key as the code wrote it, braces and all."""
    wf = Workflow("mid")

    @wf.node
    def listen(ctx: Any) -> Any:
        return ctx.wait_for_event("literal-{inputs.order}")

    async def main():
        async with make_engine(store_url) as engine:
            return await engine.run(wf)

    assert waits_of(run(main())) == ["literal-{inputs.order}"]


@given(st.text(max_size=40))
def test_any_text_with_its_braces_doubled_reads_back_as_itself(text):
    """Doubling the braces is the one escape: every string can be written as a template."""
    escaped = text.replace("{", "{{").replace("}", "}}")
    assert "".join(parse_template(escaped, "key")) == text


@given(st.lists(st.text(max_size=8), min_size=1, max_size=4), st.integers(-5, 5))
def test_a_filled_in_key_is_the_literal_parts_around_the_value(parts, order):
    """Literal text stays as written, each placeholder becomes its value's text."""
    escaped = [p.replace("{", "{{").replace("}", "}}") for p in parts]
    handler = WaitEventHandler(key="{inputs.order}".join(escaped))
    filled = fill_templates(handler, "r1", {"order": order}, None)
    assert filled.key == str(order).join(parts)
    assert handler.key == "{inputs.order}".join(escaped)  # the workflow's own is unchanged
