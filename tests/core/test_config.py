"""Settings: spindle.toml or [tool.spindle], then SPINDLE_* variables, then explicit overrides."""

from __future__ import annotations

import textwrap

import pytest

from spindle import Settings, load_settings
from spindle.core.config import DEFAULT_STORE
from spindle.core.config._origins import _key_lines
from spindle.core.errors import ConfigError


def test_defaults_without_any_file(spindle_config):
    """With no file and no variables every setting has its default."""
    settings = spindle_config.load()

    assert settings == Settings()
    assert settings.store == DEFAULT_STORE
    assert settings.source is None


def test_spindle_toml_is_read(spindle_config):
    """spindle.toml in the working directory sets values, including nested tables."""
    path = spindle_config.write(
        store="memory://",
        concurrency=2,
        lease_ttl=5,
        hooks=["myhooks"],
        observers=[{"kind": "jsonl", "path": "events.jsonl"}],
        plugins={"deny_kinds": ["runtime.python_code"], "prefer": {"runtime.upper": "dist-b"}},
        policy={"allowed_executables": ["echo"]},
    )

    settings = load_settings()

    assert settings.store == "memory://"
    assert settings.concurrency == 2
    assert settings.lease_ttl == 5.0
    assert settings.hooks == ["myhooks"]
    assert settings.observers == [{"kind": "jsonl", "path": "events.jsonl"}]
    assert settings.plugins.deny_kinds == ["runtime.python_code"]
    assert settings.plugins.prefer == {"runtime.upper": "dist-b"}
    assert settings.policy.allowed_executables == ["echo"]
    assert settings.source == str(path)


def test_pyproject_tool_spindle_is_read(spindle_config):
    """Without spindle.toml, [tool.spindle] in pyproject.toml is used."""
    (spindle_config.path / "pyproject.toml").write_text(
        '[project]\nname = "app"\n\n[tool.spindle]\nstore = "memory://"\n'
        '[tool.spindle.plugins]\nallow_kinds = ["runtime.command"]\n'
    )

    settings = spindle_config.load()

    assert settings.store == "memory://"
    assert settings.plugins.allow_kinds == ["runtime.command"]
    assert settings.source.endswith("pyproject.toml")


def test_spindle_toml_wins_over_pyproject(spindle_config):
    """spindle.toml is preferred when both files exist."""
    (spindle_config.path / "pyproject.toml").write_text('[tool.spindle]\nstore = "memory://"\n')
    spindle_config.write(store="sqlite:///own.db")

    assert spindle_config.load().store == "sqlite:///own.db"


def test_pyproject_without_tool_spindle_gives_defaults(spindle_config):
    """A pyproject.toml without [tool.spindle] is ignored."""
    (spindle_config.path / "pyproject.toml").write_text('[project]\nname = "app"\n')

    assert spindle_config.load() == Settings()


def test_environment_overrides_the_file(spindle_config, monkeypatch):
    """SPINDLE_<FIELD> variables override the file, converted to the field's type."""
    spindle_config.write(store="memory://", concurrency=2)
    monkeypatch.setenv("SPINDLE_STORE", "sqlite:///env.db")
    monkeypatch.setenv("SPINDLE_CONCURRENCY", "16")
    monkeypatch.setenv("SPINDLE_LEASE_TTL", "2.5")
    monkeypatch.setenv("SPINDLE_HOOKS", "a.hooks, b.hooks")

    settings = spindle_config.load()

    assert (settings.store, settings.concurrency, settings.lease_ttl) == (
        "sqlite:///env.db",
        16,
        2.5,
    )
    assert settings.hooks == ["a.hooks", "b.hooks"]


def test_explicit_environ_mapping_is_used_instead_of_os_environ(spindle_config, monkeypatch):
    """load_settings(environ=...) reads that mapping, not the process environment."""
    monkeypatch.setenv("SPINDLE_STORE", "sqlite:///ignored.db")

    settings = load_settings(spindle_config.path, environ={"SPINDLE_STORE": "memory://"})

    assert settings.store == "memory://"


def test_explicit_overrides_win_and_none_is_ignored(spindle_config, monkeypatch):
    """Overrides (CLI flags) beat the environment and the file; None means 'not given'."""
    spindle_config.write(store="memory://", concurrency=2)
    monkeypatch.setenv("SPINDLE_STORE", "sqlite:///env.db")

    settings = spindle_config.load(store="sqlite:///flag.db", concurrency=None)

    assert settings.store == "sqlite:///flag.db"
    assert settings.concurrency == 2


def test_unknown_key_is_rejected_with_file_and_line(spindle_config):
    """An unknown top-level key is reported with the file, its line and the known fields."""
    path = spindle_config.write_text(
        """
        store = "memory://"
        stor = "typo"
        """
    )

    with pytest.raises(ConfigError) as caught:
        spindle_config.load()

    message = str(caught.value)
    assert f"{path}:3: unknown field 'stor'" in message
    assert "known fields: store" in message
    assert "source" not in message


