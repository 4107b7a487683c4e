"""The engine layer: the top of the kernel. ``Engine`` keeps the public run API
and delegates to services that take only what they need. Imports every
other layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from spindle.core._lazy import lazy_facade

if TYPE_CHECKING:
    from spindle.core.engine._assembly import open_store as open_store
    from spindle.core.engine._delivery import Delivery as Delivery
    from spindle.core.engine._engine import Engine as Engine
    from spindle.core.engine._events import EventEmitter as EventEmitter
    from spindle.core.engine._finish import FinishingRun as FinishingRun
    from spindle.core.engine._leases import Leases as Leases
    from spindle.core.engine._leases import pid_alive as pid_alive
    from spindle.core.engine._retention import Retention as Retention
    from spindle.core.engine._retention import apply_retention as apply_retention
    from spindle.core.engine._schedules import add_schedule as add_schedule
    from spindle.core.engine._schedules import fire_due_schedules as fire_due_schedules
    from spindle.core.engine._schedules import until_next_slot as until_next_slot
    from spindle.core.engine._sync import SyncEngine as SyncEngine

_LAZY: dict[str, str] = {
    "Delivery": "spindle.core.engine._delivery",
    "Engine": "spindle.core.engine._engine",
    "EventEmitter": "spindle.core.engine._events",
    "FinishingRun": "spindle.core.engine._finish",
    "Leases": "spindle.core.engine._leases",
    "Retention": "spindle.core.engine._retention",
    "SyncEngine": "spindle.core.engine._sync",
    "apply_retention": "spindle.core.engine._retention",
    "add_schedule": "spindle.core.engine._schedules",
    "fire_due_schedules": "spindle.core.engine._schedules",
    "open_store": "spindle.core.engine._assembly",
    "pid_alive": "spindle.core.engine._leases",
    "until_next_slot": "spindle.core.engine._schedules",
}

__getattr__, __dir__ = lazy_facade(__name__, _LAZY)
__all__ = sorted(_LAZY)
