"""Paths a node names stay inside the run directory: the text check, the flag, the engine."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from spindle import RunStatus, Workflow
from spindle.core.errors import PolicyViolation, ValidationError
from spindle.core.workflow import LoadPolicy, path_escape, workflow_schema

from .conftest import run


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("out.txt", None),
        ("reports/today.txt", None),
        ("./x", None),
        (".", None),
        ("a/../b", None),
        ("a/b/../../c", None),
        ("..", "leaves the run directory"),
        ("../x", "leaves the run directory"),
        ("a/../../x", "leaves the run directory"),
        ("./../x", "leaves the run directory"),
        ("/etc/passwd", "is absolute"),
        ("//x", "is absolute"),
        ("a\x00b", "contains a NUL byte"),
    ],
)
def test_path_escape_tells_a_path_that_leaves_from_one_that_stays(text, why):
    """Absolute paths and '..' climbing above the start leave; the rest stays inside."""
    assert path_escape(text) == why


def outside_workflow(**node: Any) -> Workflow:
    wf = Workflow("outside")
    wf.task(
        "x",
        {"kind": "command", "command": "echo hi", "cwd": "../.."},
        outputs={"out": {"kind": "file", "path": "../x.txt"}},
        **node,
    )
    return wf


def test_a_python_built_workflow_with_an_outside_path_is_invalid():
    """Workflow.validate() names the node and the field of each path that leaves."""
    with pytest.raises(ValidationError) as info:
        outside_workflow().validate()
    assert [p.split(" (")[0] for p in info.value.problems] == [
        "node 'x': output 'out' path '../x.txt' leaves the run directory",
        "node 'x': runtime cwd '../..' leaves the run directory",
    ]
    assert info.value.problems[1].endswith(" @ nodes.x.runtime.cwd")


def test_a_huge_path_is_quoted_cut_short():
    """A path of 100,000 characters gives a message of a few hundred, with its length."""
    wf = Workflow("huge")
    wf.task(
        "x",
        {"kind": "command", "command": "echo hi"},
        outputs={"out": {"kind": "file", "path": "../" + "a" * 100_000}},
    )
    with pytest.raises(ValidationError) as info:
        wf.validate()
    (problem,) = info.value.problems
    assert len(problem) < 600
    assert "... (100003 characters) leaves the run directory" in problem


def test_allow_outside_paths_passes_without_a_policy_and_is_refused_under_one():
    """The flag lets a trusted workflow load; any load policy refuses it (PolicyViolation)."""
    wf = outside_workflow(allow_outside_paths=True)
    assert wf.validate() is wf
    with pytest.raises(PolicyViolation) as info:
        wf.validate(LoadPolicy())
    (problem,) = info.value.problems
    assert problem.startswith("node 'x': 'allow_outside_paths' is refused by the load policy")
    assert problem.endswith("@ nodes.x.allow_outside_paths")


def test_allow_outside_paths_round_trips_and_only_changes_flagged_nodes():
    """The flag is written by to_dict() only when set, so other nodes' hashes stay the same."""
    wf = outside_workflow(allow_outside_paths=True)
    data = wf.to_dict()
    assert data["nodes"]["x"]["allow_outside_paths"] is True
    assert Workflow.from_dict(data).nodes["x"].allow_outside_paths is True
    plain = Workflow("plain")
    plain.task("y", {"kind": "command", "command": "echo hi"})
    assert "allow_outside_paths" not in plain.to_dict()["nodes"]["y"]


def test_the_node_decorator_takes_allow_outside_paths():
    """@wf.node(allow_outside_paths=True) sets the flag on the node it adds."""
    wf = Workflow("deco")

    @wf.node(outputs={"out": {"kind": "file", "path": "/tmp/shared.txt"}}, allow_outside_paths=True)
    def write() -> None:
        return None

    assert wf.nodes["write"].allow_outside_paths is True
    assert wf.validate() is wf


def test_the_schema_describes_allow_outside_paths():
    """`spindle schema` lists the node flag as a boolean, false by default."""
    prop = workflow_schema()["$defs"]["node"]["properties"]["allow_outside_paths"]
    assert prop["type"] == "boolean"
    assert prop["default"] is False
    assert "run directory" in prop["description"]


def plant_link(target: str, ctx: Any) -> str:
    os.symlink(target, ctx.outputs["out"])
    return "planted"


def test_a_python_task_output_linked_outside_is_refused(tmp_path, make_engine):
    """A Python task that leaves a symlink to an outside file as its output fails the node."""
    outside = tmp_path / "outside.txt"
    outside.write_text("not yours")
    wf = Workflow("link")
    wf.task(
        "x",
        {"kind": "python", "function": plant_link},
        inputs={"target": {"value": str(outside)}},
        outputs={"out": {"kind": "file", "path": "out.txt"}},
    )

    async def main() -> Any:
        async with make_engine("memory://") as engine:
            state = await engine.run(wf)
            return state, await engine.services.store.run_artifacts(state.run_id)

    state, artifacts = run(main())
    assert state.status == RunStatus.FAILED
    assert "output 'out' path 'out.txt' resolves to" in str(state.error)
    assert "a symbolic link inside the run directory points out of it" in str(state.error)
    assert artifacts == []


def test_a_link_to_a_file_inside_the_run_directory_is_kept(tmp_path, make_engine):
    """A symlink that resolves inside the run directory is an ordinary output."""

    def link_inside(ctx: Any) -> None:
        real = Path(ctx.run_dir) / "real.txt"
        real.write_text("mine")
        os.symlink(real, ctx.outputs["out"])

    wf = Workflow("inside")
    wf.task(
        "x",
        {"kind": "python", "function": link_inside},
        outputs={"out": {"kind": "file", "path": "out.txt"}},
    )

    async def main() -> Any:
        async with make_engine("memory://") as engine:
            return await engine.run(wf)

    assert run(main()).status == RunStatus.COMPLETED
