"""Workflow loading: ``load_workflow`` (parse, validate, hash) of chain files vs plain parsing.

Run: ``python benchmarks/loading.py [--sizes 100 1000 4000] [--repeat 15]``

Writes chain workflows of N ``python_code`` nodes (each after the one before)
as YAML and as JSON into a temp dir and times, best of ``--repeat`` rounds
interleaved (the machine is noisy, so the cases take turns):

* the baselines: ``yaml.load(text, yaml.CSafeLoader)`` and ``json.loads`` of
  the same text: what bare parsing costs, with no limits, line numbers,
  validation or hashing;
* ``load_workflow(path)`` followed by ``definition_id()`` — reading the file,
  parsing within the limits, structuring and checking every node, hashing the
  definition: what ``spindle run FILE`` pays before the first step;
* the same with the pure-Python YAML loader forced (what a PyYAML without
  libyaml gets), so the gain of the C parser shows.

Prints ms per load, µs per node and the ratio to the baseline of the same
format, and checks the target: a 1,000-node file loads in at most 50 ms.
A chain node is 11 values (mappings, keys, scalars), so 4,000 nodes is near
the largest chain a file may hold (50,000 values); a 5,000-node chain file
is refused by the value limit (pass ``--sizes 5000`` to see the refusal row).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from spindle import ValidationError, load_workflow
from spindle.core.workflow import _yaml_fast

TARGET_MS = 50.0


def chain(n: int) -> dict[str, Any]:
    """A workflow of ``n`` no-op ``python_code`` nodes, each after the one before."""
    nodes: dict[str, Any] = {}
    for i in range(n):
        node: dict[str, Any] = {"runtime": {"kind": "python_code", "code": "pass"}}
        if i:
            node["after"] = [f"s{i - 1}"]
        nodes[f"s{i}"] = node
    return {"name": f"chain{n}", "nodes": nodes}


def write_yaml(path: Path, n: int) -> None:
    """The chain as a person writes it: block mappings, flow runtime and after lists."""
    lines = [f"name: chain{n}", "nodes:"]
    for i in range(n):
        lines.append(f"  s{i}:")
        lines.append("    runtime: {kind: python_code, code: pass}")
        if i:
            lines.append(f"    after: [s{i - 1}]")
    path.write_text("\n".join(lines) + "\n", "utf-8")


def load(path: Path, *, libyaml: bool) -> Callable[[], object]:
    def run() -> object:
        _yaml_fast.USE_LIBYAML = libyaml
        try:
            return load_workflow(path).definition_id()
        finally:
            _yaml_fast.USE_LIBYAML = _yaml_fast.HAS_LIBYAML

    return run


def best(fn: Callable[[], object], times: list[float]) -> None:
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 4000])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument(
        "--python-repeat", type=int, default=3, help="rounds of the slow pure-Python rows"
    )
    args = parser.parse_args()
    rows: list[tuple[int, str, str, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for n in args.sizes:
            ypath, jpath = d / f"chain{n}.yaml", d / f"chain{n}.json"
            write_yaml(ypath, n)
            jpath.write_text(json.dumps(chain(n), indent=2), "utf-8")
            ytext, jtext = ypath.read_text("utf-8"), jpath.read_text("utf-8")
            if yaml.load(ytext, yaml.CSafeLoader) != chain(n):
                raise SystemExit("the YAML chain does not parse to the chain")
            cases: dict[str, tuple[Callable[[], object], int]] = {
                "yaml baseline": (lambda t=ytext: yaml.load(t, yaml.CSafeLoader), args.repeat),
                "json baseline": (lambda t=jtext: json.loads(t), args.repeat),
                "yaml": (load(ypath, libyaml=True), args.repeat),
                "json": (load(jpath, libyaml=True), args.repeat),
                "yaml, pure Python": (load(ypath, libyaml=False), args.python_repeat),
            }
            try:
                for fn, _ in cases.values():
                    fn()  # warm-up: imports, plugin kinds, compiled code
            except ValidationError as exc:
                print(f"{n:>6}  refused: {exc.summary}")
                continue
            times: dict[str, list[float]] = {k: [] for k in cases}
            for r in range(args.repeat):
                for label, (fn, rounds) in cases.items():
                    if r < rounds:
                        best(fn, times[label])
            base = {fmt: min(times[f"{fmt} baseline"]) for fmt in ("yaml", "json")}
            for label in ("yaml", "json", "yaml, pure Python"):
                fmt = label.split(",")[0]
                rows.append((n, label, f"{fmt} baseline", min(times[label]), base[fmt]))
            for fmt in ("yaml", "json"):
                rows.append((n, f"{fmt} baseline", "", base[fmt], base[fmt]))
    print(f"{'nodes':>6}  {'case':<38}{'ms/load':>10}{'us/node':>10}{'vs baseline':>13}")
    for n, label, against, took, base_took in sorted(rows, key=lambda r: (r[0], r[1])):
        what = (
            f"plain parse ({'CSafeLoader' if label.startswith('yaml') else 'json.loads'})"
            if not against
            else f"load_workflow + hash ({label})"
        )
        ratio = f"{took / base_took:.2f}x" if against else "1.00x"
        print(f"{n:>6}  {what:<38}{took * 1e3:>10.2f}{took / n * 1e6:>10.1f}{ratio:>13}")
    target = [r for r in rows if r[0] == 1000 and r[1] == "yaml"]
    if target:
        took = target[0][3] * 1e3
        verdict = "met" if took <= TARGET_MS else "NOT met"
        print(
            f"target: load <= {TARGET_MS:.0f} ms for 1,000 nodes (YAML): {took:.1f} ms, {verdict}"
        )


if __name__ == "__main__":
    main()
