"""The documentation builds, and what it shows works.

* ``docs/build.py --strict`` passes: pages, links, anchors, generated pages,
  code blocks, and the example package shown in ``docs/plugins.md``.
* The example plugin of ``docs/plugins.md`` (``docs/example_plugin/``),
  installed as a real distribution with :func:`spindle.testing.make_distribution`
  (no pip, no network), is discovered through its entry points and runs
  through a workflow on ``memory://`` — from Python and from the CLI — and
  its own tests pass.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from spindle import Engine, Registry, load_workflow
from spindle.testing import installed
from tests.packages import site_of

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
EXAMPLE = DOCS / "example_plugin"


def _load_build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("spindle_docs_build", DOCS / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def _fenced(page: Path, info: str, after: str) -> str:
    """The first ``info`` code block of ``page`` that follows the text ``after``."""
    text = page.read_text(encoding="utf-8")
    start = text.index(after)
    match = re.compile(rf"^```{info}\n(.*?)^```", re.S | re.M).search(text, start)
    assert match is not None, f"no {info} block after {after!r} in {page}"
    return match.group(1)


@pytest.fixture
def example_site(tmp_path: Path) -> Path:
    """docs/example_plugin written as an installed distribution (a site-packages dir)."""
    return site_of(EXAMPLE, tmp_path / "site")


def _run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


# --- the docs build ---------------------------------------------------------------


def test_docs_build_strict_passes():
    """docs/build.py --strict finds no problem in the checked-in docs."""
    proc = _run([str(DOCS / "build.py"), "--strict"], ROOT)

    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_cli_reference_is_up_to_date():
    """docs/cli.md is what docs/gen_cli.py generates from the current commands."""
    proc = _run([str(DOCS / "gen_cli.py"), "--check"], ROOT)

    assert proc.returncode == 0, proc.stderr


def test_readme_opens_with_the_two_quickstart_commands():
    """The README's first code block is the install-and-run and install-and-test pair."""
    first = re.search(r"```\w*\n(.*?)```", (ROOT / "README.md").read_text(), re.S)

    assert first is not None
    assert first.group(1).splitlines() == [
        "pip install -e . && spindle run examples/hello.yaml",
        "pip install -e '.[test]' && pytest",
    ]
    assert (ROOT / "examples" / "hello.yaml").is_file()


def test_build_reports_a_broken_link_and_a_missing_anchor(tmp_path):
    """The link checker names the file, the line and the target that does not resolve."""
    build = _load_build()
    (tmp_path / "other.md").write_text("# Other page\n\n## Real heading\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n"
        "[ok](other.md#real-heading) [gone](missing.md)\n"
        "[bad anchor](other.md#no-such-heading)\n"
        "`[in code](missing.md)`\n"
        "```text\n[in a block](missing.md)\n```\n"
    )
    checker = build.Checker()

    checker.check_links(page)

    assert len(checker.errors) == 2
    assert "page.md:3: link to 'missing.md'" in checker.errors[0]
    assert "page.md:4: link to 'other.md#no-such-heading'" in checker.errors[1]


def test_build_slugs_follow_github():
    """Heading anchors are computed the way GitHub computes them."""
    build = _load_build()

    assert build.slugify("Load failures and duplicates") == "load-failures-and-duplicates"
    assert build.slugify("`spindle_on_finish`") == "spindle_on_finish"
    assert build.slugify("Hooks & CLI: `spindle run`") == "hooks--cli-spindle-run"


def test_build_reports_a_python_block_that_does_not_compile(tmp_path):
    """A python block with a syntax error is reported with the block's line."""
    build = _load_build()
    page = tmp_path / "page.md"
    page.write_text("# Page\n\n```python\ndef broken(:\n```\n")
    checker = build.Checker()

    checker.check_blocks(page)

    assert len(checker.errors) == 1
    assert "page.md:3: python block does not parse" in checker.errors[0]


# --- the example plugin -----------------------------------------------------------


def test_example_plugin_kinds_are_discovered(example_site):
    """Installed, the example's entry points make 'upper' and 'slack' kinds of spindle-upper."""
    with installed(example_site):
        registry = Registry()
        kinds = {(k.group, k.kind): k for k in registry.kinds()}
        runtime = registry.get("runtime", "upper")
        observer = registry.get("observer", "slack")

    assert kinds[("runtime", "upper")].distribution == "spindle-upper"
    assert kinds[("observer", "slack")].version == "0.1.0"
    assert runtime.kind_name == "upper"
    assert runtime.kind_description == "Upper-cases text."
    assert observer.kind_name == "slack"


def test_example_plugin_runs_through_a_workflow(example_site, tmp_path, monkeypatch):
    """The workflow and spindle.toml shown in docs/plugins.md run on memory:// and notify Slack."""
    plugins_md = DOCS / "plugins.md"
    project = tmp_path / "project"
    project.mkdir()
    (project / "flow.yaml").write_text(_fenced(plugins_md, "yaml", "Use it from a workflow file"))
    (project / "spindle.toml").write_text(_fenced(plugins_md, "toml", "and bind the observer"))
    posted: list[dict[str, object]] = []

    async def main():
        engine = Engine.from_config(
            project, overrides={"store": "memory://", "runs_dir": str(tmp_path / "runs")}
        )
        async with engine:
            workflow = load_workflow(project / "flow.yaml", registry=engine.registry)
            first = await engine.run(workflow)
            second = await engine.run(workflow, {"who": "ada"})
            return first, second

    with installed(example_site):
        import spindle_upper

        monkeypatch.setattr(spindle_upper, "post_json", lambda url, body: posted.append(body))
        first, second = asyncio.run(main())

    assert (first.status, first.output) == ("completed", "WORLD!")
    assert (second.status, second.output) == ("completed", "ADA!")
    # The toml block selects run_failed and run_waiting only: nothing to post.
    assert posted == []


def test_example_plugin_runs_from_the_cli(example_site, tmp_path):
    """With the distribution on PYTHONPATH, the spindle command lists and runs the kind."""
    (tmp_path / "flow.yaml").write_text(
        _fenced(DOCS / "plugins.md", "yaml", "Use it from a workflow file")
    )
    env = {"PYTHONPATH": str(example_site)}

    listing = _run(["-m", "spindle", "plugins", "--json", "--group", "runtime"], tmp_path, **env)
    run = _run(
        ["-m", "spindle", "run", "flow.yaml", "--store", "memory://", "--json", "-i", "who=ada"],
        tmp_path,
        **env,
    )

    kinds = {p["kind"]: p for p in json.loads(listing.stdout)["plugins"]}
    assert kinds["upper"]["distribution"] == "spindle-upper"
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["output"] == "ADA!"


def test_example_plugin_own_tests_pass(tmp_path):
    """docs/example_plugin/tests pass, as the plugin's author would run them."""
    # Run from a scratch directory so nothing (plugin caches) is written into docs/.
    args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(EXAMPLE)]
    args += ["-c", str(EXAMPLE / "pyproject.toml"), str(EXAMPLE / "tests")]
    proc = _run(args, tmp_path, PYTHONPATH=str(EXAMPLE / "src"))

    assert proc.returncode == 0, proc.stdout + proc.stderr
