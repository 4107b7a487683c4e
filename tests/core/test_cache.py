"""Result caching in the engine: hits reuse a recorded result and its files, misses run.

Every test runs on the memory, SQLite and PostgreSQL stores (``store_url``).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from spindle import RunStatus, Workflow
from spindle.core.errors import StoreBusy
from spindle.core.model import StepKind
from spindle.core.workflow import CacheSpec

from .conftest import run
from .test_commits_per_run import counting


def counted(cache: Any = True, *, fail_first: bool = False) -> tuple[Workflow, list[int]]:
    """A workflow whose node ``square`` counts its executions (and may fail the first)."""
    calls: list[int] = []
    wf = Workflow("sq", inputs={"n": 3})

    @wf.node(cache=cache)
    def square(n: int) -> int:
        calls.append(n)
        if fail_first and len(calls) == 1:
            raise RuntimeError("first attempt fails")
        return n * n

    wf.output = "square"
    return wf, calls


def test_without_cache_a_node_runs_every_time(store_url, make_engine):
    wf, calls = counted(cache=None)

    async def go() -> None:
        async with make_engine(store_url) as engine:
            for _ in range(2):
                assert (await engine.run(wf)).output == 9
            assert await engine.store.list_cached() == []
            state = await engine.run(wf)
            kinds = [r.kind for r in await engine.ledger(state.run_id)]
            assert StepKind.CACHE not in kinds

    run(go())
    assert calls == [3, 3, 3]


def test_a_hit_reuses_the_result_and_names_its_source_in_the_same_commit(store_url, make_engine):
    wf, calls = counted()

    async def go() -> None:
        async with make_engine(store_url) as engine:
            first = await engine.run(wf)
            seen = counting(engine)
            second = await engine.run(wf)
            assert (first.output, second.output) == (9, 9)
            records = await engine.ledger(second.run_id)
            hit, node = records[0], records[1]
            assert hit.kind is StepKind.CACHE and hit.node_id == "square"
            assert hit.result["run_id"] == first.run_id
            assert hit.result["node_id"] == "square"
            assert node.kind is StepKind.NODE and node.result == 9
            together = [c for c in seen if any(r.kind is StepKind.CACHE for r in c.records)]
            assert len(together) == 1
            assert [r.kind for r in together[0].records][:2] == [StepKind.CACHE, StepKind.NODE]
            assert (await engine.verify_ledger(second.run_id)).ok

    run(go())
    assert calls == [3]


def test_a_changed_input_misses_and_the_old_one_hits_again(store_url, make_engine):
    wf, calls = counted()

    async def go() -> None:
        async with make_engine(store_url) as engine:
            assert (await engine.run(wf, {"n": 3})).output == 9
            assert (await engine.run(wf, {"n": 4})).output == 16
            assert (await engine.run(wf, {"n": 3})).output == 9
            assert len(await engine.store.list_cached()) == 2

    run(go())
    assert calls == [3, 4]


def test_a_failed_node_is_never_cached(store_url, make_engine):
    wf, calls = counted(fail_first=True)

    async def go() -> None:
        async with make_engine(store_url) as engine:
            assert (await engine.run(wf)).status is RunStatus.FAILED
            assert await engine.store.list_cached() == []
            assert (await engine.run(wf)).output == 9
            assert (await engine.run(wf)).output == 9

    run(go())
    assert calls == [3, 3]


def test_an_expired_result_misses_and_is_replaced(store_url, make_engine):
    wf, calls = counted(cache={"ttl": "7d"})

    async def go() -> None:
        async with make_engine(store_url) as engine:
            await engine.run(wf)
            (entry,) = await engine.store.list_cached()
            assert entry.expires_at == entry.created_at + timedelta(days=7)
            entry.expires_at = entry.created_at - timedelta(seconds=1)  # as if 7 days passed
            await engine.store.put_cached(entry)
            await engine.run(wf)
            (fresh,) = await engine.store.list_cached()
            assert fresh.expires_at is not None and fresh.expires_at > fresh.created_at
            await engine.run(wf)

    run(go())
    assert calls == [3, 3]


def test_ttl_zero_keeps_nothing_reusable(store_url, make_engine):
    wf, calls = counted(cache={"ttl": "0s"})

    async def go() -> None:
        async with make_engine(store_url) as engine:
            await engine.run(wf)
            await engine.run(wf)

    run(go())
    assert calls == [3, 3]


def test_clearing_the_cache_makes_the_next_run_miss(store_url, make_engine):
    wf, calls = counted()

    async def go() -> None:
        async with make_engine(store_url) as engine:
            await engine.run(wf)
            assert await engine.store.clear_cached(workflow="other") == 0
            await engine.run(wf)
            assert await engine.store.clear_cached(workflow="sq") == 1
            await engine.run(wf)

    run(go())
    assert calls == [3, 3]


def test_the_workflow_default_covers_task_nodes_and_a_node_can_opt_out(store_url, make_engine):
    calls: list[str] = []
    wf = Workflow("defaults", inputs={"n": 2})

    @wf.node
    def kept(n: int) -> int:
        calls.append("kept")
        return n + 1

    @wf.node(cache=False)
    def always(kept: int) -> int:
        calls.append("always")
        return kept * 10

    wf.output = "always"
    wf.cache = CacheSpec()

    async def go() -> None:
        async with make_engine(store_url) as engine:
            assert (await engine.run(wf)).output == 30
            assert (await engine.run(wf)).output == 30

    run(go())
    assert calls == ["kept", "always", "always"]


def test_a_hit_writes_the_output_file_into_the_new_run(store_url, make_engine, tmp_path):
    calls: list[int] = []
    wf = Workflow("files")

    @wf.node(outputs={"out": {"kind": "file", "path": "out.txt"}}, cache=True)
    def make(out: Path) -> str:
        calls.append(1)
        out.write_text("made once\n")
        return "ok"

    @wf.node(inputs={"path": "make.out"})
    def read(path: str) -> str:
        return Path(path).read_text()

    wf.output = "read"

    async def go() -> None:
        async with make_engine(store_url) as engine:
            first = await engine.run(wf)
            second = await engine.run(wf)
            assert first.output == second.output == "made once\n"
            copied = engine.run_dir(second.run_id) / "out.txt"
            assert copied.read_text() == "made once\n"
            names = {a.name for a in await engine.store.run_artifacts(second.run_id)}
            assert "make.out" in names
            node = [r for r in await engine.ledger(second.run_id) if r.node_id == "make"][-1]
            assert node.result["outputs"]["out"] == str(copied)

    run(go())
    assert calls == [1]


def test_a_changed_upstream_file_misses_downstream(store_url, make_engine, tmp_path):
    """A node taking an upstream file output is fingerprinted by the file's content."""
    source = tmp_path / "source.txt"
    calls: list[str] = []
    wf = Workflow("chain")

    @wf.node(outputs={"out": {"kind": "file", "path": "copy.txt"}})
    def copy(out: Path) -> None:
        out.write_text(source.read_text())

    @wf.node(inputs={"path": "copy.out"}, cache=True)
    def upper(path: str) -> str:
        calls.append(Path(path).read_text())
        return Path(path).read_text().upper()

    wf.output = "upper"

    async def go() -> None:
        async with make_engine(store_url) as engine:
            source.write_text("a")
            assert (await engine.run(wf)).output == "A"
            assert (await engine.run(wf)).output == "A"
            source.write_text("b")
            assert (await engine.run(wf)).output == "B"

    run(go())
    assert calls == ["a", "b"]


