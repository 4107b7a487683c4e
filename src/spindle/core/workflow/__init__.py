"""The workflow layer: nodes, the workflow graph and its builder, the YAML/JSON
loader and the JSON Schema. Imports the plugin layer and below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from spindle.core._lazy import lazy_facade

if TYPE_CHECKING:
    from spindle.core.workflow._cache_spec import CacheSpec as CacheSpec
    from spindle.core.workflow._cache_spec import effective_cache as effective_cache
    from spindle.core.workflow._definition import input_values as input_values
    from spindle.core.workflow._function_policy import (
        policy_setting_problems as policy_setting_problems,
    )
    from spindle.core.workflow._loader import SUFFIXES as SUFFIXES
    from spindle.core.workflow._loader import load_workflow as load_workflow
    from spindle.core.workflow._loader import load_workflow_text as load_workflow_text
    from spindle.core.workflow._nodes import ArtifactSpec as ArtifactSpec
    from spindle.core.workflow._nodes import BranchSpec as BranchSpec
    from spindle.core.workflow._nodes import InputSpec as InputSpec
    from spindle.core.workflow._nodes import LoadPolicy as LoadPolicy
    from spindle.core.workflow._nodes import LoopSpec as LoopSpec
    from spindle.core.workflow._nodes import MapSpec as MapSpec
    from spindle.core.workflow._nodes import NodeSpec as NodeSpec
    from spindle.core.workflow._nodes import Reference as Reference
    from spindle.core.workflow._nodes import canonical_json as canonical_json
    from spindle.core.workflow._nodes import current_base_dir as current_base_dir
    from spindle.core.workflow._paths import check_inside as check_inside
    from spindle.core.workflow._paths import path_escape as path_escape
    from spindle.core.workflow._paths import read_inside as read_inside
    from spindle.core.workflow._paths import run_time_escapes as run_time_escapes
    from spindle.core.workflow._queue_field import QueueSpec as QueueSpec
    from spindle.core.workflow._resources import parse_size as parse_size
    from spindle.core.workflow._resources import resource_amounts as resource_amounts
    from spindle.core.workflow._schedule import ScheduleSpec as ScheduleSpec
    from spindle.core.workflow._schema import SCHEMA_DIALECT as SCHEMA_DIALECT
    from spindle.core.workflow._schema import WORKFLOW_GROUPS as WORKFLOW_GROUPS
    from spindle.core.workflow._schema import group_schema as group_schema
    from spindle.core.workflow._schema import kind_schema as kind_schema
    from spindle.core.workflow._schema import workflow_schema as workflow_schema
    from spindle.core.workflow._templates import Unfilled as Unfilled
    from spindle.core.workflow._templates import fill_templates as fill_templates
    from spindle.core.workflow._templates import template_problems as template_problems
    from spindle.core.workflow._workflow import Workflow as Workflow

_LAZY: dict[str, str] = {
    "CacheSpec": "spindle.core.workflow._cache_spec",
    "effective_cache": "spindle.core.workflow._cache_spec",
    "ArtifactSpec": "spindle.core.workflow._nodes",
    "BranchSpec": "spindle.core.workflow._nodes",
    "LoopSpec": "spindle.core.workflow._nodes",
    "MapSpec": "spindle.core.workflow._nodes",
    "InputSpec": "spindle.core.workflow._nodes",
    "LoadPolicy": "spindle.core.workflow._nodes",
    "NodeSpec": "spindle.core.workflow._nodes",
    "Reference": "spindle.core.workflow._nodes",
    "SCHEMA_DIALECT": "spindle.core.workflow._schema",
    "ScheduleSpec": "spindle.core.workflow._schedule",
    "SUFFIXES": "spindle.core.workflow._loader",
    "Unfilled": "spindle.core.workflow._templates",
    "WORKFLOW_GROUPS": "spindle.core.workflow._schema",
    "QueueSpec": "spindle.core.workflow._queue_field",
    "Workflow": "spindle.core.workflow._workflow",
    "canonical_json": "spindle.core.workflow._nodes",
    "check_inside": "spindle.core.workflow._paths",
    "current_base_dir": "spindle.core.workflow._nodes",
    "fill_templates": "spindle.core.workflow._templates",
    "parse_size": "spindle.core.workflow._resources",
    "resource_amounts": "spindle.core.workflow._resources",
    "group_schema": "spindle.core.workflow._schema",
    "kind_schema": "spindle.core.workflow._schema",
    "input_values": "spindle.core.workflow._definition",
    "load_workflow": "spindle.core.workflow._loader",
    "load_workflow_text": "spindle.core.workflow._loader",
    "path_escape": "spindle.core.workflow._paths",
    "read_inside": "spindle.core.workflow._paths",
    "run_time_escapes": "spindle.core.workflow._paths",
    "policy_setting_problems": "spindle.core.workflow._function_policy",
    "template_problems": "spindle.core.workflow._templates",
    "workflow_schema": "spindle.core.workflow._schema",
}

__getattr__, __dir__ = lazy_facade(__name__, _LAZY)
__all__ = sorted(_LAZY)
