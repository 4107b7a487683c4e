"""The plugin registry: kinds per group, discovered lazily through entry points.

Rules (documented in ``docs/plugins.md``):

* **Lazy.** Listing kinds reads metadata only; :meth:`Registry.get` imports
  exactly the one entry point asked for, once.
* **Isolated failures.** An entry point that fails to import, is not a
  subclass of its group's base, or declares another ``kind_name`` than its
  entry-point name is recorded as a :class:`PluginLoadError`; the other kinds
  keep working. ``on_load_failure`` (stevedore-style) is called with each one.
* **Duplicates.** Two *distributions* declaring the same kind in a group is an
  error for that kind — never last-write-wins — unless the configuration picks
  one (``[plugins.prefer] "runtime.command" = "dist-name"``). A kind
  registered programmatically (:meth:`Registry.register`) deliberately
  overrides entry points: that is the host application speaking.
* **Policy.** Allow/deny lists of distributions and kinds are checked before
  anything is imported; a refused kind raises :class:`PluginPolicyError`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from spindle.core.errors import PluginError, PluginLoadError, PluginPolicyError, UnknownKindError
from spindle.core.plugin._active import default as active_default
from spindle.core.plugin._active import set_default_registry
from spindle.core.plugin._discovery import EntryPointInfo, discover, normalize_name
from spindle.core.plugin._loading import (
    description,
    duplicate_error,
    load_entry_point,
    qualname,
    shape_problem,
    unknown_kind,
)
from spindle.core.plugin._plugin import GROUPS, Plugin
from spindle.core.plugin._policy import KindInfo, PluginPolicy

if TYPE_CHECKING:
    from spindle.core.config import PluginSettings

__all__ = ["KindInfo", "PluginPolicy", "Registry", "default_registry"]

LoadFailureCallback = Callable[[PluginLoadError], None]


class Registry:
    """Kinds per plugin group, from entry points and programmatic registration.

    Args:
        entry_points: discover installed entry points (``False`` gives an empty
            registry, for tests and embedded hosts).
        policy: allow/deny lists and duplicate preferences.
        on_load_failure: called with each :class:`PluginLoadError` as it is found.
        paths: where to look for distributions (default ``sys.path``).
        select: keep only the entry points for which it returns true (default:
            every one); :meth:`for_testing` uses it to keep spindle's own kinds.
    """

    def __init__(
        self,
        *,
        entry_points: bool = True,
        policy: PluginPolicy | None = None,
        on_load_failure: LoadFailureCallback | None = None,
        paths: Sequence[str] | None = None,
        select: Callable[[EntryPointInfo], bool] | None = None,
    ) -> None:
        self.policy = policy or PluginPolicy()
        self.on_load_failure = on_load_failure
        self._use_entry_points = entry_points
        self._paths = paths
        self._select = select
        self._eps: dict[str, dict[str, list[EntryPointInfo]]] | None = None
        self._programmatic: dict[str, dict[str, Any]] = {g: {} for g in GROUPS}
        self._loaded: dict[tuple[str, str], Any] = {}
        self._errors: dict[tuple[str, str], PluginLoadError] = {}

    # --- construction helpers ------------------------------------------------

    @classmethod
    def for_testing(
        cls,
        plugins: Iterable[Any] = (),
        *,
        builtins: bool = True,
        entry_points: bool = False,
        hooks: bool = False,
    ) -> Registry:
        """A registry for tests: ``plugins`` plus spindle's own kinds, nothing else installed.

        Args:
            plugins: classes (with ``kind_name``) to register in code; they
                override a kind of the same name.
            builtins: include spindle's built-in kinds (stores, runtimes,
                executors, effects, observers, middleware) from the entry points
                of spindle's own distribution, so ``Engine("memory://",
                registry=...)`` works; ``False``: only ``plugins``.
            entry_points: include every installed distribution's kinds too.
            hooks: keep installed hook modules (``spindle.hooks`` entry points);
                by default another package's hooks cannot change a test's runs.

        Example: ``Engine("memory://", registry=Registry.for_testing([UpperRuntime]))``.
        """

        def select(ep: EntryPointInfo) -> bool:
            if ep.group == "hooks" and not hooks:
                return False
            return entry_points or normalize_name(ep.distribution) == "spindle"

        reg = cls(entry_points=builtins or entry_points, select=select)
        for p in plugins:
            reg.register(p)
        return reg

    @classmethod
    def from_settings(cls, settings: PluginSettings, **kwargs: Any) -> Registry:
        """Build a registry honouring the ``[plugins]`` section of the configuration."""
        policy = PluginPolicy(
            allow_distributions=list(settings.allow_distributions),
            deny_distributions=list(settings.deny_distributions),
            allow_kinds=list(settings.allow_kinds),
            deny_kinds=list(settings.deny_kinds),
            prefer=dict(settings.prefer),
        )
        return cls(policy=policy, **kwargs)

    # --- registration ------------------------------------------------------------

    def register(self, obj: Any, *, kind: str | None = None, group: str | None = None) -> None:
        """Register a plugin programmatically; it overrides an entry point of the same kind.

        Args:
            obj: a plugin class (its ``plugin_group``/``kind_name`` are used), or any
                object when ``group`` and ``kind`` are given (observers, CLI commands).
            kind: the kind name, if not the class's ``kind_name``.
            group: the plugin group, if not the class's ``plugin_group``.
        """
        g = group or getattr(obj, "plugin_group", "")
        k = kind or getattr(obj, "kind_name", "")
        if g not in GROUPS:
            raise ValueError(
                f"cannot register {obj!r}: unknown group {g!r}; pass group= one of {GROUPS}"
            )
        if not k:
            raise ValueError(f"cannot register {obj!r} in group {g!r}: it has no kind; pass kind=")
        problem = shape_problem(g, obj)
        if problem:
            raise TypeError(f"cannot register {obj!r} as {g} '{k}': {problem}")
        self._programmatic[g][k] = obj
        self._loaded.pop((g, k), None)
        self._errors.pop((g, k), None)

    # --- lookup --------------------------------------------------------------

    def base(self, group: str) -> type:
        """Return the group's base class (``runtime`` → :class:`Runtime`).

        For ``observer`` it is :class:`ObserverPlugin`, the base configured
        observers structure into (any class with ``async on_event`` is accepted
        as an observer kind; see :meth:`create`).
        """
        # The bases record themselves when defined; import the module of the ones
        # this layer defines (stores are built from their URL, never structured).
        if group in ("runtime", "executor", "effect"):
            from spindle.core.plugin import _bases  # noqa: F401
        elif group == "middleware":
            from spindle.core.plugin import _middleware  # noqa: F401
        elif group == "observer":
            from spindle.core.plugin import _observers  # noqa: F401
        base = Plugin.group_base(group)
        if base is None:
            raise ValueError(f"group {group!r} has no base class to structure into")
        return base

    def _entry_points(self) -> dict[str, dict[str, list[EntryPointInfo]]]:
        if self._eps is None:
            table: dict[str, dict[str, list[EntryPointInfo]]] = {g: {} for g in GROUPS}
            # The switch of spindle.testing's spindle_no_installed_hooks (and of
            # subprocesses a test starts): no installed hook module changes a run.
            no_hooks = bool(os.environ.get("SPINDLE_NO_INSTALLED_HOOKS"))
            if self._use_entry_points:
                for ep in discover(self._paths):
                    if ep.group not in table or (no_hooks and ep.group == "hooks"):
                        continue
                    if self._select is None or self._select(ep):
                        table[ep.group].setdefault(ep.kind, []).append(ep)
            self._eps = table
        return self._eps

    def names(self, group: str) -> list[str]:
        """Every kind name in ``group``, sorted; imports nothing."""
        self._check_group(group)
        return sorted(set(self._programmatic[group]) | set(self._entry_points()[group]))

    def kinds(self, group: str | None = None) -> list[KindInfo]:
        """Describe every kind (of one group or all) from metadata only.

        Descriptions come from already-loaded classes; for not-yet-imported
        entry points the description is empty (``spindle plugins --check`` imports
        them and fills it in).
        """
        groups = [group] if group else list(GROUPS)
        out: list[KindInfo] = []
        for g in groups:
            self._check_group(g)
            for k in self.names(g):
                out.append(self._info(g, k))
        return out

    def _info(self, group: str, kind: str) -> KindInfo:
        if kind in self._programmatic[group]:
            obj = self._programmatic[group][kind]
            return KindInfo(
                group,
                kind,
                qualname(obj),
                "(registered)",
                "",
                description(obj),
                None,
                self.policy.refusal(group, kind, None) is not None,
            )
        eps = self._entry_points()[group][kind]
        chosen = self._resolve(group, kind, eps)
        if isinstance(chosen, EntryPointInfo):
            err = self._errors.get((group, kind))
            loaded = self._loaded.get((group, kind))
            return KindInfo(
                group,
                kind,
                chosen.value,
                chosen.distribution,
                chosen.version,
                description(loaded) if loaded is not None else "",
                str(err) if err is not None else None,
            )
        if isinstance(chosen, PluginPolicyError):
            first = eps[0]
            return KindInfo(
                group, kind, first.value, first.distribution, first.version, denied=True
            )
        return KindInfo(
            group,
            kind,
            ", ".join(e.value for e in eps),
            ", ".join(e.distribution for e in eps),
            ", ".join(e.version for e in eps),
            error=str(chosen),
        )

    def get(self, group: str, kind: str) -> Any:
        """Return the plugin registered as ``kind`` in ``group``, importing it if needed.

        Only that one entry point is imported, once; later calls return the
        same object.

        Raises:
            UnknownKindError: nothing of that kind is installed (lists what is).
            PluginLoadError: the kind exists but is broken or ambiguous.
            PluginPolicyError: the configuration refuses it.
        """
        self._check_group(group)
        cached = self._loaded.get((group, kind))
        if cached is not None:
            return cached
        if kind in self._programmatic[group]:
            refusal = self.policy.refusal(group, kind, None)
            if refusal:
                raise PluginPolicyError(f"{group} '{kind}' is refused: {refusal}")
            obj = self._programmatic[group][kind]
            self._loaded[(group, kind)] = obj
            return obj
        eps = self._entry_points()[group].get(kind)
        if not eps:
            raise unknown_kind(group, kind, self.names(group))
        if (group, kind) in self._errors:
            raise self._errors[(group, kind)]
        chosen = self._resolve(group, kind, eps)
        if isinstance(chosen, PluginPolicyError):
            raise chosen
        if isinstance(chosen, PluginLoadError):
            self._record(chosen)
            raise chosen
        obj = self._load(chosen)
        self._loaded[(group, kind)] = obj
        return obj

    def load_errors(self) -> list[PluginLoadError]:
        """Load errors found so far (call :meth:`check` to import everything first)."""
        return list(self._errors.values())

    def check(self, group: str | None = None) -> list[KindInfo]:
        """Import every kind (of one group or all) and describe each, with its load error."""
        groups = [group] if group else list(GROUPS)
        for g in groups:
            for k in self.names(g):
                try:
                    self.get(g, k)
                except PluginPolicyError:
                    continue
                except (PluginLoadError, UnknownKindError):
                    continue
        return self.kinds(group)

    def create(self, group: str, config: Mapping[str, Any], *, path: str = "$") -> Any:
        """Build a configured plugin instance from ``{"kind": ..., **options}``.

        Args:
            group: the plugin group.
            config: the mapping beside ``kind:`` in a workflow or ``spindle.toml``.
            path: where the mapping came from, for error messages
                (``nodes.hello.runtime``).

        Raises:
            ValidationError: the kind is unknown, broken or refused, or an option
                is wrong; every problem is listed with its path under ``path``.
        """
        import attrs

        from spindle.core.errors import ValidationError
        from spindle.core.plugin._structure import structure_plugin

        data = dict(config)
        kind = data.get("kind")
        if isinstance(kind, str) and kind in self.names(group):
            try:
                cls = self.get(group, kind)
            except PluginError as exc:
                raise ValidationError(
                    f"invalid {group} configuration", [f"{exc} @ {path}.kind"]
                ) from exc
            if isinstance(cls, type) and not attrs.has(cls):
                # Duck-typed kinds (an observer class with ``on_event``) take
                # their options as keyword arguments.
                options = {k: v for k, v in data.items() if k != "kind"}
                try:
                    return cls(**options)
                except TypeError as exc:
                    raise ValidationError(
                        f"invalid {group} configuration", [f"{exc} @ {path}"]
                    ) from exc
        return structure_plugin(group, data, self, path=path)

    # --- internals -------------------------------------------------------------

    def _check_group(self, group: str) -> None:
        if group not in GROUPS:
            raise ValueError(f"unknown plugin group {group!r}; expected one of {', '.join(GROUPS)}")

    def _resolve(
        self, group: str, kind: str, eps: list[EntryPointInfo]
    ) -> EntryPointInfo | PluginLoadError | PluginPolicyError:
        """Pick the entry point to use for ``group.kind``, or say why there is none.

        Refused distributions drop out first, so denying one of two providers
        also settles a duplicate; of several remaining, ``prefer`` decides.
        """
        allowed = [e for e in eps if self.policy.refusal(group, kind, e.distribution) is None]
        if not allowed:
            first = eps[0]
            why = self.policy.refusal(group, kind, first.distribution)
            return PluginPolicyError(
                f"{group} '{kind}' from {first.distribution} {first.version} is refused: {why}"
            )
        if len(allowed) == 1:
            return allowed[0]
        wanted = self.policy.prefer.get(f"{group}.{kind}")
        if wanted:
            for ep in allowed:
                if normalize_name(ep.distribution) == normalize_name(wanted):
                    return ep
        return duplicate_error(group, kind, allowed, wanted)

    def _record(self, err: PluginLoadError) -> None:
        self._errors[(err.group, err.kind)] = err
        if self.on_load_failure is not None:
            self.on_load_failure(err)

    def _load(self, ep: EntryPointInfo) -> Any:
        try:
            return load_entry_point(ep)
        except PluginLoadError as err:
            self._record(err)
            raise


def default_registry() -> Registry:
    """The process-wide registry built from installed entry points (created on first use)."""
    registry = active_default()
    if registry is None:
        registry = Registry()
        set_default_registry(registry)
    return registry
