"""The operator's command patterns (`allow_checks`, `allow_mcp_servers`, `trusted_mcp_servers`):
globs over a command line whose wildcards never match a shell control character, so a pattern
admits a command but never one with another chained on."""

from __future__ import annotations

import re
import shlex
from functools import lru_cache

from orchestrator.errors import printable
from orchestrator.spec import LoadedSpec
from orchestrator.spec.operator import Operator

SHELL_CONTROL = ";&|`$<>()\n"  # a pattern's wildcards never match these: no command chained on


def check_command(run: str | list[str]) -> str:
    """A check's command line as `allow_checks` patterns see it (an argument list shell-quoted)."""
    return run if isinstance(run, str) else shlex.join(run)


@lru_cache(maxsize=64)
def command_pattern(pattern: str) -> re.Pattern[str]:
    """A glob over a command line whose `*` and `?` never match a shell control character, so
    `python -m pytest*` admits `python -m pytest -q tests/` but not `python -m pytest; curl ...`."""
    other = f"[^{re.escape(SHELL_CONTROL)}]"
    parts = [f"{other}*" if c == "*" else other if c == "?" else re.escape(c) for c in pattern]
    return re.compile("".join(parts) + r"\Z")


def command_refusal(
    loaded: LoadedSpec, operator: Operator, loc: tuple[str, ...], run: str | list[str], allowed_by: str
) -> str | None:
    """Why the operator's command patterns (`allowed_by`: allow_checks, allow_mcp_servers) do not
    admit a command of the spec, or None. They hold in pull-request mode, or whenever listed."""
    allowed: list[str] | None = getattr(operator.policy, allowed_by)
    if allowed is None and not operator.untrusted:
        return None
    command = check_command(run)
    where = loaded.problem(loc, "").render().rstrip(": ")
    if allowed is None:
        what = "checks" if loc[0] == "checks" else "MCP servers"
        return (
            f"{where}: {operator.pull_request_mode} runs a spec's {what} only when the operator's "
            f"{allowed_by} admits them, and the operator's policy lists none"
        )
    if not any(command_pattern(p).match(command) for p in allowed):
        source = operator.rule_source(allowed_by)
        return f"{where}: the command {printable(command)!r} is not admitted by {allowed_by} ({source})"
    return None
