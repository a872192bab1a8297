"""Roles are data: a name, a prompt template, an output kind and a description.

Built-in roles ship their prompt templates in `prompts/` (the Arabic one in Arabic). A spec or
graph adds roles of its own with the same record; one node factory serves them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.resource import read_data

PLANNER = "planner"
AGGREGATE = "aggregate"  # the planner's second node; served by the planner's models


@dataclass(frozen=True)
class Role:
    name: str
    output: str | dict[str, Any]  # an output kind of orchestrator.output, or a JSON Schema
    prompt: str  # a string.Template with $goal, $instruction, $files, $roles, ...
    description: str
    builtin: bool = False


_BUILTIN: dict[str, tuple[str, str]] = {
    PLANNER: ("plan", "splits the goal into subtasks, one per role"),
    "architecture_review": (
        "findings",
        "reviews architecture: module boundaries, coupling, layering, error handling, security",
    ),
    "refactor": ("patches", "improves code without changing behaviour; answers with unified diffs"),
    "debug": ("diagnosis", "finds the root cause of a failure, with evidence and an optional fix"),
    "arabic_docs": ("docs", "documents the public API in Arabic, keeping code identifiers verbatim"),
    AGGREGATE: ("aggregate", "merges every subtask's output into one report"),
}

# roles a planner may hand subtasks to (the planner and aggregate nodes are not workers)
NODE_ROLES = frozenset({PLANNER, AGGREGATE})


def builtin_roles() -> dict[str, Role]:
    return {
        name: Role(
            name=name,
            output=kind,
            prompt=read_data("prompts", f"{name}.md"),
            description=description,
            builtin=True,
        )
        for name, (kind, description) in _BUILTIN.items()
    }


def builtin_role_names() -> list[str]:
    return list(_BUILTIN)


def worker_roles(roles: dict[str, Role]) -> dict[str, Role]:
    return {name: role for name, role in roles.items() if name not in NODE_ROLES}