def test_unknown_nested_key_is_rejected_with_file_and_line(spindle_config):
    """An unknown key inside [plugins] is reported at its own line."""
    path = spindle_config.write_text(
        """
        store = "memory://"

        [plugins]
        deny_kinds = []
        deny_kind = ["runtime.python_code"]
        """
    )

    with pytest.raises(ConfigError) as caught:
        spindle_config.load()

    assert f"{path}:6: unknown field 'deny_kind'" in str(caught.value)
    assert "@ plugins.deny_kind" in str(caught.value)


def test_unknown_key_in_pyproject_names_the_tool_table(spindle_config):
    """In pyproject.toml the problem is located under tool.spindle, with its line."""
    path = spindle_config.path / "pyproject.toml"
    path.write_text('[project]\nname = "app"\n\n[tool.spindle]\nstore = "memory://"\nbogus = 1\n')

    with pytest.raises(ConfigError) as caught:
        spindle_config.load()

    assert f"{path}:6: unknown field 'bogus'" in str(caught.value)
    assert "@ tool.spindle.bogus" in str(caught.value)


def test_wrong_type_is_rejected_with_file_line_and_expectation(spindle_config):
    """A value of the wrong type says what was expected, where."""
    path = spindle_config.write_text(
        """
        concurrency = "8"
        [plugins.prefer]
        "runtime.upper" = 3
        """
    )

    with pytest.raises(ConfigError) as caught:
        spindle_config.load()

    message = str(caught.value)
    assert f"{path}:2: expected an integer, got str '8' @ concurrency" in message
    assert f'{path}:4: expected a string, got int 3 @ plugins.prefer."runtime.upper"' in message


def test_every_problem_is_reported_at_once(spindle_config):
    """All problems of a file are listed in one error."""
    spindle_config.write_text('concurrency = "8"\nlease_ttl = "soon"\nnope = 1\n')

    with pytest.raises(ConfigError) as caught:
        spindle_config.load()

    assert len(str(caught.value).splitlines()) == 4


def test_problem_inside_a_list_points_at_the_list(spindle_config):
    """A wrong element of a list is located at the list's line, with its index."""
    path = spindle_config.write_text(
        """
        store = "memory://"
        hooks = [
            "good.hooks",
            3,
        ]
        """
    )

    with pytest.raises(ConfigError) as caught:
        spindle_config.load()

    assert f"{path}:3: expected a string, got int 3 @ hooks.1" in str(caught.value)


def test_key_lines_index_arrays_of_tables_and_dotted_keys():
    """The line finder registers [[array]] entries by index, dotted and quoted keys."""
    text = textwrap.dedent(
        """
        [[observers]]
        kind = "log"

        [[observers]]
        kind = "jsonl"
        plugins.prefer."runtime.a" = "x"  # comment
        """
    )

    lines = _key_lines(text, ())

    assert lines[("observers",)] == 2
    assert lines[("observers", "1", "kind")] == 6
    assert lines[("observers", "1", "plugins", "prefer", "runtime.a")] == 7


def test_bad_environment_value_names_the_variable(spindle_config, monkeypatch):
    """A SPINDLE_* value that cannot be converted names the variable."""
    monkeypatch.setenv("SPINDLE_CONCURRENCY", "many")

    with pytest.raises(ConfigError, match="SPINDLE_CONCURRENCY='many' is not a valid int"):
        spindle_config.load()


def test_override_problem_is_attributed_to_the_override(spindle_config):
    """A wrong explicit override is reported as such, not at a file line."""
    spindle_config.write(concurrency=2)

    with pytest.raises(ConfigError, match="explicit override: expected an integer"):
        spindle_config.load(concurrency="x")


def test_invalid_durability_is_rejected(spindle_config, monkeypatch):
    """durability must be normal or full; the error says where the value came from."""
    monkeypatch.setenv("SPINDLE_DURABILITY", "fast")

    with pytest.raises(ConfigError, match="SPINDLE_DURABILITY: durability must be"):
        spindle_config.load()


def test_concurrency_below_one_is_rejected_at_its_line(spindle_config):
    """concurrency = 0 is refused with the file and line."""
    path = spindle_config.write(store="memory://", concurrency=0)

    with pytest.raises(ConfigError, match=f"{path}:2: concurrency must be at least 1"):
        spindle_config.load()


def test_invalid_toml_names_the_file(spindle_config):
    """A file that is not TOML raises ConfigError naming it."""
    path = spindle_config.write_text("store = \n")

    with pytest.raises(ConfigError, match=f"{path}: invalid TOML"):
        spindle_config.load()


def test_source_is_not_a_setting(spindle_config):
    """`source` records the file read; it cannot be set from the file."""
    spindle_config.write(source="elsewhere")

    with pytest.raises(ConfigError, match="unknown field 'source'"):
        spindle_config.load()


def test_load_policy_reflects_policy_settings(spindle_config):
    """[policy] settings produce a LoadPolicy; none at all gives None."""
    assert spindle_config.load().load_policy() is None

    spindle_config.write(policy={"deny_kinds": ["runtime.python_code"]})

    assert spindle_config.load().load_policy().deny_kinds == ["runtime.python_code"]
