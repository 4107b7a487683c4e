"""allowed_functions patterns: exact dotted names, checked as written and where defined."""

from __future__ import annotations

import pytest

from spindle import LoadPolicy, Workflow
from spindle.core.errors import PolicyViolation
from spindle.core.workflow._function_policy import FunctionPattern, pattern_problems


@pytest.mark.parametrize(
    ("pattern", "reference", "allowed"),
    [
        ("os:system", ("os", "system"), True),
        ("os:system", ("osx", "system"), False),
        ("os:system", ("os", "systemx"), False),
        ("os:*", ("os", "path.join"), True),
        ("os:*", ("os.path", "join"), False),
        ("os:*", ("osx", "system"), False),
        ("pkg.*:*", ("pkg", "fn"), True),
        ("pkg.*:*", ("pkg.sub.deep", "fn"), True),
        ("pkg.*:*", ("pkgx", "fn"), False),
        ("pkg.*:*", ("pkgx.sub", "fn"), False),
        ("pkg.mod:Class.method", ("pkg.mod", "Class.method"), True),
        ("pkg.mod:Class.method", ("pkg.mod", "Class"), False),
    ],
)
def test_a_pattern_matches_whole_dotted_names_only(pattern, reference, allowed):
    """A pattern never matches by prefix: 'os' does not cover 'osx', 'pkg.*' not 'pkgx'."""
    assert FunctionPattern.parse(pattern).matches(*reference) is allowed


@pytest.mark.parametrize("entry", ["os", "os:", ":fn", "o*:fn", "os:sys*", "..os:fn", "ös:fn"])
def test_a_malformed_pattern_is_reported(entry):
    """An entry that is not 'module:function', 'module:*' or 'pkg.*:*' is a problem."""
    assert pattern_problems([entry]) == [
        f"entry {entry!r} is not 'module:function', 'module:*' or 'package.*:*' "
        f"(dotted ASCII names, e.g. 'mypkg.tasks:upper')"
    ]


def test_a_policy_with_a_malformed_pattern_cannot_be_made():
    """LoadPolicy refuses a malformed allowed_functions entry when it is created."""
    with pytest.raises(ValueError, match="allowed_functions: entry 'os' is not"):
        LoadPolicy(allowed_functions=["os"])


def shout(text: str = "hi") -> str:
    return text.upper()


def test_a_python_workflow_is_held_to_allowed_functions():
    """A callable passed from Python is judged by where it is defined, like a named one."""
    wf = Workflow("py")
    wf.task("a", {"kind": "python", "function": shout})
    here = f"{__name__}:shout"
    assert wf.validate(LoadPolicy(allowed_functions=[here])) is wf
    with pytest.raises(PolicyViolation) as info:
        wf.validate(LoadPolicy(allowed_functions=["os:*"]))
    assert f"node 'a': function '{here}' is not in the policy's allowed functions (os:*)" in str(
        info.value
    )


def test_no_function_is_allowed_under_an_executable_allow_list_alone():
    """allowed_executables without allowed_functions allows no python function."""
    assert LoadPolicy(allowed_executables=["echo"]).function_patterns == []
    assert LoadPolicy(deny_kinds=["runtime.python_code"]).function_patterns is None
