"""The Python steps of pipeline.yaml.

spindle fills each parameter by name: from the node's inputs (``raw``,
``table``, ``rows``), its declared outputs (``table``/``summary``: the path to
write), or the workflow's inputs (``unit``).
"""

import csv
import json

CONVERSIONS = {
    "fahrenheit": lambda c: c * 9 / 5 + 32,
    "kelvin": lambda c: c + 273.15,
}


def transform(raw, table, unit):
    """Read the raw CSV, add a column in ``unit``, write it to ``table``."""
    if unit not in CONVERSIONS:
        raise ValueError(f"unknown unit {unit!r}; use one of {', '.join(CONVERSIONS)}")
    convert = CONVERSIONS[unit]
    with open(raw, newline="") as src:
        rows = list(csv.DictReader(src))
    with open(table, "w", newline="") as dst:
        writer = csv.DictWriter(dst, fieldnames=["city", "celsius", unit])
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, unit: round(convert(float(row["celsius"])), 2)})
    return len(rows)


def summarize(table, rows, summary):
    """Write the warmest and coldest city and the mean to ``summary`` (JSON)."""
    with open(table, newline="") as src:
        data = list(csv.DictReader(src))
    unit = next(name for name in data[0] if name not in ("city", "celsius"))
    data.sort(key=lambda row: float(row["celsius"]))
    mean = sum(float(row[unit]) for row in data) / len(data)
    result = {
        "rows": int(rows),
        "unit": unit,
        "coldest": data[0]["city"],
        "warmest": data[-1]["city"],
        "mean": round(mean, 2),
    }
    with open(summary, "w") as out:
        json.dump(result, out, indent=2)
    return result
