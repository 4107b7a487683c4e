"""Cold start of the ``spindle`` command, with 0 and with 500 installed plugins.

Run it from a checkout where spindle is installed (``pip install -e .``)::

    python benchmarks/cold_start.py            # 20 timed runs per scenario
    python benchmarks/cold_start.py --runs 50 --strict

It builds a throwaway "site-packages" of 500 synthetic distributions (each a
``*.dist-info`` with one ``spindle.runtime`` entry point), puts it on
``PYTHONPATH``, and times fresh processes, hyperfine-style (warm-up runs,
then interleaved timed runs, median reported):

* the baseline, ``python -c "import pluggy"``, in the same run;
* ``python -m spindle --help`` (and the ``spindle`` console script if it is
  on PATH) and ``python -m spindle plugins``, each with 0 and 500 plugins,
  and ``--version``, with the caches warm (the normal case: the first run
  builds them);
* the same with cold caches (a fresh, empty cache directory every run: the
  entry points are scanned and ``--help`` is rendered by click).

Targets (ratios to the baseline, warm cache, 500 plugins): ``--help`` at most
1.5x, ``plugins`` under 2x. ``--strict`` exits 1 when one is missed.

Bytecode: when ``PYTHONDONTWRITEBYTECODE`` is set (some containers do), every
process would recompile spindle's modules from source, which no installed
copy does; the script then points ``PYTHONPYCACHEPREFIX`` at a temp dir so
all commands — the baseline too — run from compiled bytecode.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = {"help": 1.5, "plugins": 2.0}


def make_plugins(site: Path, count: int) -> None:
    """Write ``count`` distributions, each with one spindle.runtime entry point."""
    site.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        name = f"bench_plugin_{i:03d}"
        info = site / f"{name}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: bench-plugin-{i:03d}\nVersion: 1.0\n"
        )
        (info / "entry_points.txt").write_text(
            f"[spindle.runtime]\nbench_{i:03d} = {name}.mod:Runtime{i}\n"
        )
        (info / "RECORD").write_text(
            f"{info.name}/METADATA,,\n{info.name}/entry_points.txt,,\n{info.name}/RECORD,,\n"
        )


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run ``cmd`` once; return (wall seconds, CPU seconds of the process). It must succeed.

    CPU time (user + system, from ``wait4``) barely moves when other work
    shares the machine, so it is reported next to wall time.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read() if proc.stderr else b""
    if proc.stderr:
        proc.stderr.close()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stderr.decode()}")
    return elapsed, usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="timed runs per scenario")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs per scenario")
    parser.add_argument("--plugins", type=int, default=500, help="synthetic distributions")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="spindle-cold-start-"))
    try:
        site = tmp / "site-packages"
        empty = tmp / "empty"
        empty.mkdir()
        make_plugins(site, args.plugins)

        base_env = {k: v for k, v in os.environ.items() if not k.startswith("SPINDLE_")}
        note = ""
        if base_env.pop("PYTHONDONTWRITEBYTECODE", None):
            base_env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
            note = "(PYTHONDONTWRITEBYTECODE was set: bytecode cached under a temp prefix)"

        def env(plugins: bool, cache: str) -> dict[str, str]:
            e = dict(base_env, SPINDLE_CACHE_DIR=cache)
            e["PYTHONPATH"] = str(site if plugins else empty)
            return e

        py = sys.executable
        warm0, warm500 = str(tmp / "cache-0"), str(tmp / "cache-500")
        scenarios: list[tuple[str, str, list[str], dict[str, str] | None]] = [
            (
                "baseline",
                "python -c 'import pluggy'",
                [py, "-c", "import pluggy"],
                env(False, warm0),
            ),
            (
                "help",
                "python -m spindle --help   (0 plugins)",
                [py, "-m", "spindle", "--help"],
                env(False, warm0),
            ),
            (
                "help",
                f"python -m spindle --help   ({args.plugins} plugins)",
                [py, "-m", "spindle", "--help"],
                env(True, warm500),
            ),
        ]
        script = shutil.which("spindle")
        if script:
            scenarios += [
                (
                    "help",
                    "spindle --help             (0 plugins)",
                    [script, "--help"],
                    env(False, warm0),
                ),
                (
                    "help",
                    f"spindle --help             ({args.plugins} plugins)",
                    [script, "--help"],
                    env(True, warm500),
                ),
            ]
        scenarios += [
            (
                "version",
                f"python -m spindle --version ({args.plugins} plugins)",
                [py, "-m", "spindle", "--version"],
                env(True, warm500),
            ),
            (
                "plugins",
                "python -m spindle plugins  (0 plugins)",
                [py, "-m", "spindle", "plugins"],
                env(False, warm0),
            ),
            (
                "plugins",
                f"python -m spindle plugins  ({args.plugins} plugins)",
                [py, "-m", "spindle", "plugins"],
                env(True, warm500),
            ),
            # env None: a fresh, empty cache dir for every run
            (
                "help",
                f"python -m spindle --help   ({args.plugins}, cold cache)",
                [py, "-m", "spindle", "--help"],
                None,
            ),
            (
                "plugins",
                f"python -m spindle plugins  ({args.plugins}, cold cache)",
                [py, "-m", "spindle", "plugins"],
                None,
            ),
        ]
        cold = iter(range(10**9))

        def run(cmd: list[str], e: dict[str, str] | None) -> tuple[float, float]:
            if e is None:
                e = env(True, str(tmp / f"cold-{next(cold)}"))
            return timed(cmd, e)

        listing = subprocess.run(
            [py, "-m", "spindle", "plugins", "--group", "runtime"],
            env=env(True, warm500),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        listed = sum("bench-plugin-" in line for line in listing.splitlines())
        if listed != args.plugins:
            raise SystemExit(f"spindle plugins listed {listed} of {args.plugins} plugins")

        for _, _, cmd, e in scenarios:
            for _ in range(args.warmup):
                run(cmd, e)
        samples: list[list[tuple[float, float]]] = [[] for _ in scenarios]
        for _ in range(args.runs):  # interleaved, so drift hits every scenario alike
            for i, (_, _, cmd, e) in enumerate(scenarios):
                samples[i].append(run(cmd, e))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def med(times: list[tuple[float, float]], i: int) -> float:
        return statistics.median(t[i] for t in times)

    base_wall, base_cpu = med(samples[0], 0), med(samples[0], 1)
    print(
        f"cold start, {args.runs} runs each, Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    if note:
        print(note)
    print(f"{'command':<48} {'wall':>8} {'min':>8} {'cpu':>8} {'ratio':>6} {'cpu':>6}  target")
    missed = False
    for (group, label, _, e), times in zip(scenarios, samples, strict=True):
        wall, cpu = med(times, 0), med(times, 1)
        ratio, cpu_ratio = wall / base_wall, cpu / base_cpu
        target = ""
        if group in TARGETS and e is not None and f"({args.plugins} plugins)" in label:
            limit = TARGETS[group]
            ok = ratio <= limit if group == "help" else ratio < limit
            missed |= not ok
            target = f"{'<=' if group == 'help' else '<'} {limit}x  {'ok' if ok else 'MISSED'}"
        print(
            f"{label:<48} {wall * 1000:6.1f}ms {min(t[0] for t in times) * 1000:6.1f}ms "
            f"{cpu * 1000:6.1f}ms {ratio:5.2f}x {cpu_ratio:5.2f}x  {target}"
        )
    print("wall/min/cpu: median wall time, fastest wall time, median CPU time (user+sys);")
    print("ratios are medians against the baseline; targets are judged on the wall ratio.")
    return 1 if (missed and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
