"""A per-example limit check for fuzz tests: no example may take over 1 s or 100 MB.

Not a benchmark: the numbers are ceilings far above what a healthy example
costs (milliseconds, a few megabytes), so only runaway work (an expanding
alias, a quadratic walk) trips them.

Memory is the example's peak resident set above what the process held
before it: on Linux the kernel's high-water mark is reset before each call
(``/proc/self/clear_refs``) and read after it (``VmHWM``), which costs
nothing while the example runs. Elsewhere ``tracemalloc`` measures the
peak instead (several times slower). Time is the call's ``perf_counter``
span; a call over the time limit is run once more and fails only if it is
over again: runaway work is slow every time, a pause of a busy machine is not.
"""

from __future__ import annotations

import contextlib
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

MAX_SECONDS = 1.0
MAX_BYTES = 100 * 1024 * 1024

_PROC = Path("/proc/self")


def _status_kib(field: str) -> int:
    for line in (_PROC / "status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def _can_reset_peak() -> bool:
    try:
        (_PROC / "clear_refs").write_text("5")
        _status_kib("VmHWM")
    except (OSError, LookupError, ValueError):
        return False
    return True


_RSS = _can_reset_peak()


@contextlib.contextmanager
def tracing() -> Iterator[None]:
    """Trace allocations for a test when the peak resident set cannot be reset."""
    started = not _RSS and not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        yield
    finally:
        if started:
            tracemalloc.stop()


def _measure(fn: Callable[[], Any]) -> tuple[float, int]:
    if _RSS:
        (_PROC / "clear_refs").write_text("5")  # the high-water mark drops to the current RSS
        before = _status_kib("VmRSS") * 1024
    else:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
    start = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - start
    peak = _status_kib("VmHWM") * 1024 if _RSS else tracemalloc.get_traced_memory()[1]
    return elapsed, peak - before


def check_bounds(fn: Callable[[], Any], what: object) -> None:
    """Call ``fn``; fail when it takes over :data:`MAX_SECONDS` (twice) or :data:`MAX_BYTES`."""
    shown = repr(what)[:300]
    elapsed, peak = _measure(fn)
    assert peak <= MAX_BYTES, f"peaked at {peak / 2**20:.0f} MB (limit 100 MB): {shown}"
    if elapsed > MAX_SECONDS:
        elapsed, peak = _measure(fn)
        assert elapsed <= MAX_SECONDS, f"took {elapsed:.2f}s (limit {MAX_SECONDS}s): {shown}"
