"""The base every plugin class derives from, and the groups they live in.

A plugin *group* (``runtime``, ``executor``, ...) has one abstract base class;
a plugin *kind* is a concrete attrs subclass declared with a discriminator::

    @attrs.define
    class Upper(Runtime[str], kind="upper", description="Upper-cases a string."):
        text: str

        async def _setup_runtime(self, task: TaskContext) -> str:
            return self.text.upper()

The class keyword sets ``kind_name`` and ``kind_description`` (the listing
metadata) and the group is inherited from the base. The registry maps the
entry-point name to the class; the kind in the class must match the name.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = ["BASE_NAMES", "GROUPS", "Plugin", "entry_point_group"]

#: Every plugin group, in the order listings show them.
GROUPS: tuple[str, ...] = (
    "runtime",
    "executor",
    "effect",
    "store",
    "observer",
    "middleware",
    "cli",
    "hooks",
)


#: The public name of each group's base class (groups checked by shape have none).
BASE_NAMES: dict[str, str] = {
    "runtime": "Runtime",
    "executor": "Executor",
    "effect": "EffectHandler",
    "store": "Store",
    "observer": "ObserverPlugin",
    "middleware": "Middleware",
}

#: Each group's base class, recorded when it is defined (see ``Plugin.group_base``).
_GROUP_BASES: dict[str, type[Plugin]] = {}


def entry_point_group(group: str) -> str:
    """Return the entry-point group name for a plugin group (``runtime`` → ``spindle.runtime``)."""
    return f"spindle.{group}"


class Plugin:
    """Root of every class-based plugin.

    Subclasses pass ``group=`` (the group bases do) or ``kind=`` and
    ``description=`` (concrete kinds) as class keywords. Concrete kinds are
    attrs classes whose fields are the plugin's configuration.
    """

    plugin_group: ClassVar[str] = ""
    kind_name: ClassVar[str] = ""
    kind_description: ClassVar[str] = ""

    def __init_subclass__(
        cls,
        *,
        group: str | None = None,
        kind: str | None = None,
        description: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        if group is not None:
            if group not in GROUPS:
                raise ValueError(f"unknown plugin group {group!r}; expected one of {GROUPS}")
            cls.plugin_group = group
            cls.kind_name = ""
            cls.kind_description = ""
        if kind is not None:
            cls.kind_name = kind
            doc = (cls.__doc__ or "").strip().splitlines()
            cls.kind_description = description or (doc[0] if doc else "")
        elif description is not None:
            cls.kind_description = description
        # A group base records itself, so the registry can check kinds against it
        # without importing it. attrs rebuilds a slotted class (without the class
        # keywords), so the test is on the class's own namespace and the last
        # class built wins.
        if "plugin_group" in cls.__dict__ and not cls.__dict__.get("kind_name"):
            _GROUP_BASES[cls.plugin_group] = cls

    @staticmethod
    def group_base(group: str) -> type[Plugin] | None:
        """The base class of ``group``, if the module defining it was imported."""
        return _GROUP_BASES.get(group)

    @classmethod
    def is_group_base(cls) -> bool:
        """Whether this class is a group's abstract base rather than a concrete kind."""
        return not cls.kind_name
