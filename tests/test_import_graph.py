"""The shape of the package: no import cycle, layers that point one way, small modules.

The graph is built from the source with ``ast``: every ``import`` at module
level or inside a function counts, except those under ``if TYPE_CHECKING:``
(type-only imports may point anywhere). A name imported from a lazy facade
(``from spindle.core.model import RunState``) is an edge to the module the
facade's ``_LAZY`` table names, so a cycle through a facade is still a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: The kernel's layers, bottom first: a module may import its own layer and those below.
LAYERS = {
    "spindle.core.errors": 0,
    "spindle.core._lazy": 0,
    "spindle.core._quote": 0,
    "spindle.core.model": 1,
    "spindle.core.plugin": 2,
    "spindle.core.workflow": 3,
    "spindle.core.store": 3,
    "spindle.core.config": 4,
    "spindle.core.engine": 5,
}

#: Modules over this many lines hold a second concept (see style.md).
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted((SRC / "spindle").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _lazy_table(path: Path) -> dict[str, str]:
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        target = node.target if isinstance(node, ast.AnnAssign) else None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        if isinstance(target, ast.Name) and target.id == "_LAZY" and node.value is not None:
            table = ast.literal_eval(node.value)
            assert isinstance(table, dict)
            return table
    return {}


LAZY = {name: _lazy_table(path) for name, path in MODULES.items() if path.name == "__init__.py"}


def _known(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _targets(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> set[str]:
    if isinstance(node, ast.Import):
        return {m for a in node.names if (m := _known(a.name))}
    base = node.module or ""
    if node.level:
        parts = module.split(".")
        if not is_package:
            parts.pop()
        parts = parts[: len(parts) - node.level + 1]
        base = ".".join([*parts, base] if base else parts)
    # ``from pkg import name``: a submodule, a name of the facade's table (an edge to
    # the module defining it), or anything else defined in pkg itself.
    found = set()
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        if sub in MODULES:
            found.add(sub)
        elif alias.name in LAZY.get(base, {}):
            found.add(LAZY[base][alias.name])
        elif (m := _known(base)) is not None:
            found.add(m)
    return found


def _edges() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        is_package = path.name == "__init__.py"

        def visit(node: ast.AST, module: str = module, is_package: bool = is_package) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.If) and _is_type_checking(child):
                    for other in child.orelse:
                        visit(other)
                    continue
                if isinstance(child, ast.Import | ast.ImportFrom):
                    graph[module] |= _targets(module, is_package, child) - {module}
                visit(child)

        visit(ast.parse(path.read_text(encoding="utf-8")))
        graph[module] |= set(LAZY.get(module, {}).values()) - {module}
    return graph


GRAPH = _edges()


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _layer(module: str) -> tuple[str, int] | None:
    for prefix, level in LAYERS.items():
        if module == prefix or module.startswith(prefix + "."):
            return prefix, level
    return None


def test_the_package_has_no_import_cycle():
    """No modules import each other, directly or around a loop, at module or function level."""
    assert _cycles(GRAPH) == []


def test_the_graph_sees_cycles_through_facades():
    """A cycle closed through a lazy facade's table is found (the test can fail)."""
    graph = {
        "a": {"pkg"},
        "pkg": {"pkg._impl"},
        "pkg._impl": {"a"},
        "b": set(),
    }
    assert _cycles(graph) == [["a", "pkg", "pkg._impl"]]


def test_the_graph_resolves_facade_names_to_their_modules():
    """An import of a public name from a facade is an edge to the module defining it."""
    assert "spindle.core.model._run" in GRAPH["spindle.core.engine._engine"]


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _layer(m)))
def test_kernel_layers_import_only_downwards(module):
    """A kernel module imports its own layer and the layers below it, never above."""
    prefix, level = _layer(module)  # type: ignore[misc]
    upward = []
    for target in GRAPH[module]:
        other = _layer(target)
        if not target.startswith("spindle."):
            continue
        if other is None:
            if target.startswith("spindle.core") or target == "spindle":
                continue  # the package roots hold no code
            upward.append(target)  # plugins, contrib, the CLI: never from the kernel
        elif other[1] > level or (other[1] == level and other[0] != prefix):
            upward.append(target)
    assert upward == [], f"{module} imports {upward}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_stay_small(module):
    """Every module holds one concept: at most MAX_LINES lines."""
    lines = MODULES[module].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{module} has {lines} lines"
