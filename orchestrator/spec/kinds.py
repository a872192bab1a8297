"""What roles return: one validated structure per output kind.

Every model answer is parsed into one of these pydantic models (`extra="forbid"`), so a
malformed answer is an error, never a silently wrong report. The JSON Schema of each kind is
what constrains the model (a llama.cpp grammar, Ollama `format`, OpenAI `response_format`), and
the answer shape shown in every prompt is generated from the same models (`answer_shape`).
"""

from __future__ import annotations

import json
import types
from collections.abc import Iterable
from functools import cache
from typing import Any, ClassVar, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["critical", "high", "medium", "low", "info"]
SEVERITY_RANK: dict[str, int] = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
OutputKind = Literal["plan", "findings", "patches", "diagnosis", "docs", "text", "aggregate"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # values shown in the prompt's answer shape instead of "..." (never part of the JSON Schema)
    shape_examples: ClassVar[dict[str, Any]] = {}


class PlannedSubtask(_Out):
    shape_examples: ClassVar[dict[str, Any]] = {"id": "t1", "role": "ROLE", "files": ["PATH"]}

    id: str = Field(max_length=40, description="short unique id such as t1")
    role: str = Field(description="the role that does this subtask")
    instruction: str = Field(min_length=1, max_length=600, description="what to do, in one or two sentences")
    files: list[str] = Field(default_factory=list, max_length=20, description="relevant file paths")


class Plan(_Out):
    subtasks: list[PlannedSubtask] = Field(max_length=12)


class Finding(_Out):
    shape_examples: ClassVar[dict[str, Any]] = {"severity": "high", "file": "PATH", "line": 12}

    severity: Severity
    file: str = Field(max_length=300)
    line: int | None = Field(default=None, ge=1)
    title: str = Field(min_length=1, max_length=200)
    detail: str = Field(max_length=2000)
    suggestion: str = Field(max_length=2000)


class Findings(_Out):
    findings: list[Finding] = Field(max_length=30)


class Patch(_Out):
    shape_examples: ClassVar[dict[str, Any]] = {"file": "PATH", "diff": "--- a/PATH\n+++ b/PATH\n@@ ..."}

    file: str = Field(max_length=300)
    diff: str = Field(min_length=1, max_length=20000, description="a unified diff against the workspace")
    rationale: str = Field(max_length=2000)


class Patches(_Out):
    patches: list[Patch] = Field(max_length=10)


class Diagnosis(_Out):
    root_cause: str = Field(min_length=1, max_length=2000)
    evidence: list[str] = Field(max_length=10)
    fix: Patch | None = None


class Docs(_Out):
    title: str = Field(min_length=1, max_length=200)
    markdown: str = Field(min_length=1, max_length=20000)


class Text(_Out):
    text: str = Field(min_length=1, max_length=20000)


class Aggregate(_Out):
    summary: str = Field(min_length=1, max_length=4000)
    decisions: list[str] = Field(max_length=20)
    disagreements: list[str] = Field(max_length=20)
    next_steps: list[str] = Field(max_length=20)


class Edit(_Out):
    """A search/replace edit (edit_format: replace), turned into a unified diff once validated."""

    shape_examples: ClassVar[dict[str, Any]] = {"file": "PATH", "old": "exact lines to replace", "new": "new lines"}

    file: str = Field(max_length=300)
    old: str = Field(max_length=8000, description="the exact text to replace, copied from the file (empty: a new file)")
    new: str = Field(max_length=12000, description="the text that replaces it")
    rationale: str = Field(max_length=2000)


class EditPatches(_Out):
    edits: list[Edit] = Field(max_length=10)


class EditDiagnosis(Diagnosis):
    fix: Edit | None = None  # type: ignore[assignment]  # the same diagnosis, its fix an edit


# the answer models of the kinds that write patches, in the replace edit format
REPLACE_MODELS: dict[str, type[BaseModel]] = {"patches": EditPatches, "diagnosis": EditDiagnosis}

OUTPUT_MODELS: dict[str, type[BaseModel]] = {
    "plan": Plan,
    "findings": Findings,
    "patches": Patches,
    "diagnosis": Diagnosis,
    "docs": Docs,
    "text": Text,
    "aggregate": Aggregate,
}


@cache
def answer_shape(kind: str, edit_format: str = "diff") -> str:
    """The JSON shape of an output kind as prompts show it, generated from its model:
    `{"findings": [{"severity": "high", "file": "PATH", "line": 12, "title": "...", ...}]}`."""
    if edit_format == "replace" and kind in REPLACE_MODELS:
        return _shape(REPLACE_MODELS[kind])
    return _shape(OUTPUT_MODELS[kind])


def _shape(model: type[BaseModel]) -> str:
    examples = getattr(model, "shape_examples", {})
    parts = []
    for name, info in model.model_fields.items():
        value = json.dumps(examples[name], ensure_ascii=False) if name in examples else _shape_of(info.annotation)
        parts.append(f"{json.dumps(name)}: {value}")
    return "{" + ", ".join(parts) + "}"


def _shape_of(annotation: Any) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is list:
        return f"[{_shape_of(args[0])}]"
    if origin in (Union, types.UnionType):
        present = [a for a in args if a is not type(None)]
        inner = _shape_of(present[0])
        return f"{inner} or null" if isinstance(present[0], type) and issubclass(present[0], BaseModel) else inner
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _shape(annotation)
    return '"..."'


def max_severity(severities: Iterable[str]) -> str | None:
    ranked = [s for s in severities if s in SEVERITY_RANK]
    return max(ranked, key=SEVERITY_RANK.__getitem__) if ranked else None


def at_or_above(severity: str, threshold: str) -> bool:
    """Whether a finding's severity reaches a `fail_on` threshold ("none" is never reached)."""
    if threshold not in SEVERITY_RANK or severity not in SEVERITY_RANK:
        return False
    return SEVERITY_RANK[severity] >= SEVERITY_RANK[threshold]
