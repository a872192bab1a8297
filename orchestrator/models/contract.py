"""Contracts: what an answer must be. The JSON Schema that constrains the model (a llama.cpp
grammar, Ollama `format`, OpenAI `response_format`) and the validator that accepts the parsed
answer. Schemas of the built-in kinds come from their pydantic models (`orchestrator.spec.kinds`);
a role may bring its own JSON Schema instead."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import ValidationError

from orchestrator.spec.kinds import OUTPUT_MODELS


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
