"""Actions of a tool loop for models without native tool calls (the embedded model, endpoints
without `tools`): one grammar-constrained JSON object per turn, either the final answer (the
role's own answer, unchanged) or a tool call `{"tool": NAME, ...arguments}` whose arguments are
enums of the real workspace files and the declared check names. The JSON Schema is an `anyOf`
of the answer and one object per tool, so a llama.cpp grammar (or any JSON-schema mode) cannot
produce anything else; the parsed action is validated again here."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from orchestrator.models import Contract, ContractError

ACTION_KEY = "tool"
ANSWER_TOOL = "answer"  # a native loop's final answer, as a function call
ANSWER_TEXT = "give your final answer (its arguments are the answer's JSON); this ends the task"


def action_contract(answer: Contract, parameters: dict[str, dict[str, Any]], may_answer: bool = True) -> Contract:
    """The contract of one turn: the answer, or a call of one of the tools (a tool call only,
    when the turn may not answer: a role's `tool_choice: required` first turn)."""
    branches = [answer.schema] if may_answer else []
    validators: dict[str, Draft202012Validator] = {}
    for name, schema in parameters.items():
        properties = {ACTION_KEY: {"type": "string", "const": name}, **schema["properties"]}
        branch = {**schema, "properties": properties, "required": [ACTION_KEY, *schema["required"]]}
        branches.append(branch)
        validators[name] = Draft202012Validator(schema)

    def validate(data: Any) -> dict[str, Any]:
        if isinstance(data, dict) and data.get(ACTION_KEY) in validators:
            name = str(data[ACTION_KEY])
            args = {key: value for key, value in data.items() if key != ACTION_KEY}
            errors = sorted(validators[name].iter_errors(args), key=lambda e: list(e.path))
            if errors:
                raise ContractError(
                    [f"{name}: {'.'.join(map(str, e.path)) or 'arguments'}: {e.message}" for e in errors][:6]
                )
            return {"tool_call": {"name": name, "args": args}}
        try:
            return {"answer": answer.validate(data)}
        except ContractError as exc:
            tools = ", ".join(parameters)
            raise ContractError([*exc.problems, f'(or call a tool: an object with "tool": one of {tools})']) from None

    return Contract(f"{answer.name}OrTool", {"anyOf": branches}, validate)


def answer_only(answer: Contract) -> Contract:
    """A turn that must answer (no tools are left): the answer, wrapped like an action's."""

    def validate(data: Any) -> dict[str, Any]:
        return {"answer": answer.validate(data)}

    return Contract(answer.name, answer.schema, validate)


def native_tools(
    parameters: dict[str, dict[str, Any]], descriptions: dict[str, str], answer: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """The tools as function definitions for endpoints that call tools natively, and the final
    answer as one more (`answer`, whose arguments are the role's answer), so an endpoint that
    calls tools answers in the same way, in one call when it needs no tool."""
    found = [{"name": n, "description": descriptions[n], "parameters": schema} for n, schema in parameters.items()]
    if answer is None:  # a turn that must call a tool of the workspace
        return found
    return [*found, {"name": ANSWER_TOOL, "description": ANSWER_TEXT, "parameters": answer}]
