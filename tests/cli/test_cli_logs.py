"""`spindle logs` in-process: its wiring, reading log files, printing blocks
(``tests/e2e/test_cli_logs.py`` runs the command in a subprocess)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from spindle._cli import _logfiles
from spindle.cli import BUILTIN_COMMANDS, make_cli
from spindle.plugins.executors._process import log_paths

# --- wiring ------------------------------------------------------------------------------


def test_the_logs_command_lives_in_its_own_module():
    """`logs` is registered lazily as spindle._cli.logs:logs."""
    assert BUILTIN_COMMANDS["logs"][0] == "spindle._cli.logs:logs"


def test_follow_with_json_is_a_usage_error():
    """--follow with --json exits 2 before any store is opened."""
    result = CliRunner().invoke(make_cli(), ["logs", "r1", "--follow", "--json"])
    assert result.exit_code == 2
    assert "error: --follow and --json cannot be used together" in result.output


# --- log files -----------------------------------------------------------------------------


@pytest.mark.parametrize("node", ["build", "a b/c", "ünï", "x.y-z", ""])
def test_log_file_names_match_the_subprocess_executor(tmp_path, node):
    """`logs` looks for a node's log files where the subprocess executor writes them."""
    paths = log_paths(tmp_path, node)
    assert _logfiles.log_file(tmp_path, node, "stdout") == paths.stdout
    assert _logfiles.log_file(tmp_path, node, "stderr") == paths.stderr


def test_read_log_is_none_for_a_missing_file(tmp_path):
    """A log file that was never written reads as None; bad UTF-8 is replaced."""
    assert _logfiles.read_log(tmp_path / "none.stdout") is None
    (tmp_path / "x.stdout").write_bytes(b"ok \xff\n")
    assert _logfiles.read_log(tmp_path / "x.stdout") == "ok \ufffd\n"


def test_stream_tail_tags_each_piece_with_its_attempt(tmp_path):
    """Lines after a `--- attempt N ---` header belong to attempt N; the header is dropped."""
    path = tmp_path / "a.stdout"
    path.write_bytes(b"one\nhalf--- attempt 2 ---\ntwo\n--- attempt 3 ---\nthree\n")
    tail = _logfiles.StreamTail("a", "stdout", path)
    assert tail.poll() == [(1, "one\nhalf"), (2, "two\n"), (3, "three\n")]
    assert tail.poll() == []


def test_stream_tail_holds_back_a_line_until_it_ends_or_the_writer_pauses(tmp_path):
    """An unfinished last line waits for its newline, an idle poll, or the final poll."""
    path = tmp_path / "a.stdout"
    tail = _logfiles.StreamTail("a", "stdout", path)
    assert tail.poll() == []  # not written yet
    path.write_bytes(b"done\nhal")
    assert tail.poll() == [(1, "done\n")]
    with open(path, "ab") as f:
        f.write(b"f")
    assert tail.poll() == []
    assert tail.poll() == [(1, "half")]  # nothing new since: printed as it is
    with open(path, "ab") as f:
        f.write(b" more")
    assert tail.poll(final=True) == [(1, " more")]


def test_stream_tail_reads_a_file_written_afresh_from_its_start(tmp_path):
    """A log file that shrank (a node run again after a crash) is read from the start."""
    path = tmp_path / "a.stdout"
    path.write_bytes(b"old output\n--- attempt 2 ---\nmore old output\n")
    tail = _logfiles.StreamTail("a", "stdout", path)
    tail.poll()
    path.write_bytes(b"new\n")
    assert tail.poll() == [(1, "new\n")]


def test_blocks_print_a_heading_when_the_source_changes():
    """Each source gets a `==> NODE WHAT (attempt N) <==` heading, blocks a blank line apart."""
    out: list[str] = []
    blocks = _logfiles.Blocks(out.append)
    blocks.add("a", "stdout", 1, "one\n")
    blocks.add("a", "stdout", 1, "two\n")
    blocks.add("a", "stderr", 1, "no newline")
    blocks.add("a", "stderr", 1, "")
    blocks.add("b", "traceback", 2, "T\n")
    blocks.end()
    assert "".join(out) == (
        "==> a stdout (attempt 1) <==\none\ntwo\n\n"
        "==> a stderr (attempt 1) <==\nno newline\n\n"
        "==> b traceback (attempt 2) <==\nT\n"
    )
    assert blocks.printed


def test_blocks_end_closes_an_open_line_only():
    """end() adds a newline only when the last text left its line open."""
    out: list[str] = []
    blocks = _logfiles.Blocks(out.append)
    blocks.end()
    assert out == [] and not blocks.printed
    blocks.add("a", "stdout", 1, "x")
    blocks.end()
    blocks.end()
    assert "".join(out) == "==> a stdout (attempt 1) <==\nx\n"
