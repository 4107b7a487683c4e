"""The ``prometheus`` observer: lifecycle events counted and timed as Prometheus metrics.

Every metric is labelled by ``workflow`` and, where it applies, by ``status``, the
node's ``kind`` (its runtime's or effect's kind) or the wait's ``reason``. Run ids
are never labels (one series per run would grow without bound); node ids are, only
with ``node_label = true``, for workflows with a fixed set of nodes.

Durations are measured between the events this process sees: from ``node_started``
to the node's end, from ``run_started`` to the run's end. A run started by one
worker and finished by another (it waited in between) is counted by both, timed by
neither; the counters hold for every run.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from attrs import define, field

from spindle import ConfigError, LifecycleEventType, ObserverPlugin, RunLifecycleEvent
from spindle.contrib.metrics._client import prometheus_client

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["PrometheusObserver"]

_T = LifecycleEventType

#: The end of a run, by its event, as the ``status`` label reads.
_RUN_ENDS = {
    _T.RUN_COMPLETED: "completed",
    _T.RUN_FAILED: "failed",
    _T.RUN_CANCELLED: "cancelled",
}

#: The end of a node attempt, by its event, as the ``status`` label reads.
_NODE_ENDS = {
    _T.NODE_COMPLETED: "completed",
    _T.NODE_FAILED: "failed",
    _T.NODE_SKIPPED: "skipped",
}

#: Start times kept at most (runs and attempts whose end this process never sees, as
#: a run another worker finishes, must not grow the observer without bound).
_MAX_OPEN = 10_000


def _seconds(start: datetime | None, end: datetime) -> float | None:
    return None if start is None else max((end - start).total_seconds(), 0.0)


def _remember(starts: dict[Any, datetime], key: Any, at: datetime) -> None:
    starts.pop(key, None)  # re-inserted last: the oldest entry is the first
    starts[key] = at
    if len(starts) > _MAX_OPEN:
        del starts[next(iter(starts))]


class _Metrics:
    """The metrics one observer updates, registered in ``registry``."""

    def __init__(
        self, client: Any, registry: Any, node: list[str], buckets: list[float] | None
    ) -> None:
        reg = {"registry": registry}
        timed = {**reg, **({} if buckets is None else {"buckets": buckets})}
        self.runs_started = client.Counter(
            "spindle_runs_started", "Runs started (driven for the first time).", ["workflow"], **reg
        )
        self.runs_resumed = client.Counter(
            "spindle_runs_resumed", "Runs driven on after a wait.", ["workflow"], **reg
        )
        self.runs_finished = client.Counter(
            "spindle_runs_finished",
            "Runs ended, by status (completed, failed, cancelled).",
            ["workflow", "status"],
            **reg,
        )
        self.run_seconds = client.Histogram(
            "spindle_run_duration_seconds",
            "Seconds from a run's start to its end, for runs started and ended in this process.",
            ["workflow", "status"],
            **timed,
        )
        self.nodes_started = client.Counter(
            "spindle_nodes_started", "Node attempts started, by node kind.", node, **reg
        )
        self.nodes_finished = client.Counter(
            "spindle_nodes_finished",
            "Nodes ended, by node kind and status (completed, failed, skipped).",
            [*node, "status"],
            **reg,
        )
        self.node_seconds = client.Histogram(
            "spindle_node_duration_seconds",
            "Seconds a node attempt took (node_started to its end, or to its retry).",
            [*node, "status"],
            **timed,
        )
        self.retries = client.Counter(
            "spindle_node_retries", "Failed node attempts that will be retried.", node, **reg
        )
        self.waits = client.Counter(
            "spindle_waits",
            "Times a run began waiting, by the reason of each wait "
            "(event, timer, user, subworkflow, retry, handoff; parked: lacking a secret).",
            ["workflow", "reason"],
            **reg,
        )
        self.steps = client.Counter(
            "spindle_steps",
            "Durable sub-steps inside tasks (ctx.step) committed, by status.",
            ["workflow", "status"],
            **reg,
        )
        self.handoffs = client.Counter(
            "spindle_handoffs", "Handoffs created by finishing runs.", ["workflow"], **reg
        )

    def all(self) -> list[Any]:
        """Every metric, to unregister them."""
        return list(vars(self).values())


@define
class PrometheusObserver(ObserverPlugin, kind="prometheus"):
    """Counts and times runs, nodes, retries, waits and sub-steps as Prometheus metrics.

    Configure it in ``spindle.toml`` (``spindle worker --metrics-port`` adds one
    itself and serves it)::

        [[observers]]
        kind = "prometheus"

    A host application serves :attr:`collectors` itself, or with
    :func:`spindle.contrib.metrics.serve`. Needs ``pip install 'spindle[metrics]'``.

    Attributes:
        registry: ``own`` (default): the metrics live in a registry of this
            observer's own (:attr:`collectors`), so two engines in one process
            never clash; ``global``: in prometheus_client's default registry,
            served by whatever already serves it (then only one such observer
            may exist per process).
        node_label: also label node metrics by node id (``node``); only for
            workflows with a fixed, small set of nodes (a map's items are nodes).
        buckets: histogram bucket bounds in seconds (default: prometheus_client's).
    """

    registry: str = "own"
    node_label: bool = False
    buckets: list[float] | None = None
    # prometheus_client's types are only imported to check types (it is optional), and
    # the config converter resolves every field's type: these two are typed Any here.
    _collectors: Any = field(init=False, default=None, repr=False, eq=False)
    _metrics: Any = field(init=False, default=None, repr=False, eq=False)
    # Each (metric, labels) series as prometheus_client hands it out: asking for it
    # again costs a lock and a label check an event, this dict a lookup.
    _series: dict[tuple[str, tuple[str, ...]], Any] = field(
        init=False, factory=dict, repr=False, eq=False
    )
    _run_starts: dict[str, datetime] = field(init=False, factory=dict, repr=False, eq=False)
    _node_starts: dict[tuple[str, str], datetime] = field(
        init=False, factory=dict, repr=False, eq=False
    )

    #: Every metric's name as exposed (a counter gains ``_total``), for the docs and tests.
    METRICS: ClassVar[tuple[str, ...]] = (
        "spindle_runs_started_total",
        "spindle_runs_resumed_total",
        "spindle_runs_finished_total",
        "spindle_run_duration_seconds",
        "spindle_nodes_started_total",
        "spindle_nodes_finished_total",
        "spindle_node_duration_seconds",
        "spindle_node_retries_total",
        "spindle_waits_total",
        "spindle_steps_total",
        "spindle_handoffs_total",
    )

    def __attrs_post_init__(self) -> None:
        client = prometheus_client()
        if self.registry == "own":
            self._collectors = client.CollectorRegistry(auto_describe=True)
        elif self.registry == "global":
            self._collectors = client.REGISTRY
        else:
            raise ConfigError(
                f"observer 'prometheus': registry must be 'own' or 'global', got {self.registry!r}"
            )
        buckets = self.buckets
        if buckets is not None and (
            not buckets or any(not isinstance(b, int | float) or b <= 0 for b in buckets)
        ):
            raise ConfigError(
                f"observer 'prometheus': buckets must be a non-empty list of positive "
                f"seconds, got {buckets!r}"
            )
        node = ["workflow", "kind", *(["node"] if self.node_label else [])]
        try:
            self._metrics = _Metrics(
                client,
                self._collectors,
                node,
                None if buckets is None else sorted(float(b) for b in buckets),
            )
        except ValueError as exc:  # prometheus_client: a name already in the registry
            raise ConfigError(
                f"observer 'prometheus': {exc}; with registry = 'global' only one "
                "prometheus observer may exist in a process (use registry = 'own')"
            ) from None

    @property
    def collectors(self) -> CollectorRegistry:
        """The registry the metrics are in: serve it, or read samples from it
        (``observer.collectors.get_sample_value(name, labels)``)."""
        registry: CollectorRegistry = self._collectors
        return registry

    def unregister(self) -> None:
        """Take this observer's metrics out of its registry: with ``registry = 'global'``,
        so that another observer may register the same names (an application that
        builds its engine again, a test)."""
        for metric in self._metrics.all():
            self._collectors.unregister(metric)

    def _one(self, name: str, *labels: str) -> Any:
        """The series of metric ``name`` (an attribute of :class:`_Metrics`) at ``labels``."""
        key = (name, labels)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = getattr(self._metrics, name).labels(*labels)
        return series

    def _node_labels(self, event: RunLifecycleEvent, workflow: str) -> tuple[str, ...]:
        kind = event.node_kind or "unknown"
        if self.node_label:
            return (workflow, kind, event.node_id or "")
        return (workflow, kind)

    async def on_event(self, event: RunLifecycleEvent) -> None:
        """Count (and time) ``event`` in the metrics it belongs to."""
        one = self._one
        t = event.type
        workflow = event.workflow or "unknown"
        if t in _NODE_ENDS or t is _T.NODE_RETRYING:
            labels = self._node_labels(event, workflow)
            started = self._node_starts.pop((event.run_id, event.node_id or ""), None)
            status = "retrying" if t is _T.NODE_RETRYING else _NODE_ENDS[t]
            seconds = _seconds(started, event.occurred_at)
            if seconds is not None:
                one("node_seconds", *labels, status).observe(seconds)
            if t is _T.NODE_RETRYING:
                one("retries", *labels).inc()
            else:
                one("nodes_finished", *labels, status).inc()
        elif t is _T.NODE_STARTED:
            one("nodes_started", *self._node_labels(event, workflow)).inc()
            _remember(self._node_starts, (event.run_id, event.node_id or ""), event.occurred_at)
        elif t is _T.STEP_COMPLETED or t is _T.STEP_FAILED:
            one("steps", workflow, "completed" if t is _T.STEP_COMPLETED else "failed").inc()
        elif t is _T.RUN_STARTED:
            one("runs_started", workflow).inc()
            _remember(self._run_starts, event.run_id, event.occurred_at)
        elif t is _T.RUN_RESUMED:
            one("runs_resumed", workflow).inc()
        elif t is _T.RUN_WAITING:
            reasons = event.payload.get("reasons") or ["parked"]
            for reason in sorted(set(map(str, reasons))):
                one("waits", workflow, reason).inc()
        elif t in _RUN_ENDS:
            status = _RUN_ENDS[t]
            one("runs_finished", workflow, status).inc()
            seconds = _seconds(self._run_starts.pop(event.run_id, None), event.occurred_at)
            if seconds is not None:
                one("run_seconds", workflow, status).observe(seconds)
        elif t is _T.HANDOFF_CREATED:
            one("handoffs", workflow).inc()
