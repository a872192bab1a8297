"""A role's answer contract for one model: its output kind with every `file` limited to the files
the call sees, in the edit format chosen for the role or the model (`edit_format: diff | replace`,
the role's setting first, then the catalog's for the model, then diff). Replace edits are checked
against the files as the model saw them and become unified diffs, so everything downstream sees
the answer in its kind's usual shape."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from pydantic import ValidationError

from orchestrator.catalog import Route
from orchestrator.checks import Edit, EditProblem, apply_edits
from orchestrator.models import Contract, ContractError, contract_for, restrict_files
from orchestrator.models.contract import inline_refs
from orchestrator.spec import Role
from orchestrator.spec.kinds import REPLACE_MODELS


def edit_format(role: Role, route: Route) -> str:
    """The role's edit format, else the model's (catalog), else diff."""
    return role.edit_format or route.edit_format or "diff"


def file_contract(output: str | dict[str, Any], paths: tuple[str, ...]) -> Contract:
    """The role's contract with every `file` field limited to the files the call sees."""
    if isinstance(output, str):
        return _file_contract(output, paths)
    contract = contract_for(output)
    return contract.with_schema(restrict_files(contract.schema, list(paths)))


@lru_cache(maxsize=256)
def _file_contract(output: str, paths: tuple[str, ...]) -> Contract:
    contract = contract_for(output)
    return contract.with_schema(restrict_files(contract.schema, list(paths)))


def answer_contract(output: str | dict[str, Any], paths: tuple[str, ...], format_: str) -> Contract:
    """The contract of a role's answer for one model: in the replace format, the edits' shape
    (`from_edits` then turns the edits into the kind's usual answer)."""
    if isinstance(output, dict) or format_ != "replace" or output not in REPLACE_MODELS:
        return file_contract(output, paths)
    return _edits_contract(output, paths)


@lru_cache(maxsize=256)
def _edits_contract(kind: str, paths: tuple[str, ...]) -> Contract:
    model = REPLACE_MODELS[kind]
    schema = restrict_files(inline_refs(model.model_json_schema()), list(paths))

    def validate(data: Any) -> dict[str, Any]:
        try:
            found: dict[str, Any] = model.model_validate(data).model_dump(mode="json")
        except ValidationError as exc:
            raise ContractError([f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()][:8]) from None
        return found

    return Contract(model.__name__, schema, validate)


def from_edits(kind: str, answer: dict[str, Any], texts: Mapping[str, str]) -> tuple[dict[str, Any], list[EditProblem]]:
    """An answer in the edits' shape as its kind's answer (unified diffs), and why the edits that
    do not apply to the files as the model saw them do not (they are left out)."""
    found = dict(answer)
    edits = found.pop("edits") if kind == "patches" else [found["fix"]] if found.get("fix") else []
    diffs, problems = apply_edits([Edit(e["file"], e["old"], e["new"]) for e in edits], texts)
    why: dict[str, list[str]] = {}
    for edit in edits:
        why.setdefault(edit["file"], []).append(edit["rationale"])
    patches = [{"file": f, "diff": d, "rationale": "; ".join(why[f])[:2000]} for f, d in diffs.items()]
    if kind == "patches":
        return contract_for(kind).validate({"patches": patches}), problems
    return contract_for(kind).validate({**found, "fix": patches[0] if patches else None}), problems
