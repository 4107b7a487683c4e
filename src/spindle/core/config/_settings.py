"""Settings: ``spindle.toml`` or ``[tool.spindle]``, then ``SPINDLE_*``, then flags.

Precedence (later wins): built-in defaults, the file in the working
directory (``spindle.toml``, else ``pyproject.toml``'s ``[tool.spindle]``),
``SPINDLE_<FIELD>`` environment variables for scalar fields (``SPINDLE_STORE``,
``SPINDLE_CONCURRENCY``...), and explicit overrides (CLI flags). Unknown keys
are rejected with the file and line they are on.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import attrs
from attrs import define, field

from spindle.core.config._origins import Origins, locate
from spindle.core.errors import ConfigError
from spindle.core.model import converter, structure_errors

__all__ = ["DEFAULT_STORE", "PluginSettings", "PolicySettings", "Settings", "load_settings"]

DEFAULT_STORE = "sqlite:///.spindle/spindle.db"

log = logging.getLogger("spindle.config")


@define
class PluginSettings:
    """``[plugins]``: which distributions and kinds may load, and duplicate preferences."""

    allow_distributions: list[str] = field(factory=list)
    deny_distributions: list[str] = field(factory=list)
    allow_kinds: list[str] = field(factory=list)
    deny_kinds: list[str] = field(factory=list)
    prefer: dict[str, str] = field(factory=dict)


@define
class PolicySettings:
    """``[policy]``: what workflow definitions may use (see ``LoadPolicy``)."""

    allow_kinds: list[str] | None = None
    deny_kinds: list[str] = field(factory=list)
    allowed_executables: list[str] | None = None
    allowed_functions: list[str] | None = None


@define
class Settings:
    """Every setting, with its default.

    Attributes:
        store: store URL (``sqlite:///path``, ``memory://``, ``postgresql://...``).
        durability: ``normal`` (survives a killed process) or ``full`` (fsync each commit).
        runs_dir: where each run's working directory is created.
        concurrency: how many ready nodes of one run execute at once.
        max_steps: ledger records a run may write before it is failed (runaway guard).
        lease_ttl: seconds a run lease lasts without a heartbeat.
        cancel_grace: seconds ``cancel`` waits for another live process driving the
            run to stop it itself, before taking the run's lease over from it.
        max_inline_sleep: timers due within this many seconds are awaited in-process;
            longer ones leave the run waiting for a worker or ``spindle resume``.
        result_inline_limit: results larger than this many bytes go to the artifact
            store and the ledger keeps a reference.
        hooks: modules with ``@hookimpl`` functions to load.
        observers: ``[{kind = "jsonl", path = "events.jsonl", required = false}]``.
        middleware: ``[{kind = "timing", priority = 0}]``.
        ledger_key: a secret that makes new runs' ledgers an HMAC-SHA256 chain under
            it (``SPINDLE_LEDGER_KEY``; better from the environment than a file), so
            an edit cannot be hidden by recomputing hashes. Only its fingerprint is
            stored; runs keyed with it need it to be verified and continued.
        retention: how long ``spindle worker`` keeps finished runs (a duration such
            as ``30d``; ``SPINDLE_RETENTION``): workers prune older ones now and
            then, a few batches at a time. None (the default): they keep every run.
    """

    store: str = DEFAULT_STORE
    durability: str = "normal"
    runs_dir: str = ".spindle/runs"
    concurrency: int = 8
    max_steps: int = 100_000
    lease_ttl: float = 30.0
    cancel_grace: float = 10.0
    max_inline_sleep: float = 60.0
    result_inline_limit: int = 65_536
    hooks: list[str] = field(factory=list)
    observers: list[dict[str, Any]] = field(factory=list)
    middleware: list[dict[str, Any]] = field(factory=list)
    ledger_key: str | None = field(default=None, repr=False)
    retention: str | None = None
    plugins: PluginSettings = field(factory=PluginSettings)
    policy: PolicySettings = field(factory=PolicySettings)
    #: The file the settings were read from (not a setting: never read from a file).
    source: str | None = field(default=None, init=False, eq=False)
    #: Where each key was set (file lines, variables, overrides), for later errors
    #: such as a bad ``[[observers]]`` entry found when the engine builds it.
    origins: Origins | None = field(default=None, init=False, eq=False, repr=False)

    def where(self, *keys: str) -> str:
        """Where the setting at ``keys`` came from: ``spindle.toml:12``, a variable, ...

        Settings built in code (no file) answer ``settings``.
        """
        if self.origins is None:
            return "settings"
        return self.origins.where(keys)[0]

    def policy_problems(self) -> list[tuple[str, str]]:
        """``(key, problem)`` for each malformed ``[policy]`` entry."""
        from spindle.core.workflow import policy_setting_problems

        return policy_setting_problems(
            self.policy.allowed_executables, self.policy.allowed_functions
        )

    def load_policy(self) -> Any:
        """The workflow :class:`LoadPolicy` these settings describe, or None if unrestricted."""
        from spindle.core.workflow import LoadPolicy

        p = self.policy
        if attrs.asdict(p) == attrs.asdict(PolicySettings()):
            return None
        return LoadPolicy(
            allow_kinds=p.allow_kinds,
            deny_kinds=list(p.deny_kinds),
            allowed_executables=p.allowed_executables,
            allowed_functions=p.allowed_functions,
        )


_SCALARS = {
    a.name: a.type
    for a in attrs.fields(Settings)
    if a.name
    in (
        "store",
        "durability",
        "runs_dir",
        "concurrency",
        "max_steps",
        "lease_ttl",
        "cancel_grace",
        "max_inline_sleep",
        "result_inline_limit",
        "ledger_key",
        "retention",
    )
}


def _read_file(cwd: Path) -> tuple[dict[str, Any], str | None, str, str | None]:
    """Return (data, file, text, section) from spindle.toml or pyproject.toml."""
    own = cwd / "spindle.toml"
    pyproject = cwd / "pyproject.toml"
    if not own.is_file() and not pyproject.is_file():
        return {}, None, "", None
    import tomllib  # only with a file to read: most commands run without one

    if own.is_file():
        text = own.read_text(encoding="utf-8")
        try:
            return tomllib.loads(text), str(own), text, None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{own}: invalid TOML: {exc}") from exc
    if pyproject.is_file():
        text = pyproject.read_text(encoding="utf-8")
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{pyproject}: invalid TOML: {exc}") from exc
        section = data.get("tool", {}).get("spindle")
        if isinstance(section, dict):
            return section, str(pyproject), text, "tool.spindle"
    return {}, None, "", None


def _env_overrides(environ: Mapping[str, str]) -> dict[str, tuple[Any, str]]:
    """Settings from ``SPINDLE_*`` variables: ``{field: (value, variable name)}``."""
    out: dict[str, tuple[Any, str]] = {}
    for name, typ in _SCALARS.items():
        var = f"SPINDLE_{name.upper()}"
        raw = environ.get(var)
        if raw is None or raw == "":
            continue
        try:
            if typ in (int, "int"):
                out[name] = (int(raw), var)
            elif typ in (float, "float"):
                out[name] = (float(raw), var)
            else:
                out[name] = (raw, var)
        except ValueError:
            raise ConfigError(
                f"environment variable {var}={raw!r} is not a valid {getattr(typ, '__name__', typ)}"
            ) from None
    hooks = environ.get("SPINDLE_HOOKS")
    if hooks:
        out["hooks"] = ([h.strip() for h in hooks.split(",") if h.strip()], "SPINDLE_HOOKS")
    return out


#: Fields a value of exactly this type is given to as is by structuring, too.
_PLAIN_TYPES: dict[str, type] = {
    "store": str,
    "durability": str,
    "runs_dir": str,
    "concurrency": int,
    "max_steps": int,
    "lease_ttl": float,
    "cancel_grace": float,
    "max_inline_sleep": float,
    "result_inline_limit": int,
    "ledger_key": str,
    "retention": str,
}


def _plain(merged: Mapping[str, Any]) -> Settings | None:
    """``Settings`` built directly when each value already is what structuring would give.

    Settings from ``SPINDLE_*`` variables and flags (no file) are scalars of
    their field's type and a list of hook names. Structuring them through the
    converter would first generate and compile its functions for
    ``Settings``, about 10 ms of every command's start-up, to return the same
    values. Anything else (a file's tables, an ``int`` for a ``float``, an
    unknown key) returns None and goes through the converter, with its errors.
    """
    values: dict[str, Any] = {}
    for key, value in merged.items():
        if key == "hooks":
            if type(value) is not list or any(type(h) is not str for h in value):
                return None
            values[key] = list(value)
        elif type(value) is _PLAIN_TYPES.get(key):
            values[key] = value
        else:
            return None
    return Settings(**values)


def load_settings(
    cwd: str | Path | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    use_file: bool = True,
) -> Settings:
    """Load settings from the working directory, the environment and ``overrides``.

    Raises:
        ConfigError: a file is not valid TOML, a key is unknown (with file and
            line) or a value has the wrong type.
    """
    base = Path(cwd) if cwd is not None else Path.cwd()
    data, source, text, section = _read_file(base) if use_file else ({}, None, "", None)
    origins = Origins(source, text, section)
    merged: dict[str, Any] = dict(data)
    for name, (value, var) in _env_overrides(os.environ if environ is None else environ).items():
        merged[name] = value
        origins.by_key[name] = f"environment variable {var}"
    for name, value in (overrides or {}).items():
        if value is not None:
            merged[name] = value
            origins.by_key[name] = "explicit override"
    try:
        settings = _plain(merged) or converter.structure(merged, Settings)
    except Exception as exc:
        lines = []
        for problem in structure_errors(exc, "$"):
            message, _, at = problem.rpartition(" @ ")
            keys = locate(merged, at[2:] if at.startswith("$.") else "")
            where, shown = origins.where(keys)
            lines.append(f"{where}: {message} @ {shown}" if shown else f"{where}: {message}")
        raise ConfigError("invalid spindle settings:\n  " + "\n  ".join(lines)) from exc
    if settings.durability not in ("normal", "full"):
        where, _ = origins.where(("durability",))
        raise ConfigError(
            f"{where}: durability must be 'normal' or 'full', got {settings.durability!r}"
        )
    if settings.concurrency < 1:
        where, _ = origins.where(("concurrency",))
        raise ConfigError(f"{where}: concurrency must be at least 1, got {settings.concurrency}")
    if settings.retention is not None:
        from spindle.core.model import parse_duration

        where, _ = origins.where(("retention",))
        parse_duration(settings.retention, what=f"{where}: retention")
    for key, problem in settings.policy_problems():
        where, _ = origins.where(("policy", key))
        raise ConfigError(f"{where}: [policy] {key}: {problem}")
    settings.source = source
    settings.origins = origins
    if log.isEnabledFor(logging.INFO):
        store_origin = origins.by_key.get("store") or (source if "store" in data else None)
        _log_loaded(settings, base, store_origin)
    return settings


def _log_loaded(settings: Settings, base: Path, store_origin: str | None) -> None:
    """Say at INFO where the settings and the store came from (what ``spindle -v`` shows)."""
    if settings.source is not None:
        where = f"settings from {settings.source}"
    else:
        where = f"no spindle.toml or [tool.spindle] in {base}, default settings"
    store = _without_password(settings.store)
    log.info("%s; store %s (%s)", where, store, store_origin or "default")


def _without_password(url: str) -> str:
    """``url`` with any password replaced by ``***``, fit for a log line."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if not password:
        return url
    netloc = parts.netloc.replace(f":{password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
