"""Check the documentation: pages, links, anchors, generated pages, code blocks.

The docs are plain Markdown, read on GitHub or in an editor; "building" them
means proving they are consistent:

* every page listed in ``docs/index.md`` exists, and (``--strict``) every
  ``docs/*.md`` page is listed there;
* every relative link in ``docs/*.md`` and ``README.md`` points at a file
  that exists, and every ``#anchor`` at a heading of the target page (GitHub's
  heading-slug rules);
* generated pages are up to date (``gen_cli.py --check``, and
  ``gen_reference.py --check``);
* code blocks tagged ``python`` compile, ``toml`` and ``json`` blocks parse,
  ``yaml`` blocks load;
* a code block announced with ``<!-- file: example_plugin/PATH -->`` is
  exactly that file, so the plugin guide shows the package the tests run.

Usage::

    python docs/build.py            # report problems; stale generated pages only warn
    python docs/build.py --strict   # every problem fails (the tox ``docs`` env, CI)
    python docs/build.py --sync     # first copy announced files into their blocks

Exits 1 listing every problem, 0 when there is none.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
INDEX = DOCS / "index.md"
#: Generator scripts and the page each one owns; each supports ``--check``.
GENERATORS = {"gen_cli.py": "cli.md", "gen_reference.py": "workflow-reference.md"}

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_INLINE_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)"
)
_REF_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$")
_CODE_SPAN = re.compile(r"(`+)(?:.+?)\1")
_FILE_MARK = re.compile(r"<!--\s*file:\s*(\S+)\s*-->")
_EXTERNAL = ("http://", "https://", "mailto:", "ftp://")


@dataclass
class Block:
    """A fenced code block."""

    info: str
    text: str
    line: int  # line of the opening fence, 1-based
    marker: str | None  # the ``<!-- file: ... -->`` just before it, if any


@dataclass
class Page:
    """A Markdown file split into prose lines (code removed) and code blocks."""

    path: Path
    prose: list[tuple[int, str]]
    blocks: list[Block]

    @classmethod
    def read(cls, path: Path) -> Page:
        """Split ``path`` into prose lines and fenced code blocks."""
        prose: list[tuple[int, str]] = []
        blocks: list[Block] = []
        lines = path.read_text(encoding="utf-8").splitlines()
        i = 0
        marker: str | None = None
        while i < len(lines):
            m = _FENCE.match(lines[i])
            if m is None:
                mark = _FILE_MARK.search(lines[i])
                if mark:
                    marker = mark.group(1)
                elif lines[i].strip():
                    marker = None
                prose.append((i + 1, lines[i]))
                i += 1
                continue
            fence, start = m.group("fence"), i
            body: list[str] = []
            i += 1
            while i < len(lines) and not re.match(
                rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$", lines[i]
            ):
                body.append(lines[i])
                i += 1
            i += 1  # the closing fence (or the end of the file)
            info = m.group("info").strip().split()
            text = "\n".join(body) + ("\n" if body else "")
            blocks.append(Block(info[0].lower() if info else "", text, start + 1, marker))
            marker = None
        return cls(path, prose, blocks)

    def anchors(self) -> set[str]:
        """The ``#anchors`` GitHub generates for this page's headings."""
        seen: dict[str, int] = {}
        out: set[str] = set()
        for _, line in self.prose:
            m = _HEADING.match(line)
            if m is None:
                continue
            slug = slugify(m.group(2))
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            out.add(slug if n == 0 else f"{slug}-{n}")
        # Explicit HTML anchors (<a id="x"></a>) count too.
        for _, line in self.prose:
            out.update(re.findall(r"<a\s+(?:id|name)=\"([^\"]+)\"", line))
        return out

    def links(self) -> Iterator[tuple[int, str]]:
        """``(line, target)`` for every inline link and reference definition in prose."""
        for number, line in self.prose:
            ref = _REF_DEF.match(line)
            if ref:
                yield number, ref.group(1)
                continue
            for m in _INLINE_LINK.finditer(_CODE_SPAN.sub("", line)):
                yield number, m.group(1)


def slugify(heading: str) -> str:
    """GitHub's anchor for a heading text."""
    text = re.sub(r"<[^>]+>", "", heading)  # inline HTML
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links keep their text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


