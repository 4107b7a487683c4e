"""The example plugin package ``examples/spindle-http``, installed and used end to end.

The package is written out as an installed distribution with
:func:`spindle.testing.make_distribution` (its real entry points and
modules; no pip, no network), put on ``PYTHONPATH`` for the ``spindle``
command, and ``examples/spindle-http/workflow.yaml`` — which uses every kind
of the package — runs through ``spindle run`` against the package's own
local server (``serve.py``). ``.ci/example_plugin.sh`` does the same with a
real wheel in a fresh virtualenv.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from spindle import Registry
from spindle.testing import installed
from tests.packages import site_of

PACKAGE = Path(__file__).resolve().parents[2] / "examples" / "spindle-http"
KINDS = {
    ("runtime", "http"),
    ("observer", "webhook"),
    ("effect", "http_poll"),
    ("middleware", "rate_limit"),
}


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """examples/spindle-http written as an installed distribution (a site-packages dir)."""
    return site_of(PACKAGE, tmp_path / "site")


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[str]:
    """The package's serve.py on a free port; yields its base URL."""
    port_file = tmp_path / "port"
    proc = subprocess.Popen(
        [sys.executable, str(PACKAGE / "serve.py"), "--port", "0", "--port-file", str(port_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        # serve.py writes the port file once its socket listens, then says so.
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on" in line, line
        yield f"http://127.0.0.1:{port_file.read_text()}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()


def test_the_kinds_are_discovered_from_the_distribution(site):
    """Installed, the package's three entry points are found and load."""
    with installed(site):
        registry = Registry()
        for group, kind in KINDS:
            assert registry.get(group, kind).kind_name == kind


def test_spindle_schema_describes_the_kinds_options(site, spindle):
    """spindle schema includes the package's kinds, options and docstring descriptions."""
    proc = spindle("schema", env={"PYTHONPATH": str(site)})

    defs = json.loads(proc.stdout)["$defs"]
    http = defs["runtime.http"]["properties"]
    assert http["method"]["enum"][:3] == ["GET", "HEAD", "POST"]
    assert http["retries"] == {
        "type": "integer",
        "description": "attempts after the first on a failed connection or a retryable status.",
        "default": 3,
    }
    assert "max_polls" in defs["effect.http_poll"]["properties"]


def test_the_workflow_uses_every_kind_through_the_cli(site, shop, spindle, tmp_path):
    """spindle run workflow.yaml completes: the http runtime fetched and ordered (the 503 is
    retried), http_poll waited for shipping, the webhook observer posted the events and the
    rate_limit middleware spaced the calls out; the secret is not in the -vv log."""
    (tmp_path / "workflow.yaml").write_text((PACKAGE / "workflow.yaml").read_text())
    (tmp_path / "spindle.toml").write_text(
        (PACKAGE / "spindle.toml").read_text().replace("http://127.0.0.1:8765", shop)
    )
    env = {"PYTHONPATH": str(site)}

    listing = spindle("plugins", "--json", env=env)
    proc = spindle(
        "-vv",
        "run",
        "workflow.yaml",
        "--json",
        "--input",
        "token=demo-token",
        "--input",
        f"shop={shop}",
        env=env,
    )
    code, doc = proc.returncode, json.loads(proc.stdout)
    with urllib.request.urlopen(shop + "/_stats") as response:
        stats = json.load(response)

    found = {
        (p["group"], p["kind"]): p["distribution"] for p in json.loads(listing.stdout)["plugins"]
    }
    assert {found[k] for k in KINDS} == {"spindle-http"}
    assert (code, doc["status"]) == (0, "completed"), doc
    assert doc["output"]["order"] == "ord-1"
    assert doc["output"]["item"] == {"name": "widget", "price": 3.5}
    assert doc["output"]["shipped"]["body"]["state"] == "shipped"
    assert doc["output"]["shipped"]["polls"] == 3
    assert stats["requests"]["POST /orders"] == 2  # the first answered 503
    assert stats["orders"]["ord-1"] == {"item": "widget", "price": 3.5, "quantity": 2}
    assert stats["events"][0] == "run_started"
    assert stats["events"][-1] == "run_completed"
    assert "demo-token" not in json.dumps(doc)
    limited = [
        line
        for line in proc.stderr.splitlines()
        if line.startswith("spindle.http.rate_limit: INFO: 127.0.0.1: node ")
    ]
    assert len(limited) == 2 + 3  # catalog, order, three polls
    assert "demo-token" not in proc.stderr
    assert '"Authorization": "***"' in proc.stderr


def test_a_wrong_token_fails_the_run_with_the_shops_answer(site, shop, spindle, tmp_path):
    """The shop answers 401 to a bad token: the run fails (exit 1) naming node, status, body;
    the token itself is shown as ***."""
    (tmp_path / "workflow.yaml").write_text((PACKAGE / "workflow.yaml").read_text())
    env = {"PYTHONPATH": str(site)}

    code, doc = spindle.json(
        "run", "workflow.yaml", "--input", "token=wrong-token", "--input", f"shop={shop}", env=env
    )

    assert (code, doc["status"]) == (1, "failed")
    assert f"node 'order': POST {shop}/orders answered 401, expected status 201" in doc["error"]
    assert "wrong-token" not in json.dumps(doc)


def test_the_package_own_tests_pass_installed(site, tmp_path):
    """examples/spindle-http/tests pass against the installed distribution (not src/)."""
    args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(PACKAGE)]
    args += ["-c", str(PACKAGE / "pyproject.toml"), str(PACKAGE / "tests")]
    proc = subprocess.run(
        [sys.executable, *args],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(site), "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " passed" in proc.stdout
