"""Checking, when a workflow file loads, that the workflow files its effects name exist.

A ``subworkflow`` (or ``handoff``) node names another workflow file; the
engine loads it only when the node runs, so a typo used to surface mid-run,
after the nodes before it had done their work. :func:`missing_workflow_files`
resolves each such file exactly as the engine will
(``FollowOn.resolve``: relative to the referring workflow's ``base_dir``) and
reports the ones that are not there. It runs when a file is loaded
(:func:`~spindle.load_workflow`), not when a stored definition is read back,
so a run already under way is not refused because a file moved since.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spindle.core.workflow._workflow import Workflow

__all__ = ["missing_workflow_files"]

#: Targets with these suffixes are files; anything else is a name the engine knows.
_FILE_SUFFIXES = (".yaml", ".yml", ".json")


def missing_workflow_files(wf: Workflow) -> list[str]:
    """One ``"message @ nodes.NODE.effect.OPTION"`` problem per named file that is missing.

    A target is checked when it ends in a workflow file suffix, holds no
    placeholder (in a template option), and resolves to a definite path: it
    is absolute or the workflow has a ``base_dir`` (it was loaded from a file).
    """
    problems: list[str] = []
    for nid, node in wf.nodes.items():
        effect = node.effect
        if effect is None:
            continue
        for option, target in effect.workflow_targets().items():
            if not isinstance(target, str) or not target.lower().endswith(_FILE_SUFFIXES):
                continue
            if option in type(effect).templates and "{" in target:
                continue  # filled in per run
            path = Path(target)
            if not path.is_absolute():
                if wf.base_dir is None:
                    continue  # resolved against the cwd of whichever process runs it
                path = wf.base_dir / path
            where = f"nodes.{nid}.effect.{option}"
            relative = (
                ""
                if Path(target).is_absolute()
                else f" ('{target}' is relative to {wf.base_dir}, the workflow file's directory)"
            )
            if not path.exists():
                problems.append(
                    f"node '{nid}': workflow file not found: {path}{relative}; "
                    f"fix the path in '{option}' or create the file @ {where}"
                )
            elif not path.is_file():
                problems.append(
                    f"node '{nid}': {option} must name a workflow file, but {path} is "
                    f"not a regular file @ {where}"
                )
    return problems
