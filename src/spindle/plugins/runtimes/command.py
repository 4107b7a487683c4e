"""The ``command`` runtime: a shell command line built from a template.

::

    hello:
      runtime:
        kind: command
        command: "echo hello {inputs.who} > {outputs.out.path}"
      outputs: {out: {kind: file, path: hello.txt}}

Placeholders (every value substituted is shell-quoted with :func:`shlex.quote`,
so ``x; rm -rf ~`` stays one argument):

=====================  ===========================================================
``{inputs.NAME}``      the node's input ``NAME``, else the workflow input ``NAME``
``{secrets.NAME}``     the secret workflow input ``NAME`` (passed in the environment)
``{outputs.NAME.path}`` the absolute path of declared output ``NAME`` (file, folder, json)
``{NAME.path}``        the path held by node input ``NAME`` (an upstream file artifact)
``{task.name}``        the node id
``{run.id}``           the run id
``{run.dir}``          the run's working directory
``{item}``             in a map's node: the item (``{item.KEY}``: one of its keys)
``{index}``            in a map's node: the item's position, from 0
=====================  ===========================================================

A secret never appears in the command line, which any user of the machine can
read (``ps``, ``/proc/PID/cmdline``): a placeholder whose value is, or holds, a
secret input — ``{secrets.NAME}``, or ``{inputs.NAME}`` of a secret input —
becomes the word ``"$SPINDLE_SECRET_NAME"`` and the value is put in the
command's environment under that name (readable only by your own user), so
``curl -H {secrets.token} ...`` still passes the value as one argument.

Write ``{{`` and ``}}`` for literal braces (a shell ``${HOME}`` is ``${{HOME}}``).
A placeholder that names nothing is reported when the workflow is loaded. The
node's result is the command's standard output with trailing newlines removed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from attrs import define, field

from spindle import Runtime, TaskError
from spindle.plugins.payloads import CommandPayload
from spindle.plugins.runtimes._common import prepare_outputs, resolve_dir, task_env
from spindle.plugins.runtimes._secret_words import SecretWords
from spindle.plugins.runtimes._shell_policy import CommandRefused, plain_commands
from spindle.plugins.runtimes._template import (
    Placeholder,
    Template,
    TemplateError,
    executables,
    path_text,
)

if TYPE_CHECKING:
    from spindle import NodeSpec, TaskContext

__all__ = ["CommandRuntime"]

_PATH_KINDS = ("file", "folder", "json")
_FIXED = ("task.name", "run.id", "run.dir")
_DEFAULT_SHELL = "/bin/sh"


@define
class CommandRuntime(Runtime[CommandPayload], kind="command"):
    """Runs a shell command line whose ``{placeholders}`` are filled in and shell-quoted.

    Attributes:
        command: the command template: ``{inputs.NAME}``, ``{secrets.NAME}``,
            ``{outputs.NAME.path}``, ``{NAME.path}``, ``{task.name}``, ``{run.id}``,
            ``{run.dir}``; each value is shell-quoted, and a secret one is passed as
            ``"$SPINDLE_SECRET_NAME"`` with its value in the environment, never in the
            command line (see the module documentation).
        env: variables added to the environment (beside ``SPINDLE_RUN_ID``,
            ``SPINDLE_NODE_ID``, ``SPINDLE_RUN_DIR`` and ``SPINDLE_ATTEMPT``).
        cwd: the working directory, relative to the run directory (default: the run dir).
        shell: the shell that interprets the line (``shell -c LINE``).
    """

    default_executor: ClassVar[str] = "subprocess"

    command: str
    env: dict[str, str] = field(factory=dict)
    cwd: str | None = None
    shell: str = _DEFAULT_SHELL
    _template: Template | None = field(init=False, default=None, repr=False, eq=False)

    def _parsed(self) -> Template:
        if self._template is None:
            self._template = Template.parse(self.command)
        return self._template

    # --- load time ----------------------------------------------------------

    def check(self, node: NodeSpec, available: set[str]) -> list[str]:
        """Report a malformed template or a placeholder that names nothing.

        Args:
            node: the node being loaded; its inputs and declared outputs are
                what ``{inputs.X}``, ``{X.path}`` and ``{outputs.Y.path}`` may name.
            available: ``"inputs.NAME"`` for every workflow input (other
                entries are ignored: the node supplies its own names).
        """
        try:
            template = self._parsed()
        except TemplateError as exc:
            return [str(exc)]
        names = _available(node, available)
        known = set(names)
        problems = []
        for ph in template.placeholders:
            name = ".".join(ph.parts)
            if name in known or (ph.parts[0] == "item" and "item.KEY" in known):
                continue
            hint = ""
            if ph.parts[0] == "secrets" and len(ph.parts) == 2:
                name = ph.parts[1]
                if f"inputs.{name}" in known:
                    hint = (
                        f" (input '{name}' is not declared secret: write {{inputs.{name}}}, "
                        f"or declare it with secret: true)"
                    )
            if ph.parts[0] == "outputs" and len(ph.parts) >= 2 and ph.parts[1] in node.outputs:
                kind = node.outputs[ph.parts[1]].kind
                if kind not in _PATH_KINDS:
                    hint = f" (output '{ph.parts[1]}' is a {kind} output and has no path)"
            problems.append(
                f"unknown placeholder '{ph.text}' in command{hint}; available: {', '.join(names)}"
            )
        return problems

    def implicit_inputs(self, offered: Sequence[str]) -> list[str]:
        """The offered names the line uses as placeholders (``{item}``, ``{item.KEY}``)."""
        try:
            heads = {ph.parts[0] for ph in self._parsed().placeholders}
        except TemplateError:
            return []  # check() reports the malformed template
        return [n for n in offered if n in heads]

    def executables(self) -> list[str]:
        """The program of each simple command in the line (placeholders left as written)."""
        try:
            return executables(self._parsed().skeleton())
        except TemplateError:
            return [f"<malformed command: {self.command}>"]

    def executable_problems(self, node: NodeSpec, allowed: Sequence[str]) -> list[str]:
        """Refuse anything but a plain line of allowed programs (see ``_shell_policy``).

        Under an executable allow-list the line runs with the default shell and
        environment only: another shell (``bash`` reads ``BASH_ENV``) or any
        ``env`` entry (``BASH_ENV``, ``LD_PRELOAD``, ``PATH``, ``GIT_SSH_COMMAND``...)
        can make an allowed program run another one, so both are refused.
        """
        if self.shell != _DEFAULT_SHELL:
            return [
                f"command refused by policy: shell override '{self.shell}' (under "
                f"allowed_executables a command runs with {_DEFAULT_SHELL}; remove 'shell')"
            ]
        if self.env:
            return [
                f"command refused by policy: env override ({', '.join(sorted(self.env))}) "
                f"(under allowed_executables a command runs with spindle's environment "
                f"only, since a variable such as BASH_ENV, LD_PRELOAD or PATH can make "
                f"an allowed program run another; pass values as {{inputs.NAME}} arguments)"
            ]
        try:
            template = self._parsed()
        except TemplateError:
            return []  # check() reports the malformed template, so nothing runs
        outputs = [name for name, spec in node.outputs.items() if spec.kind in ("file", "json")]
        try:
            programs = plain_commands(template.items, outputs)
        except CommandRefused as exc:
            return [f"command refused by policy: {exc}"]
        shown = ", ".join(allowed) or "none"
        return [
            f"executable '{exe}' is not in the policy's allowed executables ({shown})"
            for exe in dict.fromkeys(programs)
            if exe not in allowed
        ]

    # --- run time -----------------------------------------------------------

    async def _setup_runtime(self, task: TaskContext) -> CommandPayload:
        """Render the command line for ``task``; create declared output directories."""
        try:
            template = self._parsed()
        except TemplateError as exc:
            raise TaskError(f"node '{task.node_id}': {exc}", node_id=task.node_id) from exc
        words = SecretWords(task.secret_values)
        parts = [
            item if isinstance(item, str) else words.word(item, _value(item, task))
            for item in template.items
        ]
        prepare_outputs(task)
        env = task_env(task)
        env.update(self.env)
        env.update(words.env)  # after env: a secret's variable is never overridden
        return CommandPayload(
            command="".join(parts),
            cwd=resolve_dir(task.run_dir, self.cwd),
            env=env,
            shell=self.shell,
        )

    def run_paths(self) -> dict[str, str]:
        """``cwd``, when set: the loader and the engine keep it inside the run directory."""
        return {"cwd": self.cwd} if self.cwd else {}


def _available(node: NodeSpec, available: set[str]) -> list[str]:
    """Every placeholder name valid for ``node``, in the order error messages list them."""
    names = [f"inputs.{i}" for i in node.inputs]
    names.extend(sorted(a for a in available if a.startswith("inputs.") and a not in names))
    names.extend(sorted(a for a in available if a.startswith("secrets.")))
    names.extend(f"outputs.{o}.path" for o, s in node.outputs.items() if s.kind in _PATH_KINDS)
    names.extend(_FIXED)
    names.extend(f"{i}.path" for i in node.inputs)
    names.extend(n for n in ("item", "item.KEY", "index") if n.partition(".")[0] in node.inputs)
    return names


def _value(ph: Placeholder, task: TaskContext) -> Any:
    """The value a placeholder stands for in ``task``; TaskError when there is none."""
    node_id = task.node_id
    match ph.parts:
        case ("inputs", name) if name in task.inputs:
            return task.inputs[name]
        case ("inputs", name) if name in task.workflow_inputs:
            return task.workflow_inputs[name]
        case ("secrets", name) if name in task.workflow_inputs:
            return task.workflow_inputs[name]  # SecretUnavailable if not given to this process
        case ("outputs", name, "path") if name in task.outputs:
            path = task.outputs[name]
            if path is None:
                raise TaskError(
                    f"node '{node_id}': placeholder '{ph.text}': output '{name}' has no path "
                    f"(it is a value output)",
                    node_id=node_id,
                )
            return path
        case ("task", "name"):
            return node_id
        case ("run", "id"):
            return task.run_id
        case ("run", "dir"):
            return task.run_dir
        case ("index",) | ("item",) if ph.parts[0] in task.inputs:
            return task.inputs[ph.parts[0]]
        case ("item", key) if isinstance(task.inputs.get("item"), Mapping):
            if key in task.inputs["item"]:
                return task.inputs["item"][key]
        case (name, "path") if name in task.inputs:
            value = task.inputs[name]
            text = path_text(value)
            if text is None:
                raise TaskError(
                    f"node '{node_id}': placeholder '{ph.text}': input '{name}' is not a path "
                    f"(got {type(value).__name__} {value!r:.80})",
                    node_id=node_id,
                )
            return text
    raise TaskError(
        f"node '{node_id}': placeholder '{ph.text}' in command has no value in this run",
        node_id=node_id,
    )
