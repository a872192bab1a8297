"""What a spec says about agentic roles and verification: the project's checks (commands that
tell whether the code is right), how patches are judged by them (`verify`), the tools a role may
use and the edit format it writes.

    checks:
      tests: {run: "python -m pytest -q", timeout_s: 300}
    verify: {checks: [tests], reflections: 2, sandbox: required}
    roles:
      debug: {tools: [list_files, read_file, grep, run_check], max_turns: 8, edit_format: replace}
    limits: {max_turns: 8, max_tool_calls: 24, check_concurrency: 2}

MCP servers' tools are granted to roles as `SERVER.TOOL`:

    mcp_servers:
      docs: {command: [python, tools/docs_server.py]}     # stdio: a local process
      search: {url: "https://mcp.example.com/mcp"}        # streamable HTTP: its host is egress
    roles:
      architecture_review: {tools: [read_file, grep, docs.lookup]}
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from orchestrator.errors import Problem
from orchestrator.spec._document import Strict, close_match

if TYPE_CHECKING:
    from orchestrator.spec._spec import LoadedSpec

ToolName = Literal["list_files", "read_file", "grep", "run_check"]
TOOLS: tuple[ToolName, ...] = ("list_files", "read_file", "grep", "run_check")
READ_ONLY_TOOLS: tuple[ToolName, ...] = ("list_files", "read_file", "grep")
# a tool of an MCP server the spec declares: SERVER.TOOL
MCP_SERVER_NAME = r"^[A-Za-z0-9_-]{1,32}$"
McpToolRef = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,32}\.[A-Za-z0-9_.-]{1,64}$")]
ToolRef = ToolName | McpToolRef
EditFormat = Literal["diff", "replace"]
SandboxMode = Literal["required", "preferred", "off"]
CHECK_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"


def _inside_workspace(path: str) -> str:
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts:
        raise ValueError(f"'{path}' is not a path inside the workspace")
    return path


# a path or glob inside the workspace: relative, no `..`, no NUL
RelativePath = Annotated[
    str, Field(min_length=1, max_length=1024, pattern=r"^[^\x00]+$"), AfterValidator(_inside_workspace)
]
TestName = Annotated[str, Field(min_length=1, max_length=512, pattern=r"^[^\x00-\x1f\x7f]+$")]


class CheckSpec(Strict):
    """A command of the project that judges the code: exit 0 is a pass."""

    run: str | list[str] = Field(
        description="a shell command (run by /bin/sh -c), or an argument list run without a shell"
    )
    timeout_s: float = Field(default=300, gt=0, le=86400, description="the process group is killed at this time")
    junit: RelativePath | None = Field(
        default=None,
        description="where the check writes a JUnit XML report (a path or glob in the workspace), for per-test "
        "verdicts; pytest commands get one without it",
    )


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
    target_tests: list[TestName] = Field(
        default_factory=list,
        max_length=200,
        description="tests that must go from fail to pass (`tests/test_x.py::test_y`, or a test's name); with them "
        "a patch is verified when they pass and no test that passed before fails, even if others still fail",
    )
    protect: list[RelativePath] | None = Field(
        default=None,
        max_length=200,
        description="globs of the judge's files, put back as they are in the workspace before a patch is judged "
        "(default: test folders, test_*.py, *_test.py, conftest.py, pytest.ini, tox.ini, setup.cfg, noxfile.py, "
        "pyproject.toml's test-runner sections); the files a check's command names always are",
    )
    allow_test_changes: bool = Field(
        default=False, description="judge a patch with its own changes to the judge's files (the report says so)"
    )
    require: bool | None = Field(
        default=None,
        description="a proposed patch that is not verified fails the run (exit 1); default true when checks are "
        "declared",
    )


class McpServerSpec(Strict):
    """An MCP server whose tools roles may be granted: a local process (stdio) or a URL
    (streamable HTTP, whose host receives what the role sends it)."""

    command: list[Annotated[str, Field(min_length=1, max_length=4096)]] | None = Field(
        default=None, min_length=1, max_length=64, description="stdio: the program and its arguments (no shell)"
    )
    url: Annotated[str, Field(max_length=2048, pattern=r"^https?://[^\s]+$")] | None = Field(
        default=None, description="streamable HTTP: the server's endpoint, e.g. https://host/mcp"
    )
    timeout_s: float = Field(default=30, gt=0, le=600, description="the longest one tool call may take")

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerSpec:
        if (self.command is None) == (self.url is None):
            raise ValueError("give either command (a local stdio server) or url (streamable HTTP), not both")
        return self


def mcp_server_of(tool: str) -> str | None:
    """The server of a granted MCP tool (`SERVER.TOOL`), None for a built-in tool."""
    return tool.split(".", 1)[0] if "." in tool else None


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
    for name in spec.mcp_servers:
        if re.match(MCP_SERVER_NAME, name) is None:
            problems.append(loaded.problem(("mcp_servers", name), "a server name is 1-32 letters, digits, '_' or '-'"))
    for role, definition in spec.roles.items():
        if definition.tools and "run_check" in definition.tools and not spec.checks:
            loc = ("roles", role, "tools")
            problems.append(loaded.problem(loc, "run_check needs checks: declare them under `checks:`"))
        for index, tool in enumerate(definition.tools or []):
            problem = unknown_server(tool, list(spec.mcp_servers))
            if problem:
                problems.append(loaded.problem(("roles", role, "tools", index), problem))
    return problems


def unknown_server(tool: str, declared: list[str]) -> str | None:
    """Why a granted MCP tool names no declared server, or None."""
    server = mcp_server_of(tool)
    if server is None or server in declared:
        return None
    known = f" (declared: {', '.join(declared)})" if declared else " (the spec declares no mcp_servers)"
    return f"unknown MCP server '{server}'{close_match(server, declared) or known}"
