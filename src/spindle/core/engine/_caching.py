"""Result caching: a cached node's fingerprint, the lookup before it runs, and the entry
kept after it completed.

A node whose ``cache:`` is in force (its own, or the workflow's) gets a
**fingerprint**: the SHA-256 of its runtime's configuration (kind included),
its declared outputs, its resolved inputs -- where an input is a file output
of an upstream node, the file's content rather than its path --, the content
of each file its ``cache.files`` lists and of each file its runtime reads
(``Runtime.read_files``: a ``python_script`` node's script), and its
``cache.key`` (templates filled in). Nothing else counts: not the node's
id, the workflow's name, the run, its retry or timeout settings.

Before the node runs, the store is asked for a live entry with that
fingerprint (any run's). On a hit the node does not run: its output files
are written into this run's directory from the artifact store, and the
outcome handling records the reused result together with a ``cache`` ledger
record naming the source run and node, in one commit. On a miss the node
runs; once it completed, its result and the digests of its output files are
kept under the fingerprint. A failed node is never kept, nor one whose
attempt was answered a mid-function effect (``ctx.ask_user``): the answer
is no part of the fingerprint. Keeping happens when
the result is recorded, before that record's commit: a crash in between
leaves an entry for a result that run will compute again, which is still a
result the node produced.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attrs import define

from spindle.core.model import CacheEntry, parse_template, utcnow, value_text
from spindle.core.store import artifact_digest
from spindle.core.workflow import canonical_json, check_inside, effective_cache

if TYPE_CHECKING:
    from spindle.core.engine._results import Results
    from spindle.core.plugin import Registry
    from spindle.core.store import Store
    from spindle.core.workflow import CacheSpec, NodeSpec, Workflow

__all__ = [
    "CachePlan",
    "engine_cache_default",
    "fingerprint",
    "keep_result",
    "plan_cache",
    "waited",
]

log = logging.getLogger("spindle.cache")

#: Bumped when what the fingerprint covers changes, so old entries stop matching.
_VERSION = 1


@define
class CachePlan:
    """A cached node's fingerprint, and the entry it reuses when the lookup hit."""

    fingerprint: str
    spec: CacheSpec
    workflow: str
    hit: CacheEntry | None = None

    def source(self) -> dict[str, Any]:
        """What the ``cache`` ledger record of a hit holds: where the result came from."""
        assert self.hit is not None
        return {
            "run_id": self.hit.run_id,
            "node_id": self.hit.node_id,
            "fingerprint": self.fingerprint,
        }


def engine_cache_default(layers: Iterable[Any]) -> CacheSpec | None:
    """The ``cache:`` an engine applies to every workflow that has none of its own: what
    the first middleware with a ``cache_default()`` method returns (the built-in
    ``cache`` middleware), or None (caching stays off unless a workflow turns it on)."""
    for layer in layers:
        method = getattr(layer, "cache_default", None)
        if callable(method):
            spec: CacheSpec | None = method()
            return spec
    return None


def _fill(text: str, workflow_inputs: Mapping[str, Any], inputs: Mapping[str, Any]) -> str:
    """A cache key or file template filled in (placeholders were checked at load)."""
    out: list[str] = []
    for item in parse_template(text, "cache template"):
        if isinstance(item, str):
            out.append(item)
        elif item.parts[0] == "inputs" and len(item.parts) == 2:
            out.append(value_text(workflow_inputs.get(item.parts[1])))
        else:
            out.append(value_text(inputs.get(item.parts[0])))
    return "".join(out)


