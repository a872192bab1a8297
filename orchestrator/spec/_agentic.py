"""What a spec says about agentic roles and verification: the project's checks (commands that
tell whether the code is right), how patches are judged by them (`verify`), the tools a role may
use and the edit format it writes.

    checks:
      tests: {run: "python -m pytest -q", timeout_s: 300}
    verify: {checks: [tests], reflections: 2, sandbox: required}
    roles:
      debug: {tools: [list_files, read_file, grep, run_check], max_turns: 8, edit_format: replace}
    limits: {max_turns: 8, max_tool_calls: 24, check_concurrency: 2}
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from orchestrator.errors import Problem
from orchestrator.spec._document import Strict, close_match

if TYPE_CHECKING:
    from orchestrator.spec._spec import LoadedSpec

ToolName = Literal["list_files", "read_file", "grep", "run_check"]
TOOLS: tuple[ToolName, ...] = ("list_files", "read_file", "grep", "run_check")
READ_ONLY_TOOLS: tuple[ToolName, ...] = ("list_files", "read_file", "grep")
EditFormat = Literal["diff", "replace"]
SandboxMode = Literal["required", "preferred", "off"]
CHECK_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"


class CheckSpec(Strict):
    """A command of the project that judges the code: exit 0 is a pass."""

    run: str | list[str] = Field(
        description="a shell command (run by /bin/sh -c), or an argument list run without a shell"
    )
    timeout_s: float = Field(default=300, gt=0, le=86400, description="the process group is killed at this time")


class VerifySpec(Strict):
    """How proposed patches are judged by the checks."""

    checks: list[str] | None = Field(default=None, description="the checks that judge a patch (default: all)")
    reflections: int = Field(
        default=2, ge=0, le=10, description="times a failed fix goes back to its model with the check output"
    )
    sandbox: SandboxMode | None = Field(
        default=None,
        description="required | preferred | off (default: required when CI is set, preferred elsewhere)",
    )


def check_agentic(loaded: LoadedSpec) -> list[Problem]:
    """Meaning of the agentic fields: the checks `verify` names exist; a role that asks for
    `run_check` has checks to run."""
    spec = loaded.spec
    problems: list[Problem] = []
    declared = list(spec.checks)
    for name in spec.checks:
        if re.match(CHECK_NAME, name) is None:
            problems.append(loaded.problem(("checks", name), "a check name is letters, digits, '_', '.' or '-'"))
        if isinstance(spec.checks[name].run, list) and not spec.checks[name].run:
            problems.append(loaded.problem(("checks", name, "run"), "an empty command"))
    for index, name in enumerate(spec.verify.checks or []):
        if name not in spec.checks:
            known = f" (declared: {', '.join(declared)})" if declared else " (the spec declares no checks)"
            hint = close_match(name, declared) or known
            problems.append(loaded.problem(("verify", "checks", index), f"unknown check '{name}'{hint}"))
    for role, definition in spec.roles.items():
        if definition.tools and "run_check" in definition.tools and not spec.checks:
            loc = ("roles", role, "tools")
            problems.append(loaded.problem(loc, "run_check needs checks: declare them under `checks:`"))
    return problems
