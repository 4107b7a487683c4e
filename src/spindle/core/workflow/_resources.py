"""What one attempt of a node needs of the machine that runs it: ``resources:``.

::

    train:
      runtime: {kind: python, function: "model:train"}
      executor: {kind: dask}
      resources: {cpu: 2, memory: 4GiB, gpu: 1}

A node's ``resources`` map a name to an amount: a number, or a size written
with a unit (``512MB``, ``4GiB``; ``KB``/``MB``/``GB``/``TB`` count in
thousands, ``KiB``/``MiB``/``GiB``/``TiB`` in 1024s, ``B`` or no unit is
bytes). The names are free (``cpu``, ``memory``, ``gpu``, ``license``): an
executor that places work on machines (``dask``) gives them to its
scheduler as they are, the amounts in plain numbers (bytes for a size);
executors that run in the engine's own machine (``inline``, ``subprocess``,
``process_pool``) ignore them. A bad amount is reported when the workflow
loads, with its path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from spindle.core._quote import quote

__all__ = ["ResourceAmount", "parse_size", "resource_amounts", "resource_problems"]

#: What a workflow file may write for one resource.
ResourceAmount = int | float | str

_UNITS = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "m": 10**6,
    "mb": 10**6,
    "g": 10**9,
    "gb": 10**9,
    "t": 10**12,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}

_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*")


def parse_size(text: str) -> int:
    """The number of bytes a size such as ``"4GiB"``, ``"512MB"`` or ``"1.5G"`` names.

    Raises:
        ValueError: ``text`` is not a number followed by a known unit.
    """
    match = _SIZE.fullmatch(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise ValueError(
            f"{quote(text)} is not a size; write a number with a unit such as 512MB, 4GiB "
            f"or 2GB (units: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)"
        )
    return int(float(match.group(1)) * _UNITS[unit])


def _amount(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(
            f"expected a number or a size such as 4GiB, got {type(value).__name__} {quote(value)}"
        )
    amount = float(parse_size(value)) if isinstance(value, str) else float(value)
    if amount < 0 or amount != amount:  # NaN is not a quantity either
        raise ValueError(f"expected an amount of at least 0, got {quote(value)}")
    return amount


def resource_amounts(resources: Mapping[str, Any]) -> dict[str, float]:
    """``resources`` as plain amounts: numbers as they are, sizes in bytes.

    Example:
        >>> resource_amounts({"cpu": 2, "memory": "4GiB"})
        {'cpu': 2.0, 'memory': 4294967296.0}

    Raises:
        ValueError: naming the first resource whose amount is not a number or a size.
    """
    out: dict[str, float] = {}
    for name, value in resources.items():
        try:
            out[str(name)] = _amount(value)
        except ValueError as exc:
            raise ValueError(f"resource '{name}': {exc}") from None
    return out


def resource_problems(node_id: str, resources: Mapping[str, Any], where: str) -> list[str]:
    """One line per resource of a node whose amount is not a number or a size."""
    out = []
    for name, value in resources.items():
        try:
            _amount(value)
        except ValueError as exc:
            out.append(f"node '{node_id}': resource '{name}': {exc} @ {where}.resources.{name}")
    return out
