"""The ``cache`` middleware: result caching for every workflow an engine runs.

Engine tests run on the memory, SQLite and PostgreSQL stores (``store_url``);
the configuration tests build the middleware from ``spindle.toml`` as a user
writes it.
"""

from __future__ import annotations

import re
import textwrap

import pytest

from spindle import Engine, Workflow, load_settings
from spindle.core.errors import ConfigError
from spindle.core.model import StepKind
from spindle.core.workflow import CacheSpec
from spindle.plugins.middleware.cache import CacheMiddleware

from .conftest import run
from .test_cache import counted as counting_workflow


def counted(cache: CacheSpec | None = None) -> tuple[Workflow, list[int]]:
    """``test_cache``'s counting workflow, its node without a ``cache:``, the workflow's
    top-level ``cache:`` as given."""
    wf, calls = counting_workflow(cache=None)
    wf.cache = cache
    return wf, calls


def test_without_the_middleware_nothing_is_cached(store_url, make_engine):
    wf, calls = counted()

    async def go() -> None:
        async with make_engine(store_url) as engine:
            await engine.run(wf)
            await engine.run(wf)
            assert await engine.store.list_cached() == []

    run(go())
    assert calls == [3, 3]


def test_the_middleware_caches_a_workflow_that_says_nothing(store_url, make_engine):
    wf, calls = counted()

    async def go() -> None:
        layer = CacheMiddleware(ttl="1d", key="v1")
        async with make_engine(store_url, middleware=[layer]) as engine:
            first = await engine.run(wf)
            second = await engine.run(wf)
            assert second.output == 9
            records = await engine.ledger(second.run_id)
            assert records[0].kind is StepKind.CACHE
            assert records[0].result["run_id"] == first.run_id
            [entry] = await engine.store.list_cached()
            assert entry.expires_at is not None
            assert (entry.expires_at - entry.created_at).total_seconds() == 86400

    run(go())
    assert calls == [3]


def test_the_key_is_part_of_the_fingerprint(tmp_path, make_engine):
    # Two engines on one file (a memory store is its own engine's only).
    url = f"sqlite:///{tmp_path}/keys.db"
    wf, calls = counted()

    async def go() -> None:
        for key in ("v1", "v2", "v1", "v2"):
            async with make_engine(url, middleware=[CacheMiddleware(key=key)]) as engine:
                await engine.run(wf)

    run(go())
    assert calls == [3, 3]  # each key missed once, then hit


def test_a_workflow_s_own_cache_false_and_a_node_s_opt_out_win(store_url, make_engine):
    off, off_calls = counted(cache=CacheSpec(enabled=False))  # cache: false at the top
    opted: list[int] = []
    wf = Workflow("opt", inputs={"n": 2})

    @wf.node(cache=False)
    def square(n: int) -> int:
        opted.append(n)
        return n * n

    async def go() -> None:
        async with make_engine(store_url, middleware=[CacheMiddleware()]) as engine:
            for _ in range(2):
                await engine.run(off)
                await engine.run(wf)
            assert await engine.store.list_cached() == []

    run(go())
    assert (off_calls, opted) == ([3, 3], [2, 2])


def _settings(tmp_path, text: str):
    (tmp_path / "spindle.toml").write_text(textwrap.dedent(text))
    return load_settings(tmp_path)


def test_spindle_toml_turns_it_on(tmp_path, spindle_config):
    wf, calls = counted()
    settings = _settings(
        spindle_config.path,
        f"""\
        store = "sqlite:///{tmp_path}/s.db"
        runs_dir = "{tmp_path}/runs"

        [[middleware]]
        kind = "cache"
        ttl = "12h"
        """,
    )

    async def go() -> None:
        async with Engine(settings=settings) as engine:
            await engine.run(wf)
            again = await engine.run(wf)
            assert (await engine.ledger(again.run_id))[0].kind is StepKind.CACHE

    run(go())
    assert calls == [3]


@pytest.mark.parametrize(
    ("entry", "line", "expected"),
    [
        # a value the field's type takes but the middleware refuses: at its table
        ('ttl = "soon"', 3, r"ttl: 'soon' is not a duration; write a whole number and a unit"),
        # a wrong type or an unknown field: at the field's own line
        ("ttl = 5", 5, r"@ middleware\[0\]\.ttl"),
        ('files = "a.txt"', 5, r"@ middleware\[0\]\.files"),
        ('keys = "v1"', 5, r"unknown field 'keys'; known fields: .*key"),
    ],
)
def test_a_bad_entry_names_its_file_line_and_field(spindle_config, entry, line, expected):
    settings = _settings(
        spindle_config.path,
        f"""\
        store = "memory://"

        [[middleware]]
        kind = "cache"
        {entry}
        """,
    )
    with pytest.raises(ConfigError) as info:
        Engine(settings=settings)
    message = str(info.value)
    assert f"spindle.toml:{line}:" in message and "[[middleware]] #1 (kind 'cache')" in message
    assert re.search(expected, message), message
