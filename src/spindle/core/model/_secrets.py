"""Secret workflow inputs: kept in memory only, redacted everywhere they could leak.

An input declared ``secret: true`` is stored in the run as :data:`REDACTED`;
its clear value lives only in the engine process that received it. Ledger
results and errors and event payloads are scrubbed of every secret value
before they leave the engine. A run resumed in another process needs the
secret again (``spindle resume RUN --input NAME=VALUE``); a node that needs
it and does not have it fails with that instruction instead of running with
the placeholder.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["NO_SECRETS", "REDACTED", "Secrets"]

REDACTED = "***"


class Secrets:
    """The clear values of one run's secret inputs, and the scrubber built from them."""

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        self.values = {k: v for k, v in (values or {}).items() if v is not None}
        # Longest first, so a secret containing another is replaced whole.
        self._needles = sorted(
            {str(v) for v in self.values.values() if str(v)}, key=len, reverse=True
        )
        self._texts = tuple(self._needles)  # every task context is given them

    @property
    def texts(self) -> tuple[str, ...]:
        """The secret values as text, longest first (what redaction looks for)."""
        return self._texts

    def __bool__(self) -> bool:
        return bool(self._needles)

    def scrub(self, value: Any) -> Any:
        """Return ``value`` with every secret value inside a string replaced by ``***``."""
        if not self._needles:
            return value
        if isinstance(value, str):
            for needle in self._needles:
                if needle in value:
                    value = value.replace(needle, REDACTED)
            return value
        if isinstance(value, Mapping):
            return {self.scrub(k): self.scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.scrub(v) for v in value]
        if not isinstance(value, bool | int | float) or value is None:
            return value
        return REDACTED if str(value) in self._needles else value

    @staticmethod
    def split(
        inputs: Mapping[str, Any], secret_names: set[str]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Split ``inputs`` into (what may be stored, the clear secret values)."""
        stored = {k: (REDACTED if k in secret_names else v) for k, v in inputs.items()}
        clear = {k: v for k, v in inputs.items() if k in secret_names}
        return stored, clear


#: No secrets: what a run without secret inputs (or without them given) holds.
NO_SECRETS = Secrets()
