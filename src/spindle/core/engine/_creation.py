"""Creating a run: validated inputs, the definition kept, secrets split from what is stored."""

from __future__ import annotations

import os
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from spindle.core.engine._journal import Creation, RunJournal
from spindle.core.errors import RunNotFound, StoreError, ValidationError
from spindle.core.model import (
    Lease,
    QueueSpot,
    RunState,
    RunStatus,
    Secrets,
    check_queue_name,
    new_id,
    state_text_and_hash,
)
from spindle.core.workflow import QueueSpec, Workflow, input_values

if TYPE_CHECKING:
    from spindle.core.engine._active import ActiveRuns
    from spindle.core.engine._services import Services
    from spindle.core.store import Store
    from spindle.core.workflow import LoadPolicy

__all__ = ["create_run", "hold_run", "new_run_id"]


def new_run_id() -> str:
    """A new run id: the 32 hex digits of a random (version 4) UUID (:func:`new_id`)."""
    return new_id()


async def create_run(
    services: Services,
    active: ActiveRuns,
    policy: LoadPolicy | None,
    workflow: Workflow,
    inputs: Mapping[str, Any] | None,
    *,
    run_id: str | None = None,
    parent_run_id: str | None = None,
    parent_wait_key: str | None = None,
    labels: Mapping[str, str] | None = None,
    lease: Lease | None = None,
    queue: str | QueueSpot | None = None,
) -> RunState:
    """Record a new run of ``workflow`` (pending, or running and leased to us with ``lease``;
    pending on ``queue`` for a worker to claim, if given).

    The clear values of its secret inputs are held for its first drive, never stored.

    Raises:
        ValidationError: the workflow is invalid or an input is unknown/missing.
        PolicyViolation: the workflow is refused by the load policy.
    """
    state, clear = await _new_state(
        services, policy, workflow, inputs, run_id, parent_run_id, parent_wait_key, labels, lease
    )
    state.queue = queue_spot(queue if queue is not None else workflow.queue, state.inputs)
    await RunJournal.create(services.store, state, lease, chain=services.chain)
    active.give(state.run_id, clear)
    return state


async def hold_run(
    services: Services,
    active: ActiveRuns,
    policy: LoadPolicy | None,
    workflow: Workflow,
    inputs: Mapping[str, Any] | None,
    lease: Lease,
    *,
    run_id: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> tuple[RunState, Creation]:
    """A new run of ``workflow``, leased to us, checked but not written yet: its first
    commit writes it (see :class:`Creation`). Everything :func:`create_run` refuses is
    refused here too, before anything runs. A ``run_id`` the caller chose is looked up
    by the caller first (:func:`existing_run`: ``Engine.run`` continues that run).

    Raises:
        ValidationError, PolicyViolation: as :func:`create_run`.
        StoreError: the state is not JSON data.
    """
    state, clear = await _new_state(
        services, policy, workflow, inputs, run_id, None, None, labels, lease
    )
    text, hashed = _checked_hash(state)
    active.give(state.run_id, clear)
    return state, Creation(lease, hashed, text)


async def _new_state(
    services: Services,
    policy: LoadPolicy | None,
    workflow: Workflow,
    inputs: Mapping[str, Any] | None,
    run_id: str | None,
    parent_run_id: str | None,
    parent_wait_key: str | None,
    labels: Mapping[str, str] | None,
    lease: Lease | None,
) -> tuple[RunState, dict[str, Any]]:
    if run_id is not None:
        check_run_id(run_id)  # before anything is written (the definition)
    _check_arguments(workflow, inputs)
    workflow.validate(policy)
    values = input_values(workflow, inputs or {})
    def_id = await services.definitions.keep(workflow)
    secret_names = {k for k, spec in workflow.inputs.items() if spec.secret}
    stored, clear = Secrets.split(values, secret_names)
    run_id = run_id or new_run_id()
    state = RunState(
        run_id=run_id,
        workflow=workflow.name,
        # A run created leased is driven at once: it starts life running, which
        # spares its first step a status change.
        status=RunStatus.RUNNING if lease is not None else RunStatus.PENDING,
        inputs=stored,
        parent_run_id=parent_run_id,
        parent_wait_key=parent_wait_key,
        definition_id=def_id,
        labels=dict(labels or {}),
    )
    return state, clear


async def existing_run(store: Store, run_id: str, workflow: Workflow) -> RunState | None:
    """The run ``run_id`` if it exists (a run of ``workflow``), else None: what an
    idempotent start returns instead of recording a second run.

    Raises:
        StoreError: it exists, as a run of another workflow.
    """
    try:
        state = await store.load_run(run_id)
    except RunNotFound:
        return None
    if state.workflow != workflow.name:
        raise StoreError(
            f"run {run_id!r} already exists as a run of workflow {state.workflow!r}, "
            f"not {workflow.name!r}; choose another run id"
        )
    return state


_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}\Z")


