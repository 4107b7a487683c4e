"""The Python API example of docs/control-flow.md runs as the page says."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from spindle import Engine, Settings

from .test_docs import _fenced

PAGE = Path(__file__).resolve().parents[1] / "docs" / "control-flow.md"


def test_the_python_api_example_branches_maps_conditions_and_loops(tmp_path):
    """The branch skips `fast`, the map gathers sizes in order, both conditions hold, the
    loop stops at 16."""
    namespace: dict[str, Any] = {"__name__": "docs_control_flow"}
    exec(compile(_fenced(PAGE, "python", "## The Python API"), str(PAGE), "exec"), namespace)

    async def main() -> tuple[Any, list[Any]]:
        url = f"sqlite:///{tmp_path / 'db.sqlite'}"
        async with Engine(url, settings=Settings(runs_dir=str(tmp_path / "runs"))) as engine:
            state = await engine.run(namespace["wf"])
            return state, await engine.ledger(state.run_id)

    state, records = asyncio.run(main())
    assert state.status == "completed", state.error
    assert state.output == {
        "careful": "checked 3 files one by one",
        "big": "a big batch",
        "grow": {"double": 16},
    }
    nodes = {r.node_id: r for r in records if r.kind == "node"}
    assert nodes["fast"].status == "skipped"
    assert nodes["fast"].result == {"skipped_by": "branch", "branch": "route", "case": None}
    assert nodes["sizes"].result == [5, 5, 9]
    assert nodes["total"].result == 19
    assert [n for n in nodes if n.startswith("grow#") and "/" not in n] == [
        f"grow#{k}" for k in range(4)
    ]
