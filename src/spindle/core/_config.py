"""Settings: ``spindle.toml`` or ``[tool.spindle]``, then ``SPINDLE_*``, then flags.

Precedence (later wins): built-in defaults, the file in the working
directory (``spindle.toml``, else ``pyproject.toml``'s ``[tool.spindle]``),
``SPINDLE_<FIELD>`` environment variables for scalar fields (``SPINDLE_STORE``,
``SPINDLE_CONCURRENCY``...), and explicit overrides (CLI flags). Unknown keys
are rejected with the file and line they are on.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
from attrs import define, field

from spindle.core._converter import converter, structure_errors
from spindle.core.errors import ConfigError

__all__ = ["DEFAULT_STORE", "PluginSettings", "PolicySettings", "Settings", "load_settings"]

DEFAULT_STORE = "sqlite:///.spindle/spindle.db"


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
        max_inline_sleep: timers due within this many seconds are awaited in-process;
            longer ones leave the run waiting for a worker or ``spindle resume``.
        result_inline_limit: results larger than this many bytes go to the artifact
            store and the ledger keeps a reference.
        hooks: modules with ``@hookimpl`` functions to load.
        observers: ``[{kind = "jsonl", path = "events.jsonl", required = false}]``.
        middleware: ``[{kind = "timing", priority = 0}]``.
    """

    store: str = DEFAULT_STORE
    durability: str = "normal"
    runs_dir: str = ".spindle/runs"
    concurrency: int = 8
    max_steps: int = 100_000
    lease_ttl: float = 30.0
    max_inline_sleep: float = 60.0
    result_inline_limit: int = 65_536
    hooks: list[str] = field(factory=list)
    observers: list[dict[str, Any]] = field(factory=list)
    middleware: list[dict[str, Any]] = field(factory=list)
    plugins: PluginSettings = field(factory=PluginSettings)
    policy: PolicySettings = field(factory=PolicySettings)
    source: str | None = field(default=None, eq=False)

    def load_policy(self) -> Any:
        """The workflow :class:`LoadPolicy` these settings describe, or None if unrestricted."""
        from spindle.core._workflow import LoadPolicy

        p = self.policy
        if p.allow_kinds is None and not p.deny_kinds and p.allowed_executables is None:
            return None
        return LoadPolicy(allow_kinds=p.allow_kinds, deny_kinds=list(p.deny_kinds),
                          allowed_executables=p.allowed_executables)


_SCALARS = {a.name: a.type for a in attrs.fields(Settings)
            if a.name in ("store", "durability", "runs_dir", "concurrency", "max_steps",
                          "lease_ttl", "max_inline_sleep", "result_inline_limit")}


def _line_of(text: str, key: str, section: str | None) -> int | None:
    """Best-effort line number of ``key`` (inside ``section``) in TOML ``text``."""
    in_section = section is None
    pattern = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=")
    for i, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("["):
            name = stripped.strip("[]").strip()
            if name == key or name.endswith(f".{key}") and (section is None or
                                                              name.startswith(section)):
                return i
            in_section = section is None or name == section
            continue
        if in_section and pattern.match(line):
            return i
    return None


def _read_file(cwd: Path) -> tuple[dict[str, Any], str | None, str, str | None]:
    """Return (data, file, text, section) from spindle.toml or pyproject.toml."""
    own = cwd / "spindle.toml"
    if own.is_file():
        text = own.read_text(encoding="utf-8")
        try:
            return tomllib.loads(text), str(own), text, None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{own}: invalid TOML: {exc}") from exc
    pyproject = cwd / "pyproject.toml"
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


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, typ in _SCALARS.items():
        raw = environ.get(f"SPINDLE_{name.upper()}")
        if raw is None or raw == "":
            continue
        try:
            if typ in (int, "int"):
                out[name] = int(raw)
            elif typ in (float, "float"):
                out[name] = float(raw)
            else:
                out[name] = raw
        except ValueError:
            raise ConfigError(
                f"environment variable SPINDLE_{name.upper()}={raw!r} is not a valid "
                f"{getattr(typ, '__name__', typ)}"
            ) from None
    hooks = environ.get("SPINDLE_HOOKS")
    if hooks:
        out["hooks"] = [h.strip() for h in hooks.split(",") if h.strip()]
    return out


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
    merged: dict[str, Any] = dict(data)
    merged.update(_env_overrides(os.environ if environ is None else environ))
    merged.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        settings = converter.structure(merged, Settings)
    except Exception as exc:
        problems = structure_errors(exc, section or "$")
        lines = []
        for p in problems:
            where = source or "settings"
            key = p.rsplit(" @ ", 1)[-1].split(".")[-1]
            sub = p.rsplit(" @ ", 1)[-1]
            parent = sub.rsplit(".", 1)[0] if "." in sub else None
            line = _line_of(text, key, parent if parent not in (None, "$") else section)
            lines.append(f"{where}:{line}: {p}" if line else f"{where}: {p}")
        raise ConfigError("invalid spindle settings:\n  " + "\n  ".join(lines)) from exc
    if settings.durability not in ("normal", "full"):
        raise ConfigError(f"{source or 'settings'}: durability must be 'normal' or 'full', got "
                          f"{settings.durability!r}")
    if settings.concurrency < 1:
        raise ConfigError(f"{source or 'settings'}: concurrency must be at least 1, got "
                          f"{settings.concurrency}")
    settings.source = source
    return settings