def _file_hash(path: Path) -> str | None:
    """The SHA-256 of a file's content, or None when there is no such file."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def fingerprint(
    wf: Workflow,
    node: NodeSpec,
    spec: CacheSpec,
    inputs: Mapping[str, Any],
    workflow_inputs: Mapping[str, Any],
) -> str:
    """The fingerprint of ``node`` about to run with ``inputs`` (see the module docstring).

    Raises:
        TypeError: an input value cannot be written as JSON (the node is then not cached).
        OSError: a listed file exists but cannot be read.
    """
    from spindle.core.model import converter

    values: dict[str, Any] = {}
    for name, value in inputs.items():
        ref = node.inputs.get(name)
        if isinstance(ref, str) and "." in ref and not ref.startswith("inputs."):
            head, _, member = ref.partition(".")
            upstream = wf.nodes.get(head)
            output = upstream.outputs.get(member) if upstream is not None else None
            if output is not None and output.kind == "file" and isinstance(value, str):
                values[name] = {"file": _file_hash(Path(value))}
                continue
        values[name] = value
    base = wf.base_dir if wf.base_dir is not None else Path.cwd()
    files = {}
    for template in spec.files:
        written = _fill(template, workflow_inputs, inputs)
        files[written] = _file_hash(base / written)
    assert node.runtime is not None  # only task nodes are cached
    read = {str(p): _file_hash(p) for p in node.runtime.read_files(wf.base_dir)}
    body = {
        "v": _VERSION,
        "read": read,
        "runtime": converter.unstructure(node.runtime),
        "outputs": {k: converter.unstructure(o) for k, o in node.outputs.items()},
        "inputs": values,
        "files": files,
        "key": None if spec.key is None else _fill(spec.key, workflow_inputs, inputs),
    }
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


async def plan_cache(
    wf: Workflow,
    node: NodeSpec,
    inputs: Mapping[str, Any],
    workflow_inputs: Mapping[str, Any],
    store: Store,
    results: Results,
    run_dir: Path,
    default: CacheSpec | None = None,
) -> CachePlan | None:
    """The cache plan of ``node`` about to run: None when it is not cached, else its
    fingerprint and, on a hit, the entry whose output files are now in ``run_dir``.
    ``default`` is the engine-wide ``cache:`` (see :func:`engine_cache_default`)."""
    spec = effective_cache(wf, node, default)
    if spec is None:
        return None
    try:
        fp = fingerprint(wf, node, spec, inputs, workflow_inputs)
    except (TypeError, ValueError, OSError) as exc:
        log.warning("node '%s' is not cached this time: %s", node.id, exc)
        return None
    plan = CachePlan(fp, spec, wf.name)
    entry = await store.get_cached(fp, utcnow())
    if entry is None:
        return plan
    reused = await _reuse(entry, node, store, results, run_dir)
    if reused is None:
        return plan  # an output file is gone from the artifact store: run the node
    entry.result = reused
    plan.hit = entry
    return plan


async def _reuse(
    entry: CacheEntry, node: NodeSpec, store: Store, results: Results, run_dir: Path
) -> Any:
    """``entry``'s result for this run: its output files written into ``run_dir`` (and
    kept as this run's artifacts), the result's paths pointing at them. None when an
    output file is no longer in the artifact store."""
    files = {k: o for k, o in node.outputs.items() if o.kind in ("file", "json") and o.path}
    if not files:
        return entry.result
    value = await results.fetch(entry.result)
    outputs = dict(value.get("outputs", {})) if isinstance(value, dict) else {}
    blobs: dict[str, bytes] = {}
    for name in files:
        digest = entry.artifacts.get(name)
        if digest is None:
            return None
        try:
            blobs[name] = await store.get_artifact(digest)
        except KeyError:
            return None
    for name, output in files.items():
        assert output.path is not None
        path = run_dir / output.path
        path.parent.mkdir(parents=True, exist_ok=True)
        if not node.allow_outside_paths:
            check_inside(node, name, run_dir, path)  # not through a link an earlier node left
        path.write_bytes(blobs[name])
        await store.put_artifact(results.run_id, blobs[name], name=f"{node.id}.{name}")
        if output.kind == "file":
            outputs[name] = str(path)
    return await results.offload(node.id, {**value, "outputs": outputs})


def waited(recorded: Mapping[str, Any], run_id: str, node_id: str, registry: Registry) -> bool:
    """Whether the node's attempt was given an answer to a mid-function effect (a
    ``ctx.ask_user``, ``ctx.wait_for_event``...): its result then depends on what no
    fingerprint covers, so it is not kept. An effect's call record is named by its kind;
    a sub-step (``ctx.step``) is not, unless it was given an effect kind's name (then it
    counts too: the result is only not kept)."""
    prefix = f"{run_id}:{node_id}:"
    names = {r.name for k, r in recorded.items() if k.startswith(prefix)}
    return bool(names) and not names.isdisjoint(registry.names("effect"))


async def keep_result(
    plan: CachePlan,
    node: NodeSpec,
    run_id: str,
    result: Any,
    outputs: Mapping[str, Path | None],
    store: Store,
) -> None:
    """Keep a completed node's ``result`` (as its ledger record holds it) and the digests
    of its output files under the plan's fingerprint, for later runs to reuse.

    An output file that cannot be read again keeps nothing (a warning says why): the
    node completed, and only later runs lose the reuse.

    Raises:
        StoreError: the store failed (the drive stops, as for any store failure).
    """
    artifacts: dict[str, str] = {}
    for name, output in node.outputs.items():
        path = outputs.get(name)
        if output.kind in ("file", "json") and path is not None:
            try:
                artifacts[name] = artifact_digest(path.read_bytes())
            except OSError as exc:
                log.warning("node '%s' is not kept in the cache: %s", node.id, exc)
                return
    now = utcnow()
    ttl = plan.spec.ttl_delta
    await store.put_cached(
        CacheEntry(
            fingerprint=plan.fingerprint,
            workflow=plan.workflow,
            run_id=run_id,
            node_id=node.id,
            result=result,
            created_at=now,
            artifacts=artifacts,
            expires_at=None if ttl is None else now + ttl,
        )
    )
