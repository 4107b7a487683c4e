"""The docs site: ``mkdocs build --strict`` passes and shows what the repository holds.

* The site builds with no warning (``mkdocs.yml``: Material, mkdocstrings for
  the API page, include-markdown for the changelog, ``docs/_mkdocs_hooks.py``).
* Its installed-plugins page is ``spindle plugins --markdown`` at build time;
  links from pages to repository files (examples, the changelog) lead to
  files and pages of the site.
* The pages that copy something keep it in step: the getting-started page
  shows the README's two commands, the API page every public name.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import spindle

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _first_block(page: Path) -> list[str]:
    match = re.search(r"```\w*\n(.*?)```", page.read_text(encoding="utf-8"), re.S)
    assert match is not None, f"{page} has no code block"
    return match.group(1).splitlines()


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"spindle_docs_{name}", DOCS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The site built once with ``mkdocs build --strict`` into a temporary directory."""
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return out, proc


def test_mkdocs_build_strict_passes_without_warnings(site):
    """`mkdocs build --strict` exits 0 and logs no warning."""
    _, proc = site

    assert proc.returncode == 0, proc.stderr
    assert "WARNING" not in proc.stderr, proc.stderr


def test_site_plugins_page_is_spindle_plugins_markdown(site):
    """The installed-plugins page lists the built-in kinds with their options."""
    out, proc = site
    assert proc.returncode == 0, proc.stderr

    page = (out / "plugins-reference" / "index.html").read_text(encoding="utf-8")

    assert "Installed plugins" in page
    assert "busy_timeout" in page  # the sqlite store's options
    assert "Hook modules" in page


def test_site_links_to_repository_files_lead_to_published_copies(site):
    """control-flow's links to ../examples/ lead to files the site holds."""
    out, proc = site
    assert proc.returncode == 0, proc.stderr

    page = (out / "control-flow" / "index.html").read_text(encoding="utf-8")
    links = set(re.findall(r'href="\.\./(examples/[^"#]+)"', page))

    assert "examples/control_flow/when.yaml" in links
    for link in links:
        assert (out / link).read_bytes() == (ROOT / link).read_bytes()


def test_site_changelog_page_is_the_changelog(site):
    """The changelog page is CHANGELOG.md itself, included at build time."""
    out, proc = site
    assert proc.returncode == 0, proc.stderr

    page = (out / "changelog" / "index.html").read_text(encoding="utf-8")

    assert "Keep a Changelog" in page
    assert "Docs site" in page


def test_site_api_page_renders_the_docstrings(site):
    """The API page has Engine's methods and spindle.testing's helpers."""
    out, proc = site
    assert proc.returncode == 0, proc.stderr

    page = (out / "api" / "index.html").read_text(encoding="utf-8")

    assert 'id="spindle.Engine.resume"' in page
    assert 'id="spindle.testing.make_distribution"' in page


def test_getting_started_shows_the_readmes_two_commands():
    """docs/getting-started.md opens with the README's first code block, line for line."""
    assert _first_block(DOCS / "getting-started.md") == _first_block(ROOT / "README.md")


def test_api_page_documents_every_public_name():
    """docs/api.md has a ``::: spindle.NAME`` block for every name of spindle.__all__."""
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^::: spindle\.(\w+)$", text, re.M))

    missing = sorted(set(spindle.__all__) - {"__version__"} - documented)

    assert not missing, f"docs/api.md does not document: {', '.join(missing)}"
    assert "testing" in documented


def test_plugins_reference_is_up_to_date():
    """docs/plugins-reference.md is what gen_reference.py writes from spindle plugins --markdown."""
    proc = subprocess.run(
        [sys.executable, str(DOCS / "gen_reference.py"), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    assert proc.returncode == 0, proc.stderr


def test_hook_finds_repository_files_outside_docs_only():
    """A link leaving docs/ names a repository file; one inside docs/ or missing does not."""
    hooks = _load("_mkdocs_hooks")
    page = DOCS / "control-flow.md"

    assert hooks._repo_path(page, "../examples/hello.yaml") == "examples/hello.yaml"
    assert hooks._repo_path(page, "tutorial.md") is None
    assert hooks._repo_path(page, "../examples/no-such-file.yaml") is None
    assert hooks._repo_path(page, "https://example.org/x.yaml") is None


def test_hook_ignores_links_inside_code_blocks():
    """A link shown in a fenced code block is text, not a repository file to publish."""
    hooks = _load("_mkdocs_hooks")
    page = DOCS / "control-flow.md"

    assert hooks._repo_links("See [x](../examples/hello.yaml).\n", page) == {"examples/hello.yaml"}
    assert hooks._repo_links("```md\n[x](../examples/hello.yaml)\n```\n", page) == set()


ROLES_MODULE = """
from pathlib import Path


class Store:
    def due_runs(self): ...


class Engine:
    \"\"\"Drives runs on a :class:`Store`; see :meth:`drive`, :class:`~pathlib.Path`.\"\"\"

    def drive(self): ...
"""


def test_sphinx_roles_become_optional_cross_references():
    """A role becomes an optional autoref to the path Python would resolve it to."""
    import griffe

    roles = _load("_griffe_roles")
    with griffe.temporary_visited_module(ROLES_MODULE, module_name="mod") as module:
        engine = module["Engine"]
        html = roles.cross_references(engine.docstring.value, engine)

    assert '<autoref identifier="mod.Store" optional><code>Store</code></autoref>' in html
    assert '<autoref identifier="mod.Engine.drive" optional><code>drive</code></autoref>' in html
    assert '<autoref identifier="pathlib.Path" optional><code>Path</code></autoref>' in html
    assert ":class:" not in html and ":meth:" not in html


def test_site_api_page_links_the_names_docstrings_mention(site):
    """A docstring's :class:`~spindle.Registry` is a link to Registry's entry on the page."""
    out, proc = site
    assert proc.returncode == 0, proc.stderr

    page = (out / "api" / "index.html").read_text(encoding="utf-8")

    assert 'href="#spindle.Registry"' in page
    assert ":class:" not in page and ":meth:" not in page
