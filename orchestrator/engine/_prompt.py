"""Prompt templates: `string.Template` text with `$goal`, `$instruction`, `$roles`,
`$file_list`, `$results` and `$edit_instructions` (how to write a change, in the edit format of
the model). Templates never see `{}`-formatting, so code in them is safe.

Every role's user message ends with the JSON shape its output kind requires, generated from the
kind's model (spec.kinds.answer_shape), so a role added in a spec gets the same contract as a
built-in one. The system message (shared by all roles) carries the fenced repository files
first, so consecutive calls can reuse a cached prefix, and the repository map of the others after them.
"""

from __future__ import annotations

import json
from string import Template
from typing import Any

from orchestrator.spec import read_data
from orchestrator.spec.kinds import REPLACE_MODELS, answer_shape

DIFF_INSTRUCTIONS = (
    "Write each change as a unified diff against the file exactly as listed (headers `--- a/PATH` and "
    "`+++ b/PATH` with the path relative to the repository root, `@@` hunks, context lines copied "
    "exactly, no line-number prefixes)."
)
REPLACE_INSTRUCTIONS = (
    "Write each change as an edit: the file, `old` (the exact lines to replace, copied from the listing "
    "without its line-number prefixes, enough of them to be unique in the file) and `new` (the lines "
    "that replace them)."
)


def render(template: str, **values: str) -> str:
    return Template(template).safe_substitute(values).strip()


def edit_instructions(output: str | dict[str, Any], edit_format: str) -> str:
    if output not in ("patches", "diagnosis"):
        return ""
    return REPLACE_INSTRUCTIONS if edit_format == "replace" and output in REPLACE_MODELS else DIFF_INSTRUCTIONS


def user_message(
    template: str, output: str | dict[str, Any], edit_format: str = "diff", *, changes: str = "", **values: str
) -> str:
    """The role's task, then the changes under review (engine._changes, when the run reviews a
    diff), then the shape of its answer (an output kind, or a role's own schema)."""
    if isinstance(output, dict):
        shape = f"JSON following this JSON Schema:\n{json.dumps(output, ensure_ascii=False)}"
    else:
        shape = f"JSON of this shape:\n{answer_shape(output, edit_format)}"
    values.setdefault("edit_instructions", edit_instructions(output, edit_format))
    task = render(template, **values)
    if changes:
        task = f"{task}\n\n{changes}"
    return f"{task}\n\nAnswer with {shape}".strip()


def system_message(files_block: str, outline: str = "") -> str:
    """The shared preamble, the packed files, then the repository map of files not shown whole."""
    preamble = read_data("prompts", "system.md").strip()
    if files_block:
        preamble += f"\n\nRepository files:\n\n{files_block}"
    if outline:
        preamble += f"\n\n{MAP_HEADING}\n<repository_map>\n{fence_map(outline)}\n</repository_map>"
    return preamble


MAP_HEADING = "Repository map (what other files define; read them with your tools if you have them):"


def fence_map(outline: str) -> str:
    """The map is data too: it cannot close its own fence."""
    return outline.replace("</repository_map>", "<\\/repository_map>")
