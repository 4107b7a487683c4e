"""Entry-point discovery from metadata files, and its on-disk cache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from spindle.core.plugin import EntryPointInfo, _discovery, discover
from spindle.core.plugin._discovery import cache_file, scan_path
from spindle.testing import make_distribution


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh cache directory for this test; returns the cache file path."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("SPINDLE_CACHE_DIR", str(directory))
    return Path(cache_file())


@pytest.fixture
def scans(monkeypatch):
    """Record the sys.path entries discover() actually scans."""
    seen: list[str] = []
    real = _discovery.scan_entry

    def spy(entry, listing):
        seen.append(entry)
        return real(entry, listing)

    monkeypatch.setattr(_discovery, "scan_entry", spy)
    return seen


def one_plugin(site: Path, name: str = "demo-dist", version: str = "1.0", kind: str = "upper"):
    return make_distribution(
        site, name, version, entry_points={"spindle.runtime": {kind: "demo.mod:Upper"}}
    )


def test_discover_reads_real_distribution_metadata(tmp_path):
    """discover() returns the spindle entry points of a distribution with its name and version."""
    site = make_distribution(
        tmp_path / "site",
        "My.Plugin",
        "0.3.0",
        entry_points={
            "spindle.runtime": {"upper": "mypkg.mod:Upper"},
            "spindle.store": {"redis": "mypkg.store:RedisStore"},
            "console_scripts": {"mytool": "mypkg.cli:main"},
        },
    )

    found = discover([str(site)], use_cache=False)

    assert found == [
        EntryPointInfo("runtime", "upper", "mypkg.mod:Upper", "My.Plugin", "0.3.0", str(site)),
        EntryPointInfo("store", "redis", "mypkg.store:RedisStore", "My.Plugin", "0.3.0", str(site)),
    ]
    assert found[0].spec == "spindle.runtime:upper = mypkg.mod:Upper"


def test_discover_finds_installed_distribution_on_sys_path(installed_distribution):
    """With no paths given, discover() searches sys.path."""
    site = installed_distribution(
        "path-dist", "4.5", entry_points={"spindle.executor": {"far": "farpkg:Far"}}
    )

    found = [ep for ep in discover() if ep.distribution == "path-dist"]

    assert [(ep.group, ep.kind, ep.version, ep.location) for ep in found] == [
        ("executor", "far", "4.5", str(site))
    ]


def test_entry_points_file_syntax_is_tolerated(tmp_path):
    """Comments, blank lines, spacing, extras and other groups in entry_points.txt are handled."""
    site = tmp_path / "site"
    info = site / "odd_dist-2.0.dist-info"
    info.mkdir(parents=True)
    (info / "entry_points.txt").write_text(
        textwrap.dedent(
            """
            # a comment
            [console_scripts]
            odd = odd:main

            [ spindle.runtime ]
            ; another comment
              spaced   =   odd.mod:Spaced
            extras = odd.mod:Extra [fast, small]
            broken-line-without-equals
            """
        )
    )

    found = discover([str(site)], use_cache=False)

    assert [(e.kind, e.value, e.distribution, e.version) for e in found] == [
        ("spaced", "odd.mod:Spaced", "odd-dist", "2.0"),
        ("extras", "odd.mod:Extra", "odd-dist", "2.0"),
    ]


def test_egg_info_takes_name_and_version_from_pkg_info(tmp_path):
    """An unversioned *.egg-info directory gets its name and version from PKG-INFO."""
    info = tmp_path / "legacy.egg-info"
    info.mkdir()
    (info / "PKG-INFO").write_text("Metadata-Version: 1.0\nName: Legacy\nVersion: 0.9\n\nBody\n")
    (info / "entry_points.txt").write_text("[spindle.effect]\nold = legacy:Old\n")

    [ep] = discover([str(tmp_path)], use_cache=False)

    assert (ep.distribution, ep.version) == ("Legacy", "0.9")


def test_missing_and_file_entries_are_skipped(tmp_path):
    """sys.path entries that are missing or are files (zips) yield nothing."""
    a_file = tmp_path / "archive.zip"
    a_file.write_bytes(b"PK")

    assert scan_path([str(tmp_path / "missing"), str(a_file)]) == []


def test_first_copy_of_a_distribution_wins(tmp_path):
    """A distribution on two path entries is counted once, from the first entry."""
    first = one_plugin(tmp_path / "first", version="1.0")
    second = one_plugin(tmp_path / "second", version="2.0")

    found = discover([str(first), str(second)], use_cache=False)

    assert [(e.version, e.location) for e in found] == [("1.0", str(first))]


def test_discovery_agrees_with_importlib_metadata(tmp_path):
    """discover() finds exactly the spindle entry points that importlib.metadata sees."""
    from importlib.metadata import distributions

    site = tmp_path / "site"
    for i in range(3):
        make_distribution(
            site,
            f"Agree_Dist.{i}",
            f"1.{i}",
            entry_points={
                "spindle.runtime": {f"r{i}": f"agree{i}.mod:R"},
                "spindle.hooks": {f"h{i}": f"agree{i}.hooks"},
                "console_scripts": {f"agree{i}": f"agree{i}:main"},
            },
        )

    found = {(e.distribution, e.version, e.group, e.kind, e.value) for e in scan_path([str(site)])}

    expected = {
        (d.metadata["Name"], d.version, ep.group.removeprefix("spindle."), ep.name, ep.value)
        for d in distributions(path=[str(site)])
        for ep in d.entry_points
        if ep.group.startswith("spindle.")
    }
    assert found == expected and len(found) == 6


def test_core_metadata_version_wins_over_the_directory_name(tmp_path):
    """The version comes from METADATA (read by importlib.metadata), not the directory name."""
    info = tmp_path / "renamed-9.9.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: Renamed\nVersion: 1.2\n")
    (info / "entry_points.txt").write_text("[spindle.effect]\nr = renamed:R\n")

    [ep] = discover([str(tmp_path)], use_cache=False)

    assert (ep.distribution, ep.version) == ("Renamed", "1.2")


def test_undecodable_metadata_falls_back_to_the_directory_name(tmp_path):
    """A distribution whose METADATA is not UTF-8 is still found, named after its directory."""
    one_plugin(tmp_path, name="good-dist", kind="good")
    bad = one_plugin(tmp_path, name="bad-dist", version="2.0", kind="bad")
    (bad / "bad_dist-2.0.dist-info" / "METADATA").write_bytes(b"Name: bad\xff\nVersion: 9\n")

    found = discover([str(tmp_path)], use_cache=False)

    assert sorted((e.kind, e.distribution, e.version) for e in found) == [
        ("bad", "bad-dist", "2.0"),
        ("good", "good-dist", "1.0"),
    ]


def test_undecodable_entry_points_file_skips_only_that_distribution(tmp_path):
    """A distribution whose entry_points.txt is not UTF-8 is skipped; the others are found."""
    one_plugin(tmp_path, name="good-dist", kind="good")
    bad = one_plugin(tmp_path, name="bad-dist", kind="bad")
    (bad / "bad_dist-1.0.dist-info" / "entry_points.txt").write_bytes(
        b"[spindle.runtime]\nb\xff=x\n"
    )

    assert [e.kind for e in discover([str(tmp_path)], use_cache=False)] == ["good"]


WARM = """
import json, sys
from spindle.core.plugin._discovery import discover
found = discover([sys.argv[1]])
print(json.dumps([[e.kind for e in found], "importlib.metadata" in sys.modules]))
"""


def test_warm_cache_answers_without_importlib_metadata(tmp_path, cache):
    """An unchanged entry is answered from the cache; only a scan imports importlib.metadata."""
    site = str(one_plugin(tmp_path / "site"))
    env = {**os.environ, "SPINDLE_CACHE_DIR": str(cache.parent)}

    def run() -> list:
        proc = subprocess.run(
            [sys.executable, "-c", WARM, site],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return json.loads(proc.stdout)

    assert run() == [["upper"], True]
    assert run() == [["upper"], False]


def test_an_entry_without_entry_points_is_scanned_without_importlib_metadata(tmp_path, cache):
    """A new directory declaring nothing (a fresh working directory) imports no scanner."""
    plain = tmp_path / "project"
    plain.mkdir()
    info = plain / "no_entry_points-1.0.dist-info"  # metadata, but no entry_points.txt
    info.mkdir()
    (info / "METADATA").write_text("Name: no-entry-points\nVersion: 1.0\n", "utf-8")

    proc = subprocess.run(
        [sys.executable, "-c", WARM, str(plain)],
        env={**os.environ, "SPINDLE_CACHE_DIR": str(cache.parent)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert json.loads(proc.stdout) == [[], False]


# --- cache ----------------------------------------------------------------------------


def test_cache_hit_avoids_rescanning(tmp_path, cache, scans):
    """A second discover() with unchanged metadata reads the cache and scans nothing."""
    site = str(one_plugin(tmp_path / "site"))

    first = discover([site])
    assert scans == [site]
    assert cache.is_file()
    scans.clear()

    second = discover([site])

    assert scans == []
    assert second == first


def test_only_changed_entries_are_rescanned(tmp_path, cache, scans):
    """Changing one path entry rescans that entry only; the others come from the cache."""
    a = str(one_plugin(tmp_path / "a", name="dist-a", kind="a"))
    b = str(one_plugin(tmp_path / "b", name="dist-b", kind="b"))
    discover([a, b])
    scans.clear()

    one_plugin(Path(b), name="dist-c", kind="c")
    found = discover([a, b])

    assert scans == [b]
    assert sorted(e.kind for e in found) == ["a", "b", "c"]


def test_adding_a_distribution_invalidates_the_cache(tmp_path, cache):
    """A new *.dist-info directory is found on the next discover()."""
    site = tmp_path / "site"
    one_plugin(site, name="dist-a", kind="a")
    assert [e.kind for e in discover([str(site)])] == ["a"]

    one_plugin(site, name="dist-b", kind="b")

    assert sorted(e.kind for e in discover([str(site)])) == ["a", "b"]


def test_removing_a_distribution_invalidates_the_cache(tmp_path, cache):
    """A removed *.dist-info directory disappears on the next discover()."""
    site = tmp_path / "site"
    one_plugin(site, name="dist-a", kind="a")
    one_plugin(site, name="dist-b", kind="b")
    assert len(discover([str(site)])) == 2

    shutil.rmtree(site / "dist_b-1.0.dist-info")

    assert [e.kind for e in discover([str(site)])] == ["a"]


def test_rewriting_entry_points_txt_invalidates_the_cache(tmp_path, cache):
    """An entry_points.txt rewritten in place (new mtime) is read again."""
    site = one_plugin(tmp_path / "site", kind="old")
    ep_file = site / "demo_dist-1.0.dist-info" / "entry_points.txt"
    assert [e.kind for e in discover([str(site)])] == ["old"]

    ep_file.write_text("[spindle.runtime]\nnew = demo.mod:New\n")
    stat = ep_file.stat()
    os.utime(ep_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))

    assert [e.kind for e in discover([str(site)])] == ["new"]


def test_touching_entry_points_txt_rescans_the_entry(tmp_path, cache, scans):
    """Only touching entry_points.txt (mtime change) is enough to rescan its entry."""
    site = str(one_plugin(tmp_path / "site"))
    discover([site])
    scans.clear()

    ep_file = Path(site) / "demo_dist-1.0.dist-info" / "entry_points.txt"
    stat = ep_file.stat()
    os.utime(ep_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    discover([site])

    assert scans == [site]


def test_unwritable_cache_dir_still_discovers(tmp_path, monkeypatch, scans):
    """When the cache dir cannot be created, discover() scans and returns normally."""
    blocker = tmp_path / "a-regular-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("SPINDLE_CACHE_DIR", str(blocker / "cache"))
    site = str(one_plugin(tmp_path / "site"))

    first = discover([site])
    second = discover([site])

    assert [e.kind for e in first] == [e.kind for e in second] == ["upper"]
    assert scans == [site, site]


def test_corrupt_cache_is_ignored_and_rewritten(tmp_path, cache, scans):
    """A cache file that is not valid JSON is ignored, then replaced by a valid one."""
    site = str(one_plugin(tmp_path / "site"))
    cache.parent.mkdir(parents=True)
    cache.write_text('{"format": 3, "entries": {')

    found = discover([site])

    assert [e.kind for e in found] == ["upper"]
    assert json.loads(cache.read_text())["entries"]
    scans.clear()
    discover([site])
    assert scans == []


@pytest.mark.parametrize(
    "content",
    [
        "[]",
        '{"format": 1, "key": "x", "entry_points": []}',
        '{"format": 3, "python": "?", "executable": "?", "entries": {}}',
    ],
)
def test_foreign_cache_content_is_ignored(tmp_path, cache, content):
    """A cache of another format or interpreter is treated as empty."""
    site = str(one_plugin(tmp_path / "site"))
    cache.parent.mkdir(parents=True)
    cache.write_text(content)

    assert [e.kind for e in discover([site])] == ["upper"]


def test_malformed_cache_record_is_rescanned(tmp_path, cache, scans):
    """A cache record of the wrong shape for an entry is rescanned, not trusted."""
    site = str(one_plugin(tmp_path / "site"))
    discover([site])
    data = json.loads(cache.read_text())
    data["entries"][site]["eps"] = [["too", "short"]]
    cache.write_text(json.dumps(data))
    scans.clear()

    assert [e.kind for e in discover([site])] == ["upper"]
    assert scans == [site]


def test_no_cache_env_var_disables_the_cache(tmp_path, cache, monkeypatch):
    """SPINDLE_NO_PLUGIN_CACHE=1 scans every time and writes no cache file."""
    monkeypatch.setenv("SPINDLE_NO_PLUGIN_CACHE", "1")
    site = str(one_plugin(tmp_path / "site"))

    assert [e.kind for e in discover([site])] == ["upper"]
    assert not cache.exists()


def test_cache_dir_defaults_to_the_user_cache(monkeypatch, tmp_path):
    """Without SPINDLE_CACHE_DIR the cache lives under XDG_CACHE_HOME/spindle."""
    monkeypatch.delenv("SPINDLE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))

    assert _discovery.cache_dir() == str(tmp_path / "xdg" / "spindle")


WRITER = """
import json, os, sys, tempfile
from spindle.core.plugin._discovery import cache_file, discover
site, scratch, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
bad = 0
for i in range(rounds):
    # a new, unique path entry each round forces a cache write
    extra = tempfile.mkdtemp(dir=scratch)
    found = discover([site, extra])
    assert [e.kind for e in found] == ["upper"], found
    try:
        with open(cache_file()) as f:
            json.load(f)
    except FileNotFoundError:
        pass
    except ValueError:
        bad += 1
sys.exit(1 if bad else 0)
"""


def test_concurrent_writers_never_leave_a_partial_file(tmp_path, cache):
    """Processes rewriting the cache at once never leave (or read) a partial file."""
    site = str(one_plugin(tmp_path / "site"))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = {**os.environ, "SPINDLE_CACHE_DIR": str(cache.parent)}

    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, site, str(scratch), "25"],
            env=env,
            stderr=subprocess.PIPE,
        )
        for _ in range(6)
    ]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    for p in procs:
        p.stderr.close()

    assert all(code == 0 for code, _ in results), results
    data = json.loads(cache.read_text())
    assert data["format"] == _discovery._CACHE_FORMAT
    assert [p.name for p in cache.parent.iterdir()] == [cache.name]
