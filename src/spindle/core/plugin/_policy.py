"""What the registry reports about a kind, and which kinds it may load.

Plain dataclasses, not attrs: these are on the path of ``spindle plugins``,
which must stay fast (importing attrs alone costs ~30 ms).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from spindle.core.plugin._discovery import normalize_name

__all__ = ["KindInfo", "PluginPolicy"]


@dataclass(frozen=True)
class KindInfo:
    """A kind as listings show it, without importing it.

    Attributes:
        group: the plugin group (``runtime``).
        kind: the kind name.
        value: ``module:attr`` of the entry point (or of the registered object).
        distribution: who provides it (``(registered)`` for programmatic kinds).
        version: the distribution's version.
        description: the kind's one-line description, once it has been imported.
        error: why it cannot be loaded, if known (import error, duplicate...).
        denied: the allow/deny configuration refuses it.
    """

    group: str
    kind: str
    value: str
    distribution: str
    version: str
    description: str = ""
    error: str | None = None
    denied: bool = False


@dataclass
class PluginPolicy:
    """Allow/deny lists for plugin distributions and kinds, and duplicate preferences.

    Kinds are written ``"group.kind"`` (``"runtime.python_code"``); an empty
    allow list allows everything. Deny wins over allow. ``prefer`` maps a
    ``"group.kind"`` provided by several distributions to the one to use.

    Example::

        PluginPolicy(deny_kinds=["runtime.python_code"], prefer={"runtime.upper": "dist-b"})
    """

    allow_distributions: list[str] = field(default_factory=list)
    deny_distributions: list[str] = field(default_factory=list)
    allow_kinds: list[str] = field(default_factory=list)
    deny_kinds: list[str] = field(default_factory=list)
    prefer: dict[str, str] = field(default_factory=dict)

    def refusal(self, group: str, kind: str, distribution: str | None) -> str | None:
        """Return why ``group.kind`` from ``distribution`` is refused, or None."""
        name = f"{group}.{kind}"
        if name in self.deny_kinds:
            return f"kind '{name}' is in plugins.deny_kinds"
        if self.allow_kinds and name not in self.allow_kinds:
            return f"kind '{name}' is not in plugins.allow_kinds"
        if distribution is not None:
            dist = normalize_name(distribution)
            if dist in (normalize_name(d) for d in self.deny_distributions):
                return f"distribution '{distribution}' is in plugins.deny_distributions"
            allowed = [normalize_name(d) for d in self.allow_distributions]
            if allowed and dist not in allowed:
                return f"distribution '{distribution}' is not in plugins.allow_distributions"
        return None