def check_run_id(run_id: str) -> None:
    """Refuse a run id that could not be a directory name of its own under the runs
    directory (a ``/``, ``..``, a leading dot) or a sane key.

    Raises:
        ValidationError: the id, and what an id may hold.
    """
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
        raise ValidationError(
            f"run id {run_id!r} is not allowed: use 1 to 200 letters, digits and '.', '_', "
            "':', '@', '-', starting with a letter or digit (it names the run's directory)"
        )


def queue_spot(
    queue: str | QueueSpot | QueueSpec | None, inputs: Mapping[str, Any] | None
) -> QueueSpot | None:
    """The queue a run started with ``queue`` and ``inputs`` waits on (None: none).

    Raises:
        ValidationError: the queue name is not valid.
    """
    if queue is None:
        return None
    if isinstance(queue, QueueSpec):
        spot = queue.spot(inputs or {})
    else:
        spot = QueueSpot(queue) if isinstance(queue, str) else queue
    try:
        check_queue_name(spot.name)
    except ValueError as exc:
        raise ValidationError(str(exc), [f"{exc} @ queue"]) from None
    return spot


async def start_once(
    store: Store,
    run_id: str | None,
    workflow: Workflow,
    create: Callable[[], Awaitable[RunState]],
) -> str:
    """``create()``'s run id, or ``run_id`` when a run of ``workflow`` has it already
    (also when it was created by another process between the look and ``create``).
    ``create`` checks the id itself (:func:`check_run_id`, in ``_new_state``)."""
    for attempt in (0, 1):
        if run_id is not None and await existing_run(store, run_id, workflow) is not None:
            return run_id
        try:
            return (await create()).run_id
        except StoreError:
            if attempt or run_id is None:
                raise
    raise AssertionError("unreachable")


def _checked_hash(state: RunState) -> tuple[str, str]:
    """The state's text and hash; the state must be JSON data, as the store will write it."""
    try:
        return state_text_and_hash(state)
    except (TypeError, ValueError, RecursionError) as exc:
        raise StoreError(
            f"run {state.run_id!r}: the run's inputs or labels are not JSON data ({exc}); "
            f"pass JSON values (strings, numbers, booleans, lists, mappings)"
        ) from exc


def _check_arguments(workflow: object, inputs: object) -> None:
    """Refuse a workflow that is not a :class:`Workflow`, or inputs that are not a mapping.

    Raises:
        TypeError: saying what was given and what to pass instead.
    """
    if not isinstance(workflow, Workflow):
        if isinstance(workflow, str | os.PathLike):
            raise TypeError(
                f"engine.run() and engine.start() take a Workflow, not a file name "
                f"({workflow!r:.200}); load the file first: "
                f"spindle.load_workflow({os.fspath(workflow)!r:.200})"
            )
        raise TypeError(
            f"engine.run() and engine.start() take a Workflow (got {type(workflow).__name__}); "
            f"build one with spindle.Workflow(...) or load a file with spindle.load_workflow(PATH)"
        )
    if inputs is not None and not isinstance(inputs, Mapping):
        raise TypeError(
            f"the inputs of workflow '{workflow.name}' must be a mapping of input name to "
            f"value, such as {{'who': 'Ada'}} (got {type(inputs).__name__} {inputs!r:.80})"
        )
