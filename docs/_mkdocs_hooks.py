"""MkDocs hooks for the docs site (``hooks:`` in ``mkdocs.yml``).

Not spindle's engine hooks (those are ``docs/hooks.md``): these run while
``mkdocs build`` turns ``docs/`` into the site.

* **The installed-plugins page is generated at build time.**
  ``docs/plugins-reference.md`` in the repository holds spindle's own kinds (so
  it reads on GitHub and ``docs/build.py`` can check it); the site shows
  ``spindle plugins --markdown`` run at build time instead, so it lists every
  kind installed where the site is built and never drifts from the code. A
  kind that cannot be loaded is a build warning (an error under ``--strict``).
* **Links to repository files work on the site.** The pages are also read on
  GitHub, where ``../examples/control_flow/when.yaml`` is a file of the
  repository. The site has no such file, so each file outside ``docs/`` a page
  (or a file it includes) links to is published beside the pages under the
  same path, and the link is pointed at it; ``../CHANGELOG.md`` and
  ``../README.md`` are pointed at the pages that show them.
"""

from __future__ import annotations

import logging
import posixpath
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

log = logging.getLogger("mkdocs.hooks.spindle")

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
PLUGINS_PAGE = "plugins-reference.md"
#: Repository Markdown files a page may link to, and the site page showing each.
REPO_PAGES = {
    "CHANGELOG.md": "changelog.md",
    "README.md": "getting-started.md",
    "examples/spindle-http/README.md": "example-package.md",
}

# A Markdown inline link's target: ``](target)`` or ``](target#anchor)``.
_LINK = re.compile(r"\]\((?P<target>[^)\s#]+)(?P<anchor>#[^)\s]*)?\)")
_INCLUDE = re.compile(r"""\{%\s*include-markdown\s+["']([^"']+)["']""")
# A fenced code block, as one group (so ``split`` keeps it): links in code are text.
_CODE = re.compile(r"(^ {0,3}(?:`{3,}|~{3,})[^\n]*\n.*?^ {0,3}(?:`{3,}|~{3,})[ \t]*$)", re.S | re.M)


def _repo_path(source: Path, target: str) -> str | None:
    """The repository path ``target`` (linked from ``source``) names when it is outside docs/."""
    if "://" in target or target.startswith(("mailto:", "/")):
        return None
    dest = (source.parent / target).resolve()
    if dest.is_relative_to(DOCS) or not dest.is_relative_to(ROOT) or not dest.is_file():
        return None
    return dest.relative_to(ROOT).as_posix()


def _repo_links(text: str, source: Path) -> set[str]:
    """Repository files outside docs/ the prose of ``text`` (the page ``source``) links to."""
    prose = _CODE.sub("", text)
    return {path for m in _LINK.finditer(prose) if (path := _repo_path(source, m["target"]))}


def _linked_repo_files(source: Path) -> set[str]:
    """Repository files outside docs/ that ``source`` and the files it includes link to."""
    text = source.read_text(encoding="utf-8")
    found = _repo_links(text, source)
    for include in _INCLUDE.findall(_CODE.sub("", text)):
        included = (source.parent / include).resolve()
        if included.is_file():
            found |= _linked_repo_files(included)
    return found


def _plugins_markdown() -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "spindle", "plugins", "--markdown"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if proc.returncode != 0:
        raise PluginError(f"`spindle plugins --markdown` failed: {proc.stderr.strip()}")
    for line in proc.stdout.splitlines():
        if line.startswith(("**Cannot be loaded:**", "**Denied**")):
            log.warning("%s: an installed plugin kind %s", PLUGINS_PAGE, line)
    return proc.stdout


def on_files(files: Files, config: Any) -> Files:
    """Generate the installed-plugins page; publish the repository files pages link to."""
    old = files.get_file_from_path(PLUGINS_PAGE)
    if old is not None:
        files.remove(old)
    files.append(File.generated(config, PLUGINS_PAGE, content=_plugins_markdown()))
    linked: set[str] = set()
    for page in files.documentation_pages():
        if page.abs_src_path:
            linked |= _linked_repo_files(Path(page.abs_src_path))
    for path in sorted(linked):
        if path in REPO_PAGES:
            continue
        if path.endswith(".md"):  # it would be rendered as a page, outside the nav
            log.warning("a page links to ../%s: add it to REPO_PAGES in %s", path, __file__)
            continue
        if files.get_file_from_path(path) is not None:
            raise PluginError(f"docs/{path} would hide the repository's {path}; rename it")
        files.append(File.generated(config, path, abs_src_path=str(ROOT / path)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Point links to repository files at their published copies (or their pages)."""
    source = Path(config["docs_dir"]) / page.file.src_uri
    page_dir = posixpath.dirname(page.file.src_uri)

    def repoint(m: re.Match[str]) -> str:
        path = _repo_path(source, m["target"])
        if path is None:
            return m.group(0)
        uri = REPO_PAGES.get(path, path)
        if files.get_file_from_path(uri) is None:
            return m.group(0)  # MkDocs reports the broken link
        return f"]({posixpath.relpath(uri, page_dir or '.')}{m['anchor'] or ''})"

    pieces = _CODE.split(markdown)  # odd pieces are code blocks, left as they are
    return "".join(p if i % 2 else _LINK.sub(repoint, p) for i, p in enumerate(pieces))
