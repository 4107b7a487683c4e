"""The Python steps of add_node.yaml: a node that decides at run time what runs next.

``plan`` reads the experiment's settings and adds one ``fit_DEGREE`` node per
polynomial degree to try, then a ``choose`` node that takes their results;
spindle records each addition in the ledger (a durable ``add_node``
sub-step), so a resumed run rebuilds the same graph without calling
``plan`` again. The added nodes run after ``plan`` completes.
"""

from typing import Any

#: The measurements every fit uses: y = x**2 + 1, give or take.
POINTS = [(0.0, 1.1), (1.0, 1.9), (2.0, 5.2), (3.0, 9.9), (4.0, 17.1)]


def plan(ctx: Any, max_degree: int) -> list[str]:
    """Add a fit node per degree 0..max_degree and a node choosing the best fit."""
    added = []
    for degree in range(max_degree + 1):
        added.append(
            ctx.add_node(
                f"fit_{degree}",
                {
                    "runtime": {"kind": "python", "function": "planner:fit"},
                    "inputs": {"degree": {"value": degree}},
                },
            )
        )
    ctx.add_node(
        "choose",
        {
            "runtime": {"kind": "python", "function": "planner:choose"},
            "inputs": {"fits": {"value": added}, **{name: name for name in added}},
        },
    )
    return added


def fit(degree: int) -> dict[str, Any]:
    """The squared error of the best polynomial of ``degree`` through POINTS.

    A small least-squares fit, by the normal equations, so the example needs
    nothing beyond the standard library.
    """
    n = degree + 1
    matrix = [[sum(x ** (i + j) for x, _ in POINTS) for j in range(n)] for i in range(n)]
    rhs = [sum(y * x**i for x, y in POINTS) for i in range(n)]
    coefficients = _solve(matrix, rhs)
    error = sum((y - sum(c * x**i for i, c in enumerate(coefficients))) ** 2 for x, y in POINTS)
    return {"degree": degree, "error": round(error, 4)}


def choose(fits: list[str], **results: dict[str, Any]) -> dict[str, Any]:
    """The lowest degree whose error is within 0.5 of the best one's, with every error."""
    best = min(results[name]["error"] for name in fits)
    chosen = next(results[name] for name in fits if results[name]["error"] <= best + 0.5)
    return {"degree": chosen["degree"], "errors": [results[name]["error"] for name in fits]}


def _solve(matrix: list[list[float]], rhs: list[float]) -> list[float]:
    """Solve ``matrix @ x = rhs`` by Gaussian elimination with partial pivoting."""
    n = len(rhs)
    rows = [[*row, b] for row, b in zip(matrix, rhs, strict=True)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(rows[r][col]))
        rows[col], rows[pivot] = rows[pivot], rows[col]
        for r in range(col + 1, n):
            factor = rows[r][col] / rows[col][col]
            rows[r] = [a - factor * b for a, b in zip(rows[r], rows[col], strict=True)]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        x[r] = (rows[r][n] - sum(rows[r][c] * x[c] for c in range(r + 1, n))) / rows[r][r]
    return x
