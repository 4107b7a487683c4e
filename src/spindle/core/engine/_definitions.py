"""Workflow definitions kept with runs, and the versioning rule on resume.

A run stores the id of its definition; the definition itself is kept once in
the store (the same workflow started many times is written once per engine).
Resuming with a changed definition is allowed when every node the run already
completed is unchanged — changed pending nodes take the new definition, so a
deploy does not strand in-flight runs — and refused otherwise, unless forced.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from spindle.core.errors import DefinitionChanged
from spindle.core.model import RunState, StepKind, StepRecord
from spindle.core.workflow import Workflow

if TYPE_CHECKING:
    from spindle.core.plugin import Registry
    from spindle.core.store import Store
    from spindle.core.workflow import LoadPolicy

__all__ = ["Definitions"]


class Definitions:
    """The definitions an engine has seen, by id, and the store they are kept in."""

    def __init__(self, store: Store, registry: Registry, policy: LoadPolicy | None) -> None:
        self.store = store
        self.registry = registry
        self.policy = policy
        self._by_id: dict[str, Workflow] = {}

    async def keep(self, workflow: Workflow) -> str:
        """Store ``workflow``'s definition (once per engine) and return its id."""
        def_id = workflow.definition_id()
        if self._by_id.get(def_id) is not workflow:
            await self.store.put_definition(def_id, workflow.to_dict())
            self._by_id[def_id] = workflow
        return def_id

    async def for_run(
        self, state: RunState, given: Workflow | None, force: bool, ledger: Sequence[StepRecord]
    ) -> Workflow:
        """The workflow to drive ``state`` with: ``given`` if allowed, else the stored one.

        Raises:
            DefinitionChanged: ``given`` changed a completed node and ``force`` is false.
        """
        if given is None:
            cached = self._by_id.get(state.definition_id)
            if cached is not None:
                return cached
            data = await self.store.get_definition(state.definition_id)
            wf = Workflow.from_dict(data, registry=self.registry, policy=self.policy)
            self._by_id[state.definition_id] = wf
            return wf
        def_id = given.definition_id()
        if def_id == state.definition_id:
            return given
        old = (await self.store.get_definition(state.definition_id)).get("node_hashes", {})
        new = given.node_hashes()
        completed = {r.node_id for r in ledger if r.kind == StepKind.NODE}
        changed = sorted(n for n in completed if old.get(n) != new.get(n))
        if changed and not force:
            raise DefinitionChanged(
                f"run {state.run_id}: the workflow changed in node(s) that already completed: "
                f"{', '.join(changed)}; resume with force to continue anyway, or start a new "
                f"run",
                changed,
            )
        given.validate(self.policy)
        await self.store.put_definition(def_id, given.to_dict())
        self._by_id[def_id] = given
        state.definition_id = def_id
        return given