class Checker:
    """Collects problems; ``errors`` always fail, ``warnings`` fail with ``--strict``."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self._pages: dict[Path, Page] = {}

    def page(self, path: Path) -> Page:
        """Read (once) and return the page at ``path``."""
        path = path.resolve()
        if path not in self._pages:
            self._pages[path] = Page.read(path)
        return self._pages[path]

    def error(self, where: str, message: str) -> None:
        """Record a problem that always fails the build."""
        self.errors.append(f"{where}: {message}")

    def warn(self, where: str, message: str) -> None:
        """Record a problem that fails the build with ``--strict``."""
        self.warnings.append(f"{where}: {message}")

    # --- checks ----------------------------------------------------------------

    def check_index(self) -> None:
        """Every page named in the index exists; every docs page is named there."""
        if not INDEX.is_file():
            self.error(_rel(INDEX), "the docs index is missing")
            return
        listed: set[Path] = set()
        for _, target in self.page(INDEX).links():
            path = target.split("#", 1)[0]
            if not path or path.startswith(_EXTERNAL):
                continue
            # A listed page that does not exist is reported by check_links.
            listed.add((INDEX.parent / path).resolve())
        for md in sorted(DOCS.glob("*.md")):
            if md.resolve() != INDEX.resolve() and md.resolve() not in listed:
                self.warn(_rel(md), "is not listed in docs/index.md")

    def check_links(self, path: Path) -> None:
        """Every relative link of ``path`` resolves, anchors included."""
        page = self.page(path)
        for number, target in page.links():
            if target.startswith(_EXTERNAL):
                continue
            where = f"{_rel(path)}:{number}"
            file_part, _, anchor = target.partition("#")
            dest = (path.parent / file_part).resolve() if file_part else path.resolve()
            if not dest.exists():
                self.error(where, f"link to '{target}': {_rel(dest)} does not exist")
                continue
            if anchor:
                if dest.suffix != ".md":
                    self.error(where, f"link to '{target}': anchors only resolve in .md pages")
                elif anchor not in self.page(dest).anchors():
                    self.error(
                        where, f"link to '{target}': {_rel(dest)} has no heading '#{anchor}'"
                    )

    def check_blocks(self, path: Path) -> None:
        """Code blocks parse in their language; announced files match exactly."""
        for block in self.page(path).blocks:
            where = f"{_rel(path)}:{block.line}"
            if block.marker is not None:
                source = (DOCS / block.marker).resolve()
                if not source.is_file():
                    self.error(where, f"the block shows '{block.marker}', which does not exist")
                elif source.read_text(encoding="utf-8") != block.text:
                    self.error(
                        where,
                        f"the block differs from docs/{block.marker}; copy the file into the "
                        f"page again",
                    )
            problem = _parse_problem(block)
            if problem:
                self.error(where, f"{block.info} block does not parse: {problem}")

    def check_generated(self) -> None:
        """Each generator's ``--check`` passes (a stale page is a warning)."""
        for script, page in GENERATORS.items():
            generator = DOCS / script
            if not generator.is_file():
                self.warn(_rel(generator), f"is missing, so docs/{page} cannot be checked")
                continue
            proc = subprocess.run(
                [sys.executable, str(generator), "--check"],
                capture_output=True,
                text=True,
                cwd=ROOT,
                check=False,
            )
            if proc.returncode != 0:
                detail = (proc.stderr or proc.stdout).strip().splitlines()
                self.warn(
                    f"docs/{page}",
                    f"'{script} --check' failed: {detail[-1] if detail else proc.returncode}",
                )


def _parse_problem(block: Block) -> str | None:
    """Why ``block`` does not parse in its tagged language, or None."""
    try:
        if block.info in ("python", "py"):
            compile(block.text, "<block>", "exec")
        elif block.info == "toml":
            tomllib.loads(block.text)
        elif block.info == "json":
            json.loads(block.text)
        elif block.info in ("yaml", "yml"):
            import yaml  # a spindle dependency; imported only when a page has YAML

            yaml.safe_load(block.text)
    except SyntaxError as exc:
        return f"line {exc.lineno}: {exc.msg}"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


_MARKED_BLOCK = re.compile(
    r"(<!--\s*file:\s*(?P<file>\S+)\s*-->\n(?P<fence>`{3,})[^\n]*\n)(?P<body>.*?)(?P=fence)$",
    re.S | re.M,
)


def sync_files() -> list[Path]:
    """Copy each announced file into its ``<!-- file: ... -->`` block; return changed pages."""
    changed = []
    for page in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        if not page.is_file():
            continue
        text = page.read_text(encoding="utf-8")

        def fill(m: re.Match[str]) -> str:
            source = DOCS / m.group("file")
            if not source.is_file():
                return m.group(0)  # reported by check_blocks
            body = source.read_text(encoding="utf-8")
            return m.group(1) + body + ("" if body.endswith("\n") else "\n") + m.group("fence")

        new = _MARKED_BLOCK.sub(fill, text)
        if new != text:
            page.write_text(new, encoding="utf-8")
            changed.append(page)
    return changed


def build(strict: bool) -> tuple[list[str], list[str]]:
    """Run every check; return ``(errors, warnings)``."""
    checker = Checker()
    checker.check_index()
    pages = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
    for path in pages:
        if path.is_file():
            checker.check_links(path)
            checker.check_blocks(path)
    checker.check_generated()
    if strict:
        return checker.errors + checker.warnings, []
    return checker.errors, checker.warnings


def main(argv: list[str] | None = None) -> int:
    """Check the docs and print every problem; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--strict", action="store_true", help="fail on warnings too")
    parser.add_argument(
        "--sync", action="store_true", help="copy announced files into their blocks first"
    )
    args = parser.parse_args(argv)
    if args.sync:
        for page in sync_files():
            print(f"synced {_rel(page)}", file=sys.stderr)
    errors, warnings = build(args.strict)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    if errors:
        print(f"docs: {len(errors)} problem(s)", file=sys.stderr)
        return 1
    print("docs: ok" + (f" ({len(warnings)} warning(s))" if warnings else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
