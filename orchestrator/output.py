"""What roles return: one validated structure per output kind.

Every model answer is parsed into one of these pydantic models (`extra="forbid"`), so a
malformed answer is an error, never a silently wrong report. The JSON Schema of each kind is
what constrains the model (a llama.cpp grammar, Ollama `format`, OpenAI `response_format`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

Severity = Literal["critical", "high", "medium", "low", "info"]
SEVERITY_RANK: dict[str, int] = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
OutputKind = Literal["plan", "findings", "patches", "diagnosis", "docs", "text", "aggregate"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlannedSubtask(_Out):
    id: str = Field(max_length=40, description="short unique id such as t1")
    role: str = Field(description="the role that does this subtask")
    instruction: str = Field(min_length=1, max_length=600, description="what to do, in one or two sentences")
    files: list[str] = Field(default_factory=list, max_length=20, description="relevant file paths")


class Plan(_Out):
    subtasks: list[PlannedSubtask] = Field(max_length=12)


class Finding(_Out):
    severity: Severity
    file: str = Field(max_length=300)
    line: int | None = Field(default=None, ge=1)
    title: str = Field(min_length=1, max_length=200)
    detail: str = Field(max_length=2000)
    suggestion: str = Field(max_length=2000)


class Findings(_Out):
    findings: list[Finding] = Field(max_length=30)


class Patch(_Out):
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


OUTPUT_MODELS: dict[str, type[BaseModel]] = {
    "plan": Plan,
    "findings": Findings,
    "patches": Patches,
    "diagnosis": Diagnosis,
    "docs": Docs,
    "text": Text,
    "aggregate": Aggregate,
}


class ContractError(ValueError):
    """An answer that does not satisfy its contract; `problems` are one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Contract:
    """What an answer must be: the JSON Schema that constrains the model, and the validator
    that accepts the parsed JSON (returning it normalised) or raises ContractError."""

    name: str
    schema: dict[str, Any]
    validate: Callable[[Any], dict[str, Any]]

    def with_schema(self, schema: dict[str, Any]) -> Contract:
        return Contract(self.name, schema, self.validate)


def contract_for(output: str | dict[str, Any]) -> Contract:
    """The contract of an output kind, or of a role whose output is a JSON Schema. Contracts are
    built once per kind (their schema is shared: derive new schemas, never change it in place)."""
    if isinstance(output, dict):
        return _schema_contract(output)
    return _kind_contract(output)


@cache
def _kind_contract(output: str) -> Contract:
    model = OUTPUT_MODELS[output]

    def validate(data: Any) -> dict[str, Any]:
        try:
            return model.model_validate(data).model_dump(mode="json")
        except ValidationError as exc:
            raise ContractError([f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()][:8]) from None

    return Contract(model.__name__, output_schema(output), validate)


def _schema_contract(schema: dict[str, Any]) -> Contract:
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)

    def validate(data: Any) -> dict[str, Any]:
        errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
        if errors:
            raise ContractError([f"{'.'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in errors][:8])
        if not isinstance(data, dict):
            raise ContractError(["the answer must be a JSON object"])
        return data

    return Contract(str(schema.get("title") or "Output"), schema, validate)


def merged_contract(base: Contract) -> Contract:
    """An ensemble's merge: the same output as its proposals plus where they disagree."""
    schema = {**base.schema, "properties": {**base.schema.get("properties", {}), **_DISAGREEMENTS}}
    schema["required"] = [*base.schema.get("required", []), "disagreements"]

    def validate(data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise ContractError(["the answer must be a JSON object"])
        rest = {key: value for key, value in data.items() if key != "disagreements"}
        disagreements = data.get("disagreements")
        if not isinstance(disagreements, list) or not all(isinstance(d, str) for d in disagreements):
            raise ContractError(["disagreements: a list of strings is required"])
        return {**base.validate(rest), "disagreements": disagreements}

    return Contract(f"Merged{base.name}", schema, validate)


_DISAGREEMENTS = {
    "disagreements": {
        "type": "array",
        "maxItems": 20,
        "items": {"type": "string", "minLength": 1, "maxLength": 2000},
        "description": "points where the proposals contradict each other",
    }
}


def output_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema that constrains a model's answer for this kind (no $refs)."""
    return inline_refs(OUTPUT_MODELS[kind].model_json_schema())


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """Replace `$ref` to `$defs` by the definitions themselves; grammar builders prefer it."""
    defs = schema.get("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(defs[ref.removeprefix("#/$defs/")])
            return {key: walk(value) for key, value in node.items() if key != "$defs"}
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    result: dict[str, Any] = walk(schema)
    return result


# A very small model fills every string to its limit; tight bounds keep its answers short and
# whole within max_tokens. Applied for providers with `compact_output` (the embedded model's).
COMPACT_STRING = 160
COMPACT_ITEMS = 3


def compact_schema(schema: Any) -> Any:
    """Bound every free string and every array of a schema tightly (enums are left alone)."""
    if isinstance(schema, dict):
        out = {key: compact_schema(value) for key, value in schema.items()}
        if out.get("type") == "string" and "enum" not in out:
            out["maxLength"] = min(out.get("maxLength", COMPACT_STRING), COMPACT_STRING)
        if out.get("type") == "array":
            out["maxItems"] = min(out.get("maxItems", COMPACT_ITEMS), COMPACT_ITEMS)
        return out
    if isinstance(schema, list):
        return [compact_schema(item) for item in schema]
    return schema


def max_severity(findings: list[dict[str, Any]]) -> str | None:
    ranked = [f["severity"] for f in findings if f.get("severity") in SEVERITY_RANK]
    return max(ranked, key=SEVERITY_RANK.__getitem__) if ranked else None


def restrict_files(schema: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    """Constrain every `file` property to the given workspace paths (a model cannot invent one)."""
    if not paths:
        return schema

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out = {key: walk(value) for key, value in node.items()}
            props = out.get("properties")
            if isinstance(props, dict) and "file" in props:
                props["file"] = {"type": "string", "enum": sorted(paths)}
            return out
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    result: dict[str, Any] = walk(schema)
    return result
