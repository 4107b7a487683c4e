"""Analysing a workflow: its structural problems, dependency cycles and run order.

:class:`~spindle.core.workflow.Workflow` delegates ``problems``, ``validate``
and ``order`` here (and caches what they find); these functions read only
its public attributes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from spindle.core.errors import ValidationError
from spindle.core.workflow._cache_spec import cache_problems
from spindle.core.workflow._control_checks import control_problems
from spindle.core.workflow._paths import path_problems
from spindle.core.workflow._resources import resource_problems
from spindle.core.workflow._templates import template_problems

if TYPE_CHECKING:
    from spindle.core.workflow._nodes import NodeSpec, Reference
    from spindle.core.workflow._workflow import Workflow

__all__ = ["dependency_order", "find_cycle", "structural_problems"]


def structural_problems(wf: Workflow, broken: Mapping[str, set[str]]) -> list[str]:
    """Every structural problem of ``wf`` (references, cycles, plugin checks), one line each.

    Checks that a field which failed to load would skew are skipped:
    ``broken`` maps a node id to the fields that could not be structured
    (``"*"``: the whole node), so a bad ``outputs`` mapping is reported
    once, not again as every reference to those outputs.
    """
    out: list[str] = []
    # names every node may use: "inputs.NAME" for each workflow input, "secrets.NAME"
    # for each secret one (the same for every node, so built once)
    workflow_names = [
        *(f"inputs.{k}" for k in wf.inputs),
        *(f"secrets.{k}" for k, spec in wf.inputs.items() if spec.secret),
    ]
    if not wf.nodes:
        out.append(f"workflow '{wf.name}' has no nodes @ nodes")
    for nid, node in wf.nodes.items():
        where = f"nodes.{nid}"
        failed = broken.get(nid, set())
        if "." in nid or nid in ("", "inputs"):
            out.append(
                f"node id '{nid}' is not allowed: it cannot be empty, contain '.' "
                f"(references are written NODE.OUTPUT) or be 'inputs' @ {where}"
            )
        if "*" in failed:
            continue
        kinds = [k for k in ("branch", "map", "loop") if getattr(node, k) is not None]
        if kinds:
            if node.runtime is not None or node.effect is not None:
                kind = kinds[0]
                out.append(
                    f"node '{nid}' is a {kind}: it takes no 'runtime' or 'effect' of its own "
                    f"@ {where}"
                )
            if len(kinds) > 1:
                out.append(f"node '{nid}' cannot be both a {kinds[0]} and a {kinds[1]} @ {where}")
        elif (node.runtime is None) == (node.effect is None) and not (
            failed & {"runtime", "effect"}
        ):
            out.append(f"node '{nid}' needs exactly one of 'runtime' or 'effect' @ {where}")
        out.extend(control_problems(wf, nid, node, failed))
        if node.executor is not None and node.runtime is None and "runtime" not in failed:
            out.append(f"node '{nid}': 'executor' needs a 'runtime' @ {where}.executor")
        for ref in node.references():
            out.extend(_reference_problems(wf, nid, ref, broken))
        for i, a in enumerate(node.after):
            if a not in wf.nodes:
                out.append(f"node '{nid}' runs after unknown node '{a}' @ {where}.after.{i}")
        if node.retry is not None and node.retry.max_attempts < 1:
            out.append(
                f"node '{nid}': retry.max_attempts must be at least 1 @ {where}.retry.max_attempts"
            )
        if node.timeout is not None and node.timeout <= 0:
            out.append(f"node '{nid}': timeout must be positive @ {where}.timeout")
        if node.resources:
            out.extend(resource_problems(nid, node.resources, where))
        for oname, spec in node.outputs.items():
            if spec.kind in ("file", "folder", "json") and not spec.path:
                out.append(
                    f"node '{nid}': output '{oname}' of kind '{spec.kind}' needs a "
                    f"'path' @ {where}.outputs.{oname}.path"
                )
        if not failed & {"outputs", "runtime"}:
            out.extend(path_problems(node))
        if failed & {"inputs", "outputs"}:
            continue  # plugin checks would miss names that failed to load
        for inner, at in _inner_nodes(node, where):
            # plain names: what the node supplies; then the workflow's
            available = {*inner.inputs, *inner.outputs, "ctx", *workflow_names}
            if inner.runtime is not None:
                out.extend(
                    f"node '{nid}': {p} @ {at}.runtime"
                    for p in inner.runtime.check(inner, available)
                )
                if inner.executor is not None:
                    problem = _executor_problem(inner)
                    if problem:
                        out.append(f"node '{nid}': {problem} @ {at}.executor")
            if inner.effect is not None:
                out.extend(f"node '{nid}': {p} @ {at}.effect" for p in inner.effect.check(inner))
                if inner is node:
                    out.extend(template_problems(wf, node, inner.effect))
    out.extend(output_problems(wf, broken))
    out.extend(cache_problems(wf, broken))
    cycle = find_cycle(wf)
    if cycle:
        out.append(f"dependency cycle: {' -> '.join(cycle)} @ nodes.{cycle[0]}")
    return out


def _payload_types(runtime: object) -> tuple[type, ...]:
    """The payload types a runtime class declares (``Runtime[CommandPayload]``), or ()."""
    import typing

    for cls in type(runtime).__mro__:
        for base in getattr(cls, "__orig_bases__", ()):
            args = typing.get_args(base)
            if typing.get_origin(base) is not None and len(args) == 1:
                found = typing.get_args(args[0]) or args
                if all(isinstance(t, type) for t in found):
                    return tuple(found)
    return ()


def _executor_problem(node: NodeSpec) -> str | None:
    """Why ``node``'s executor cannot run what its runtime prepares (None: it can, or the
    runtime does not say what it prepares)."""
    assert node.runtime is not None and node.executor is not None
    made = _payload_types(node.runtime)
    accepts = node.executor.accepts
    if not made or any(issubclass(t, accepts) for t in made):
        return None
    return (
        f"executor '{node.executor.kind_name}' cannot run what runtime "
        f"'{node.runtime.kind_name}' prepares ({', '.join(t.__name__ for t in made)}; it "
        f"accepts {', '.join(t.__name__ for t in accepts)}); choose another executor or "
        f"leave 'executor' out for the runtime's default"
    )


def _inner_nodes(node: NodeSpec, where: str) -> list[tuple[NodeSpec, str]]:
    """``node`` and the nodes it runs (a map's template, a loop's body), with their paths."""
    found = [(node, where)]
    if node.map is not None:
        found.append((node.map.node, f"{where}.map.node"))
    if node.loop is not None:
        found.extend((b, f"{where}.loop.body.{j}") for j, b in enumerate(node.loop.body))
    return found


def output_problems(wf: Workflow, broken: Mapping[str, set[str]]) -> list[str]:
    """Problems of the workflow's ``output``: a reference, or a mapping of name to one."""
    if wf.output is None:
        return []
    refs = wf.output.items() if isinstance(wf.output, dict) else [(None, wf.output)]
    out: list[str] = []
    for name, ref in refs:
        where = "output" if name is None else f"output.{name}"
        target, _, member = ref.partition(".")
        if target not in wf.nodes:
            out.append(f"workflow output refers to unknown node '{target}' @ {where}")
        elif (
            member
            and member not in wf.nodes[target].outputs
            and not (broken.get(target, set()) & {"*", "outputs"})
        ):
            outs = ", ".join(wf.nodes[target].outputs) or "(none)"
            out.append(
                f"workflow output refers to output '{member}' which node '{target}' "
                f"does not declare (its outputs: {outs}) @ {where}"
            )
    return out


