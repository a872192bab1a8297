"""Roles are data: a name, a prompt template, an output kind, a description, the language and
direction of what the role writes, and the tools it may use before it answers.

Built-in roles ship their prompt templates in `prompts/` (the Arabic one in Arabic). A spec or a
graph adds roles of its own with the same record (`RoleSpec`, what users write); one node factory
serves them all, and writers read `lang`/`dir` from the role instead of testing role names.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from orchestrator.spec._agentic import READ_ONLY_TOOLS, TOOLS, EditFormat, ToolRef
from orchestrator.spec._document import Strict, read_text_file
from orchestrator.spec._resources import read_data

PLANNER = "planner"
AGGREGATE = "aggregate"  # the planner's second node; served by the planner's models
Direction = Literal["ltr", "rtl"]
UserOutput = Literal["findings", "patches", "diagnosis", "docs", "text"]


class RoleSpec(Strict):
    """A role as a spec or a graph file declares it (`roles.NAME`)."""

    output: UserOutput | dict[str, Any] | None = Field(
        default=None, description="an output kind, or a JSON Schema the answer must follow (required for a new role)"
    )
    prompt: str | None = Field(default=None, description="inline prompt template ($goal, $instruction)")
    prompt_file: str | None = Field(default=None, description="template file, relative to the file declaring it")
    description: str = Field(default="", description="what the role does: the planner reads it to assign subtasks")
    lang: str | None = Field(
        default=None, pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$", description="BCP 47 language of what it writes"
    )
    dir: Direction | None = Field(default=None, description="text direction of what it writes (rtl for Arabic)")
    tools: list[ToolRef] | None = Field(
        default=None,
        description="tools of its loop before it answers ([] for one structured call); SERVER.TOOL: an MCP server's",
        max_length=64,
    )
    max_turns: int | None = Field(default=None, ge=1, le=100, description="this role's limits.max_turns")
    edit_format: EditFormat | None = Field(
        default=None, description="how it writes patches: diff (unified) or replace (file, old text, new text)"
    )
    tool_choice: Literal["auto", "required"] | None = Field(
        default=None, description="required: its first turn must call a tool (small models answer too soon)"
    )

    @property
    def settings_only(self) -> bool:
        """A built-in role's settings changed, not a new definition."""
        return self.output is None and self.prompt is None and self.prompt_file is None


@dataclass(frozen=True)
class Role:
    name: str
    output: str | dict[str, Any]  # an output kind of orchestrator.spec.kinds, or a JSON Schema
    prompt: str  # a string.Template with $goal, $instruction, $files, $roles, ...
    description: str
    builtin: bool = False
    lang: str | None = None  # the language it writes, when not the user's (docs go to NAME.LANG.md)
    dir: Direction = "ltr"
    tools: tuple[str, ...] = ()  # its tool loop's tools (none: one structured call)
    max_turns: int | None = None  # None: limits.max_turns
    edit_format: str | None = None  # None: the model's (catalog), else diff
    tool_choice: str = "auto"  # "required": the loop's first turn must call a tool

    @property
    def kind(self) -> str:
        """The output kind, or "schema" for a role whose output is its own JSON Schema."""
        return self.output if isinstance(self.output, str) else "schema"


# name -> (output kind, description, lang, dir)
_BUILTIN: dict[str, tuple[str, str, str | None, Direction]] = {
    PLANNER: ("plan", "splits the goal into subtasks, one per role", None, "ltr"),
    "architecture_review": (
        "findings",
        "reviews architecture: module boundaries, coupling, layering, error handling, security",
        None,
        "ltr",
    ),
    "refactor": ("patches", "improves code without changing behaviour; answers with unified diffs", None, "ltr"),
    "debug": ("diagnosis", "finds the root cause of a failure, with evidence and an optional fix", None, "ltr"),
    "arabic_docs": ("docs", "documents the public API in Arabic, keeping code identifiers verbatim", "ar", "rtl"),
    AGGREGATE: ("aggregate", "merges every subtask's output into one report", None, "ltr"),
}

# roles a planner may hand subtasks to (the planner and aggregate nodes are not workers)
NODE_ROLES = frozenset({PLANNER, AGGREGATE})

# the tools a built-in role has by default: reviewers read, fixers also run the checks
DEFAULT_TOOLS: dict[str, tuple[str, ...]] = {
    "architecture_review": READ_ONLY_TOOLS,
    "refactor": TOOLS,
    "debug": TOOLS,
    "arabic_docs": READ_ONLY_TOOLS,
}


def builtin_roles() -> dict[str, Role]:
    return {
        name: Role(
            name=name,
            output=kind,
            prompt=read_data("prompts", f"{name}.md"),
            description=description,
            builtin=True,
            lang=lang,
            dir=direction,
            tools=DEFAULT_TOOLS.get(name, ()),
        )
        for name, (kind, description, lang, direction) in _BUILTIN.items()
    }


def builtin_role_names() -> list[str]:
    return list(_BUILTIN)


def worker_roles(roles: dict[str, Role]) -> dict[str, Role]:
    return {name: role for name, role in roles.items() if name not in NODE_ROLES}


MAX_PROMPT_BYTES = 256_000


def make_role(name: str, definition: RoleSpec, base_dir: Path) -> Role:
    """The role a spec or graph declares (its prompt file read relative to `base_dir`: a regular
    UTF-8 text file of bounded size, else SpecError)."""
    if definition.prompt_file:
        prompt = read_text_file(base_dir / definition.prompt_file, MAX_PROMPT_BYTES, "prompt")
    else:
        prompt = definition.prompt or ""
    assert definition.output is not None  # checked by the caller
    kind = definition.output if isinstance(definition.output, str) else "JSON Schema"
    return Role(
        name=name,
        output=definition.output,
        prompt=prompt,
        description=definition.description or f"custom role ({kind})",
        lang=definition.lang,
        dir=definition.dir or ("rtl" if definition.lang in RTL_LANGUAGES else "ltr"),
        tools=tuple(dict.fromkeys(definition.tools or ())),
        max_turns=definition.max_turns,
        edit_format=definition.edit_format,
        tool_choice=definition.tool_choice or "auto",
    )


def configure_role(role: Role, definition: RoleSpec) -> Role:
    """A role with the settings a spec changes (tools, max_turns, edit_format, tool_choice, description)."""
    return replace(
        role,
        tools=role.tools if definition.tools is None else tuple(dict.fromkeys(definition.tools)),
        max_turns=definition.max_turns if definition.max_turns is not None else role.max_turns,
        edit_format=definition.edit_format or role.edit_format,
        tool_choice=definition.tool_choice or role.tool_choice,
        description=definition.description or role.description,
    )


RTL_LANGUAGES = frozenset({"ar", "fa", "he", "ur", "ps", "sd", "yi", "dv", "ckb"})
