"""A hypothesis state machine drives random start/emit/resume/cancel/crash sequences.

"Crash" drops the engine object and builds a new one on the same SQLite file.
After every step the invariants hold: legal status transitions, an intact
ledger chain, each node completed at most once, no event lost (every emitted
event is consumed by exactly one run or still in the inbox), and gap-free
per-run event sequences.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from spindle import RunStatus, Settings, Workflow
from spindle.core.engine import Engine, SyncEngine
from spindle.core.errors import InvalidAnswer, RunNotWaiting, WaitKeyMismatch
from spindle.core.model import StepKind, StepStatus, verify

KEYS = ["k0", "k1"]
LEGAL = {
    RunStatus.PENDING: {
        RunStatus.PENDING,
        RunStatus.RUNNING,
        RunStatus.WAITING,
        RunStatus.COMPLETED,
        RunStatus.FAILED,
        RunStatus.CANCELLED,
    },
    RunStatus.RUNNING: {
        RunStatus.RUNNING,
        RunStatus.WAITING,
        RunStatus.COMPLETED,
        RunStatus.FAILED,
        RunStatus.CANCELLED,
    },
    RunStatus.WAITING: {
        RunStatus.WAITING,
        RunStatus.RUNNING,
        RunStatus.COMPLETED,
        RunStatus.FAILED,
        RunStatus.CANCELLED,
    },
}


def double(x: int) -> int:
    return x * 2


def plain() -> Workflow:
    wf = Workflow("plain", inputs={"x": 1})
    wf.task("a", {"kind": "python", "function": double}, inputs={"x": "inputs.x"})
    wf.task("b", {"kind": "python", "function": double}, inputs={"x": "a"})
    return wf


def asking() -> Workflow:
    wf = Workflow("asking")
    wf.effect("ask", {"kind": "ask_user", "prompt": "pick", "choices": ["a", "b"]})
    wf.task(
        "after", {"kind": "python", "function": double}, inputs={"x": {"value": 2}}, after=["ask"]
    )
    return wf


def waiting_for(key: str) -> Workflow:
    wf = Workflow(f"event-{key}")
    wf.effect("got", {"kind": "wait_event", "key": key})
    return wf


class EngineMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        root = Path(self.tmp.name)
        self.url = f"sqlite:///{root / 'spindle.db'}"
        self.settings = Settings(runs_dir=str(root / "runs"), max_inline_sleep=0)
        self.events: dict[str, list[int]] = {}
        self.status: dict[str, RunStatus] = {}
        # Runs in the order they started: run ids are random, so a rule that
        # picks a run by its place in a sorted id list would pick another run
        # when hypothesis replays the same draws, and the replay would differ.
        self.order: list[str] = []
        self.workflows: dict[str, Workflow] = {}
        self.emitted = 0
        self.engine = self._new_engine()

    def _new_engine(self) -> SyncEngine:
        return SyncEngine(Engine(self.url, settings=self.settings, observers=[self._observe]))

    def _observe(self, event: Any) -> None:
        self.events.setdefault(event.run_id, []).append(event.sequence)

    def _track(self, state: Any) -> None:
        before = self.status.get(state.run_id)
        if before is not None:
            if before.terminal:
                assert state.status == before, (before, state.status)
            else:
                assert state.status in LEGAL[before], (before, state.status)
        self.status[state.run_id] = state.status

    @rule(kind=st.sampled_from(["plain", "asking", "k0", "k1"]))
    def start(self, kind: str) -> None:
        wf = plain() if kind == "plain" else asking() if kind == "asking" else waiting_for(kind)
        state = self.engine.run(wf)
        self.workflows[state.run_id] = wf
        self.order.append(state.run_id)
        self._track(state)

    @rule(key=st.sampled_from(KEYS), value=st.integers(0, 9))
    def emit(self, key: str, value: int) -> None:
        self.emitted += 1
        for run_id in self.engine.emit(key, value):
            self._track(self.engine.get_run(run_id))

    @rule(data=st.data())
    def resume(self, data: st.DataObject) -> None:
        # Only runs asking a person: an event wait answered by hand would complete
        # without consuming an event, which the no-event-lost invariant counts on.
        waiting = [
            r
            for r in self.order
            if self.status[r] == RunStatus.WAITING and self.workflows[r].name == "asking"
        ]
        if not waiting:
            return
        run_id = data.draw(st.sampled_from(waiting))
        answer = data.draw(st.sampled_from(["a", "b", "zzz"]))
        try:
            state = self.engine.resume(run_id, None, answer, workflow=self.workflows[run_id])
        except (InvalidAnswer, RunNotWaiting, WaitKeyMismatch):
            state = self.engine.get_run(run_id)
        self._track(state)

    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        if not self.order:
            return
        run_id = data.draw(st.sampled_from(self.order))
        self._track(self.engine.cancel(run_id))

    @rule()
    def crash(self) -> None:
        # Drop the engine without closing anything, as a killed process would.
        self.engine._runner.close()
        self.engine = self._new_engine()

    @invariant()
    def ledgers_are_intact_and_nodes_complete_once(self) -> None:
        for run_id in self.status:
            records = self.engine.ledger(run_id)
            assert verify(records).ok
            done = [
                r.node_id
                for r in records
                if r.kind == StepKind.NODE and r.status == StepStatus.COMPLETED
            ]
            assert len(done) == len(set(done)), done

    @invariant()
    def no_event_is_lost(self) -> None:
        pending = len(self.engine.pending_events())
        consumed = 0
        for run_id in self.status:
            for r in self.engine.ledger(run_id):
                if (
                    r.node_id == "got"
                    and r.kind == StepKind.NODE
                    and r.status == StepStatus.COMPLETED
                ):
                    consumed += 1
        assert pending + consumed == self.emitted, (pending, consumed, self.emitted)

    @invariant()
    def event_sequences_are_gap_free(self) -> None:
        for run_id, seqs in self.events.items():
            distinct = sorted(set(seqs))
            assert distinct == list(range(1, len(distinct) + 1)), (run_id, seqs)

    def teardown(self) -> None:
        self.engine.close()
        self.tmp.cleanup()


EngineMachine.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_engine_state_machine = EngineMachine.TestCase
