"""What observing a run costs: durable steps/s with no observer, OpenTelemetry, Prometheus.

Run: ``python benchmarks/observers.py [--nodes 200] [--runs 5] [--repeat 3]``

Each case runs ``--runs`` runs of a chain of ``--nodes`` no-op nodes on the
memory and SQLite stores, in one engine, and reports steps/s and the ratio to
the same store without observers:

* no observer (the engine builds no event object at all);
* an observer that does nothing (what the engine's events cost by themselves:
  an event object per step, delivered);
* ``otel`` on OpenTelemetry's no-op provider (the API only, nothing recorded);
* ``otel`` on an SDK provider whose spans go to an in-memory exporter (every
  run, node and sub-step span made and ended: what tracing really costs,
  without a network);
* ``prometheus`` (counters and histograms updated on every event, nothing
  served).

It needs the ``otel`` and ``metrics`` extras (``pip install -e '.[otel,metrics]'``).
The rounds interleave the cases (after a warm-up round) and the median round is kept.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import chain
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracerProvider

from spindle import Engine, Settings
from spindle.contrib.metrics import PrometheusObserver
from spindle.contrib.otel import OtelObserver


class Nothing:
    """An observer that ignores every event."""

    async def on_event(self, event: Any) -> None:
        return None


def sdk_observer() -> tuple[Any, ...]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    return (OtelObserver.using(provider),)


CASES: dict[str, Callable[[], tuple[Any, ...]]] = {
    "no observer": lambda: (),
    "an observer doing nothing": lambda: (Nothing(),),
    "otel, no-op provider": lambda: (OtelObserver.using(NoOpTracerProvider()),),  # type: ignore[arg-type]
    "otel, SDK + in-memory exporter": sdk_observer,
    "prometheus": lambda: (PrometheusObserver(),),
}


async def rate(url: str, runs_dir: str, observers: tuple[Any, ...], nodes: int, runs: int) -> float:
    wf = chain(nodes)
    settings = Settings(runs_dir=runs_dir)
    async with Engine(url, settings=settings, observers=observers) as engine:
        await engine.run(wf)  # warm: the definition kept, first events made
        started = time.perf_counter()
        for _ in range(runs):
            await engine.run(wf)
        return nodes * runs / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results: dict[tuple[str, str], list[float]] = {}
    for r in range(-1, args.repeat):  # round -1 warms up (imports, first engines): not kept
        for store in ("memory", "sqlite"):
            for name, make in CASES.items():
                with tempfile.TemporaryDirectory() as tmp:
                    url = "memory://" if store == "memory" else f"sqlite:///{tmp}/b.db"
                    got = asyncio.run(
                        rate(url, str(Path(tmp) / "runs"), make(), args.nodes, args.runs)
                    )
                if r >= 0:
                    results.setdefault((store, name), []).append(got)
        print(f"round {r + 1}/{args.repeat} done" if r >= 0 else "warm-up done")
    print(f"{'store':8} {'case':32} {'steps/s':>9}  {'vs none':>7}  {'us/step added':>13}")
    for store in ("memory", "sqlite"):
        base = statistics.median(results[(store, "no observer")])
        for name in CASES:
            value = statistics.median(results[(store, name)])
            added = (1 / value - 1 / base) * 1e6
            print(f"{store:8} {name:32} {value:9,.0f}  {value / base:6.2f}x  {added:13.1f}")


if __name__ == "__main__":
    main()