def test_a_hit_whose_commit_fails_leaves_no_record_and_resumes_to_one_hit(store_url, make_engine):
    """The cache record and the node's completion are one commit: when the store refuses
    it, neither is kept; the resumed run looks the result up again and records it once."""
    wf, calls = counted()

    @wf.node
    def plus(square: int) -> int:  # so the hit's commit is not also the run's last
        return square + 1

    wf.output = "plus"
    refused: list[bool] = []

    async def go() -> tuple[Any, list[Any]]:
        async with make_engine(store_url) as engine:
            await engine.run(wf)
            real = engine.store.commit

            async def commit(c: Any) -> None:
                if not refused and any(r.kind is StepKind.CACHE for r in c.records):
                    refused.append(True)
                    raise StoreBusy("the store is busy (refused by the test)")
                await real(c)

            engine.store.commit = commit  # type: ignore[method-assign]
            with pytest.raises(StoreBusy):
                await engine.run(wf, run_id="r2")
            assert await engine.store.ledger("r2") == []
            state = await engine.resume("r2", workflow=wf)
            return state, await engine.ledger("r2")

    state, records = run(go())
    assert refused == [True]
    assert state.status is RunStatus.COMPLETED and state.output == 10
    assert [r.kind for r in records if r.node_id == "square"] == [StepKind.CACHE, StepKind.NODE]
    assert calls == [3]


def test_a_hit_does_not_write_through_a_link_an_earlier_node_left(store_url, make_engine, tmp_path):
    """The reused output file is written only inside the run directory: a link at its
    path pointing out fails the node, as it would when the node ran, and the file the
    link points at is left alone."""
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    plant_link: list[bool] = []
    wf = Workflow("links")

    @wf.node
    def plant(ctx: Any) -> None:
        if plant_link:
            (ctx.run_dir / "out.txt").symlink_to(outside)

    @wf.node(outputs={"out": {"kind": "file", "path": "out.txt"}}, after=["plant"], cache=True)
    def make(out: Path) -> str:
        made.append(1)
        out.write_text("made")
        return "ok"

    made: list[int] = []
    found: list[Any] = []

    async def go() -> Any:
        async with make_engine(store_url) as engine:
            assert (await engine.run(wf)).status is RunStatus.COMPLETED
            plant_link.append(True)
            real = engine.store.get_cached

            async def get_cached(fingerprint: str, now: Any) -> Any:
                found.append(await real(fingerprint, now))
                return found[-1]

            engine.store.get_cached = get_cached  # type: ignore[method-assign]
            return await engine.run(wf)

    state = run(go())
    assert state.status is RunStatus.FAILED
    assert "outside the run directory" in (state.error or "")
    assert outside.read_text() == "keep me"
    assert made == [1]
    assert len(found) == 1 and found[0] is not None  # it failed as a hit, not as a run


def test_a_result_that_took_an_answer_is_not_kept_but_one_of_sub_steps_is(store_url, make_engine):
    """An answer to ctx.ask_user is no part of the fingerprint, so a node given one is not
    kept; a node whose sub-steps (ctx.step) ran is kept like any other."""
    wf = Workflow("asks")

    @wf.node(cache=True)
    def ask(ctx: Any) -> str:
        return str(ctx.ask_user("Name?"))

    @wf.node(cache=True)
    def steps(ctx: Any) -> int:
        return int(ctx.step(lambda: 41, name="base")) + 1

    async def go() -> tuple[Any, Any, list[Any]]:
        async with make_engine(store_url) as engine:
            waiting = await engine.run(wf)
            assert waiting.status is RunStatus.WAITING
            done = await engine.resume(waiting.run_id, waiting.waits[0].key, "Ada")
            again = await engine.run(wf)
            return done, again, await engine.store.list_cached()

    done, again, kept = run(go())
    assert done.output == {"ask": "Ada", "steps": 42}
    assert again.status is RunStatus.WAITING  # asked again: nothing was reused for it
    assert [e.node_id for e in kept] == ["steps"]
