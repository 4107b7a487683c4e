"""The command runtime passes secrets in the environment, never in the command line."""

from __future__ import annotations

import asyncio
import os
import subprocess

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spindle.plugins.executors.subprocess import SubprocessExecutor
from spindle.plugins.runtimes.command import CommandRuntime


def _payload(make_task, command, secret_values=(), **kw):
    rt = CommandRuntime(command=command)
    task = attrs.evolve(make_task(rt, SubprocessExecutor(), **kw), secret_values=secret_values)
    return asyncio.run(rt.setup_runtime(task))


def test_a_secret_workflow_input_becomes_a_quoted_variable(make_task):
    """{secrets.token} and {inputs.token} are "$SPINDLE_SECRET_TOKEN"; the value is in env."""
    payload = _payload(
        make_task,
        "login {secrets.token} {inputs.token} {inputs.who}",
        secret_values=("hunter2",),
        workflow_inputs={"token": "hunter2", "who": "Ada Lovelace"},
    )
    assert payload.command == (
        'login "$SPINDLE_SECRET_TOKEN" "$SPINDLE_SECRET_TOKEN" \'Ada Lovelace\''
    )
    assert payload.env["SPINDLE_SECRET_TOKEN"] == "hunter2"
    assert "hunter2" not in payload.command


def test_a_node_input_holding_a_secret_is_passed_the_same_way(make_task):
    """A node input whose value contains a secret is moved to the environment under its name."""
    payload = _payload(
        make_task,
        "curl -H {inputs.header} {inputs.url}",
        secret_values=("hunter2",),
        inputs={"header": "Authorization: Bearer hunter2", "url": "https://x.test"},
    )
    assert payload.command == 'curl -H "$SPINDLE_SECRET_HEADER" https://x.test'
    assert payload.env["SPINDLE_SECRET_HEADER"] == "Authorization: Bearer hunter2"


def test_two_secrets_under_one_name_get_two_variables(make_task):
    """A node input and a workflow input both called token, with different values, do not clash."""
    payload = _payload(
        make_task,
        "use {inputs.token} {secrets.token}",
        secret_values=("one", "two"),
        inputs={"token": "one"},
        workflow_inputs={"token": "two"},
    )
    assert payload.command == 'use "$SPINDLE_SECRET_TOKEN" "$SPINDLE_SECRET_TOKEN_2"'
    assert (payload.env["SPINDLE_SECRET_TOKEN"], payload.env["SPINDLE_SECRET_TOKEN_2"]) == (
        "one",
        "two",
    )


def test_a_runtime_env_cannot_override_a_secret_variable(make_task):
    """The node's own env: is applied first; the secret's variable wins."""
    rt = CommandRuntime(command="use {secrets.token}", env={"SPINDLE_SECRET_TOKEN": "forged"})
    task = attrs.evolve(
        make_task(rt, SubprocessExecutor(), workflow_inputs={"token": "real"}),
        secret_values=("real",),
    )
    payload = asyncio.run(rt.setup_runtime(task))
    assert payload.env["SPINDLE_SECRET_TOKEN"] == "real"


# make_task only builds a context over a directory nothing here writes to.
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), min_size=1))
def test_the_shell_sees_the_exact_value_as_one_word(make_task, secret):
    """Whatever the secret holds (spaces, quotes, $, newlines), the program gets it as one word."""
    payload = _payload(
        make_task,
        "printf '%s\\n' {secrets.token} | wc -l; printf '%s' {secrets.token}",
        secret_values=(secret,),
        workflow_inputs={"token": secret},
    )
    assert payload.command == (
        "printf '%s\\n' \"$SPINDLE_SECRET_TOKEN\" | wc -l; printf '%s' \"$SPINDLE_SECRET_TOKEN\""
    )
    out = subprocess.run(
        ["/bin/sh", "-c", payload.command],
        env={**os.environ, **payload.env},
        capture_output=True,
        check=True,
    ).stdout.decode("utf-8", "surrogateescape")
    count, _, value = out.partition("\n")
    assert value == secret
    assert int(count) == secret.count("\n") + 1  # printf saw exactly one argument
