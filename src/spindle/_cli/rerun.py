"""``spindle retry`` and ``spindle rerun``: running a failed run again.

``retry RUN_ID`` continues a failed or cancelled run in place: completed
nodes and sub-steps are kept, failed and skipped nodes run again (a new
attempt in the same ledger). ``rerun RUN_ID --from NODE`` starts a new run of
the same workflow and inputs that reuses every recorded result but NODE's and
its dependants', which run again. Exit codes as for ``run``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from spindle._cli._baseline import rerun_counts, run_counts
from spindle._cli._common import json_option, store_option
from spindle._cli._progress import Progress
from spindle._cli._running import (
    call_driving,
    give_secrets,
    make_engine,
    parse_inputs,
    report,
    run_recorded,
)

if TYPE_CHECKING:
    from spindle.core.engine import Engine
    from spindle.core.model import RunState
    from spindle.core.workflow import Workflow

__all__ = ["rerun", "retry"]

_INPUTS = click.option(
    "--input",
    "-i",
    "inputs",
    multiple=True,
    metavar="NAME=VALUE",
    help="Give a secret input again (secrets are never stored, so a new process needs them).",
)
_WORKFLOW = click.option(
    "--workflow",
    "workflow_file",
    # directories are let through: the loader refuses them in one error line
    type=click.Path(path_type=Path),
    metavar="FILE",
    default=None,
    help="The workflow file as it is now, if it changed since the run started (a fix).",
)
_QUIET = click.option("--quiet", "-q", is_flag=True, help="Do not print node progress.")


def _load(engine: Engine, workflow_file: Path | None) -> Workflow | None:
    if workflow_file is None:
        return None
    from spindle.core.workflow import load_workflow

    return load_workflow(workflow_file, registry=engine.registry, policy=engine.policy)


@click.command("retry")
@click.argument("run_id")
@_INPUTS
@store_option
@_WORKFLOW
@click.option(
    "--force", is_flag=True, help="With --workflow: go on even if completed nodes changed."
)
@_QUIET
@json_option
def retry(
    run_id: str,
    inputs: tuple[str, ...],
    store: str | None,
    workflow_file: Path | None,
    force: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Continue a failed or cancelled run: completed nodes are kept, failed ones run again."""
    secrets = parse_inputs(inputs)
    progress = Progress() if not (quiet or as_json) else None

    async def main() -> RunState:
        async with make_engine(store, [progress] if progress else None) as engine:
            before = await engine.get_run(run_id)
            await give_secrets(engine, before, secrets, "retry")
            wf = _load(engine, workflow_file)
            if progress is not None:
                counts = await run_counts(engine, before, reopened=True, workflow=wf)
                progress.begin(run_id, **counts)
            return await engine.retry(run_id, workflow=wf, force=force)

    state = call_driving(main, lambda: run_id, progress)
    report(state, as_json)


@click.command("rerun")
@click.argument("run_id")
@click.option(
    "--from",
    "from_node",
    required=True,
    metavar="NODE",
    help="The node to run again, with everything that depends on it.",
)
@_INPUTS
@store_option
@_WORKFLOW
@_QUIET
@json_option
def rerun(
    run_id: str,
    from_node: str,
    inputs: tuple[str, ...],
    store: str | None,
    workflow_file: Path | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Start a new run that reuses RUN_ID's results and runs NODE and its dependants again."""
    secrets = parse_inputs(inputs)
    progress = Progress() if not (quiet or as_json) else None
    started: dict[str, str] = {}

    async def main() -> RunState:
        import uuid

        async with make_engine(store, [progress] if progress else None) as engine:
            source = await engine.get_run(run_id)
            await give_secrets(engine, source, secrets, f"rerun --from {from_node}")
            new_id = started["run_id"] = uuid.uuid4().hex
            wf = _load(engine, workflow_file)
            if progress is not None:
                counts = await rerun_counts(engine, source, from_node, wf)
                started_line = f"run {new_id} started (rerun of {run_id} from {from_node})"
                progress.begin(new_id, **counts, announce=started_line)
            return await engine.rerun(
                run_id,
                from_node,
                workflow=wf,
                secrets=secrets,
                new_run_id=new_id,
            )

    state = call_driving(
        main,
        lambda: started.get("run_id"),
        progress,
        recorded=lambda name: run_recorded(store, name),
    )
    report(state, as_json)
