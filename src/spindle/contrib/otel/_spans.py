"""Spans from lifecycle events: a run span per drive of a run, node and sub-step spans.

Every span starts and ends at the ``occurred_at`` of the events that open and
close it, so a span covers what the run did, not when the observer heard of
it. The engine records no start time for a durable sub-step, so a sub-step's
span runs from its node's previous event (the node's start or its previous
sub-step's commit) to its own commit.

A run that waits ends its span (and its open node spans) with
``spindle.status = waiting``: the process may exit and the run may resume
days later elsewhere. Each resume opens a new ``spindle.run`` span whose parent
is the *first* run span, read from the trace context stored with the run, so
every drive of a run is one trace.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from attrs import define, field
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from spindle.core.model import LifecycleEventType, RunLifecycleEvent

__all__ = ["RunTraces", "nanoseconds"]

_PROPAGATOR = TraceContextTextMapPropagator()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ERROR_TYPE = re.compile(r"(?:^|: )([A-Z][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*): ")

E = LifecycleEventType


def nanoseconds(moment: datetime) -> int:
    """``moment`` as nanoseconds since the epoch (a naive datetime is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def traceparent(span: Span) -> dict[str, str]:
    """The W3C ``traceparent`` (and ``tracestate``) of ``span``; empty for a span that
    records nothing (the API's no-op provider)."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
    return carrier


def _error_attributes(message: str) -> dict[str, Any]:
    """The ``exception`` event's attributes for an error message: the engine's
    messages read ``"node 'x' failed: ValueError: text"``, so the first class-like
    name before ``": "`` is the type and what follows it the message."""
    found = _ERROR_TYPE.search(message)
    if found is None:
        return {"exception.type": "Error", "exception.message": message}
    return {"exception.type": found.group(1), "exception.message": message[found.end() :]}


@define
class _Run:
    """The open spans of one run in this process."""

    workflow: str
    span: Span
    nodes: dict[str, Span] = field(factory=dict)
    #: per node, when its last event happened (ns): where its next sub-step span starts
    marks: dict[str, int] = field(factory=dict)


class RunTraces:
    """The spans of the runs this process drives, opened and ended from their events."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer
        self.runs: dict[str, _Run] = {}

    # --- runs -----------------------------------------------------------------------

    def open_run(self, event: RunLifecycleEvent, workflow: str, stored: str | None) -> str | None:
        """Start the span of the drive ``event`` begins; return the traceparent to store
        with the run, or None when the run keeps the one it has (``stored``)."""
        at = nanoseconds(event.occurred_at)
        previous = self.runs.pop(event.run_id, None)
        if previous is not None:
            self._close(previous, at, "interrupted")
        parent: Context | None = None
        if stored:
            parent = _PROPAGATOR.extract({"traceparent": stored})
            if not trace.get_current_span(parent).get_span_context().is_valid:
                parent = None  # unreadable: start afresh and store the new context
        resumed = event.type == E.RUN_RESUMED or parent is not None
        attributes: dict[str, Any] = {
            "spindle.kind": "run",
            "spindle.workflow": workflow,
            "spindle.run_id": event.run_id,
            "spindle.status": "running",
            "spindle.resumed": resumed,
        }
        # Without a stored context the run joins whatever span is current where it
        # started (a host's request span), else it starts a trace.
        span = self.tracer.start_span(
            f"spindle.run {workflow}", context=parent, start_time=at, attributes=attributes
        )
        if event.payload.get("retried"):
            span.add_event("retried", timestamp=at)
        self.runs[event.run_id] = _Run(workflow, span)
        if parent is not None:
            return None
        return traceparent(span).get("traceparent")

    def run_event(self, event: RunLifecycleEvent) -> None:
        """Record a run-level event: a wait, the run's end, a handoff, an audit entry."""
        run = self.runs.get(event.run_id)
        if run is None:
            return  # a run this process did not start or resume (a cancel from the CLI)
        at = nanoseconds(event.occurred_at)
        payload = event.payload
        if event.type == E.RUN_WAITING:
            waits = [str(w) for w in payload.get("waits") or []]
            attributes: dict[str, Any] = {"spindle.waits": waits}
            if payload.get("reason"):
                attributes["spindle.reason"] = str(payload["reason"])
            if event.node_id is not None:
                attributes["spindle.node"] = event.node_id
                node_span = run.nodes.get(event.node_id)
                if node_span is not None:
                    node_span.add_event("wait", attributes, timestamp=at)
            run.span.add_event("wait", attributes, timestamp=at)
            self._close(self.runs.pop(event.run_id), at, "waiting")
        elif event.type in (E.RUN_COMPLETED, E.RUN_FAILED, E.RUN_CANCELLED):
            status = {
                E.RUN_COMPLETED: "completed",
                E.RUN_FAILED: "failed",
                E.RUN_CANCELLED: "cancelled",
            }[event.type]
            if event.type == E.RUN_FAILED:
                _record_error(run.span, str(payload.get("error") or "the run failed"), at)
            elif event.type == E.RUN_COMPLETED:
                run.span.set_status(Status(StatusCode.OK))
            elif payload.get("reason"):
                run.span.add_event("cancelled", {"spindle.reason": str(payload["reason"])}, at)
            self._close(self.runs.pop(event.run_id), at, status)
        else:  # handoff_created, audit: worth seeing on the run's timeline
            attributes = {f"spindle.{k}": _attribute(v) for k, v in payload.items()}
            run.span.add_event(event.type.value, attributes, timestamp=at)

    def _close(self, run: _Run, at: int, status: str) -> None:
        for node_id, span in run.nodes.items():
            span.set_attribute("spindle.status", status)
            span.end(end_time=max(at, run.marks.get(node_id, at)))
        run.nodes.clear()
        run.span.set_attribute("spindle.status", status)
        run.span.end(end_time=at)

    def close_all(self, at: int) -> None:
        """End every open span (the observer is closing): ``spindle.status = interrupted``."""
        for run in self.runs.values():
            self._close(run, at, "interrupted")
        self.runs.clear()

    # --- nodes and sub-steps -----------------------------------------------------------

    def node_event(self, event: RunLifecycleEvent) -> None:
        """Open, annotate or end a node's span (and make its sub-steps' spans)."""
        node_id = event.node_id
        if node_id is None:
            return
        run = self.runs.get(event.run_id)
        at = nanoseconds(event.occurred_at)
        payload = event.payload
        if event.type == E.NODE_STARTED:
            self._start_node(run, event, at)
            return
        if event.type in (E.STEP_COMPLETED, E.STEP_FAILED):
            self._step(run, event, at)
            return
        span = run.nodes.pop(node_id, None) if run is not None else None
        if span is None:
            # Ended with no start seen here: an effect node answered after a resume, a
            # skipped node, a map gathering; a span of no length marks it.
            span = self._node_span(run, event, at)
        if run is not None:
            run.marks.pop(node_id, None)
        if event.type == E.NODE_COMPLETED:
            span.set_status(Status(StatusCode.OK))
            status = "completed"
        elif event.type == E.NODE_FAILED:
            _record_error(span, str(payload.get("error") or "the node failed"), at)
            status = "failed"
        elif event.type == E.NODE_RETRYING:
            error = str(payload.get("error") or "")
            span.add_event(
                "retry",
                {
                    "spindle.attempt": int(payload.get("attempt") or 1),
                    "spindle.retry_in": float(payload.get("delay") or 0.0),
                    **_error_attributes(error),
                },
                timestamp=at,
            )
            _record_error(span, error or "the attempt failed", at)
            status = "retrying"
        else:  # skipped
            for k, v in payload.items():
                span.set_attribute(f"spindle.{k}", _attribute(v))
            status = "skipped"
        span.set_attribute("spindle.status", status)
        span.end(end_time=at)

    def _start_node(self, run: _Run | None, event: RunLifecycleEvent, at: int) -> None:
        node_id = str(event.node_id)
        if run is not None:
            stale = run.nodes.pop(node_id, None)
            if stale is not None:  # started again with no end seen: that attempt is over
                stale.set_attribute("spindle.status", "interrupted")
                stale.end(end_time=at)
        span = self._node_span(run, event, at)
        span.set_attribute("spindle.status", "running")
        if run is not None:
            run.nodes[node_id] = span
            run.marks[node_id] = at

    def _node_span(self, run: _Run | None, event: RunLifecycleEvent, at: int) -> Span:
        attributes: dict[str, Any] = {
            "spindle.kind": "node",
            "spindle.run_id": event.run_id,
            "spindle.node": str(event.node_id),
            "spindle.attempt": int(event.payload.get("attempt") or 1),
        }
        context = None
        if run is not None:
            attributes["spindle.workflow"] = run.workflow
            context = trace.set_span_in_context(run.span)
        return self.tracer.start_span(
            f"spindle.node {event.node_id}", context=context, start_time=at, attributes=attributes
        )

    def _step(self, run: _Run | None, event: RunLifecycleEvent, at: int) -> None:
        node_id = str(event.node_id)
        node_span = run.nodes.get(node_id) if run is not None else None
        payload = event.payload
        name = str(payload.get("step") or payload.get("call"))
        attributes: dict[str, Any] = {
            "spindle.kind": "step",
            "spindle.run_id": event.run_id,
            "spindle.node": node_id,
            "spindle.step": name,
            "spindle.call": _attribute(payload.get("call")),
            "spindle.attempt": int(payload.get("attempt") or 1),
        }
        start = at
        if run is not None:
            attributes["spindle.workflow"] = run.workflow
            start = min(run.marks.get(node_id, at), at)
            run.marks[node_id] = at
        parent = node_span if node_span is not None else (run.span if run is not None else None)
        span = self.tracer.start_span(
            f"spindle.step {name}",
            context=trace.set_span_in_context(parent) if parent is not None else None,
            start_time=start,
            attributes=attributes,
        )
        if event.type == E.STEP_FAILED:
            error = str(payload.get("error") or "the sub-step failed")
            _record_error(span, error, at)
            if payload.get("retry_in") is not None:
                span.add_event("retry", {"spindle.retry_in": float(payload["retry_in"])}, at)
            span.set_attribute("spindle.status", "failed")
        else:
            span.set_status(Status(StatusCode.OK))
            span.set_attribute("spindle.status", "completed")
        span.end(end_time=at)

    # --- propagation --------------------------------------------------------------

    def task_env(self, run_id: str, node_id: str) -> dict[str, str]:
        """``TRACEPARENT`` (and ``TRACESTATE``) of the node's open span, for its process."""
        run = self.runs.get(run_id)
        if run is None:
            return {}
        span = run.nodes.get(node_id, run.span)
        return {k.upper(): v for k, v in traceparent(span).items()}


def _record_error(span: Span, message: str, at: int) -> None:
    span.set_status(Status(StatusCode.ERROR, message))
    span.add_event("exception", _error_attributes(message), timestamp=at)


def _attribute(value: Any) -> Any:
    """``value`` as a span attribute (str, bool, int, float, or a list of str)."""
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return str(value)
