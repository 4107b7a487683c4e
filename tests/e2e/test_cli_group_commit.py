"""Group commit through the CLI: the ``group_commit`` store option as a user writes it."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import Spindle

WORKFLOW = """\
name: chain
nodes:
  a:
    runtime: {kind: python_code, code: "result = 1"}
  b:
    runtime: {kind: python_code, code: "result = 2"}
    after: [a]
"""


def test_an_unknown_group_commit_value_is_one_error_line(spindle: Spindle, tmp_path: Path) -> None:
    """A store URL with group_commit=yes exits 2 with one error line naming the three values."""
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    done = spindle("run", "wf.yaml", "--store", "sqlite:///runs.db?group_commit=yes")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: store sqlite:///runs.db?group_commit=yes: unknown group_commit 'yes'; use "
        "'auto' (on at durability=full, off at normal), 'on' (one writer thread batches "
        "concurrent commits into one transaction) or 'off' (each commit is its own "
        "transaction, written in the caller)"
    ]


def test_a_run_with_group_commit_on_completes_and_its_ledger_verifies(
    spindle: Spindle, tmp_path: Path
) -> None:
    """A run on a store with group_commit=on completes and its ledger verifies."""
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    store = "sqlite:///runs.db?durability=full&group_commit=on"
    done = spindle("run", "wf.yaml", "--store", store, "--json")
    assert done.returncode == 0, done.stderr
    assert '"completed"' in done.stdout
    runs = spindle("runs", "--store", store, "--json")
    run_id = runs.stdout.split('"run_id": "')[1].split('"')[0]
    verified = spindle("ledger", "verify", run_id, "--store", store)
    assert verified.returncode == 0, verified.stderr