def _reference_problems(
    wf: Workflow, nid: str, ref: Reference, broken: Mapping[str, set[str]]
) -> list[str]:
    where = f"nodes.{nid}.{ref.param}" if "." in ref.param else f"nodes.{nid}.inputs.{ref.param}"
    if ref.is_workflow_input:
        if ref.member is None or ref.member not in wf.inputs:
            known = ", ".join(wf.inputs) or "(none)"
            return [
                f"node '{nid}': input '{ref.param}' refers to unknown workflow input "
                f"'{ref.text}'; declared inputs: {known} @ {where}"
            ]
        return []
    if ref.target not in wf.nodes:
        return [
            f"node '{nid}': input '{ref.param}' refers to unknown node '{ref.target}' @ {where}"
        ]
    if ref.target == nid:
        return [f"node '{nid}' refers to itself @ {where}"]
    target = wf.nodes[ref.target]
    if (
        ref.member is not None
        and ref.member not in target.outputs
        and not broken.get(ref.target, set()) & {"*", "outputs"}
    ):
        outs = ", ".join(target.outputs) or "(none)"
        return [
            f"node '{nid}': input '{ref.param}' refers to output '{ref.member}' which "
            f"node '{ref.target}' does not declare (its outputs: {outs}) @ {where}"
        ]
    return []


def find_cycle(wf: Workflow) -> list[str] | None:
    """A dependency cycle as ``[a, b, ..., a]``, or None when the graph has none."""
    # iterative depth-first search: a long chain must not hit the recursion limit
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in wf.nodes:
        if root in state:
            continue
        path: list[str] = [root]
        pending: list[Iterator[str]] = [iter(wf.dependencies(root))]
        state[root] = 1
        while pending:
            dep = next(pending[-1], None)
            if dep is None:
                state[path.pop()] = 2
                pending.pop()
            elif dep not in wf.nodes or state.get(dep) == 2:
                continue
            elif state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            else:
                state[dep] = 1
                path.append(dep)
                pending.append(iter(wf.dependencies(dep)))
    return None


def dependency_order(wf: Workflow) -> list[str]:
    """Node ids in a dependency-respecting order (definition order among peers).

    Raises:
        ValidationError: the dependencies form a cycle.
    """
    import heapq

    position = {n: i for i, n in enumerate(wf.nodes)}
    remaining = dict.fromkeys(wf.nodes, 0)
    dependants: dict[str, list[str]] = {n: [] for n in wf.nodes}
    for n in wf.nodes:
        for d in wf.dependencies(n):
            if d in wf.nodes:
                remaining[n] += 1
                dependants[d].append(n)
    heap = [position[n] for n, left in remaining.items() if left == 0]
    heapq.heapify(heap)
    names = list(wf.nodes)
    out: list[str] = []
    while heap:
        n = names[heapq.heappop(heap)]
        out.append(n)
        for m in dependants[n]:
            remaining[m] -= 1
            if remaining[m] == 0:
                heapq.heappush(heap, position[m])
    if len(out) != len(wf.nodes):
        raise ValidationError(f"workflow '{wf.name}' has a dependency cycle")
    return out
