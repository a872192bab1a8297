"""One structured call on one model: the schema sent as the provider's mode asks (or in the
prompt, for JSON mode only), the answer parsed leniently (reasoning blocks, code fences) and
validated against its contract, and one repair asked for when it is invalid."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from orchestrator.errors import StructuredOutputError
from orchestrator.log import get_logger
from orchestrator.models._call import ModelCall, Usage, budgeted_call
from orchestrator.models.budget import Budget
from orchestrator.models.contract import Contract, ContractError, compact_schema
from orchestrator.models.pool import BoundModel

log = get_logger(__name__)
Check = Callable[[dict[str, Any]], list[str]]

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)
REPAIR_ECHO = 4000  # how much of an invalid answer the repair request sends back
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def parse_json(text: str) -> Any:
    """The JSON object in a model's answer, tolerating reasoning blocks and code fences."""
    text = _THINK.sub("", text).strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    start, end = text.find("{"), text.rfind("}")
    if start != -1 and end > start:
        text = text[start : end + 1]
    return json.loads(text, strict=False)  # raw tabs/newlines inside strings are common and harmless


def _with_schema(messages: list[BaseMessage], schema: dict[str, Any]) -> list[BaseMessage]:
    """For endpoints that only offer JSON mode, the schema goes into the prompt."""
    last = messages[-1]
    text = f"{last.text}\n\nThe JSON must follow this JSON Schema:\n{json.dumps(schema, ensure_ascii=False)}"
    return [*messages[:-1], HumanMessage(content=text)]


async def call_structured(
    bound: BoundModel,
    mode: str,
    messages: list[BaseMessage],
    contract: Contract,
    usage: Usage,
    timeout_s: float,
    check: Check | None = None,
    budget: Budget | None = None,
    max_output_tokens: int = 0,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Ask one model for JSON following the contract; validate it; repair once if invalid."""
    kind = bound.kind
    schema = compact_schema(contract.schema) if bound.config.compact_output else contract.schema
    kwargs = {**kind.structured_kwargs(schema, contract.name, bound.config, mode), **(extra or {})}
    if kind.schema_in_prompt(mode):
        messages = _with_schema(messages, schema)
    # call options go straight to ainvoke: a RunnableBinding per call costs more than the call itself
    runnable = ModelCall(bound.model, kwargs)
    conversation = list(messages)
    problems: list[str] = []
    for attempt in (1, 2):
        answer = await budgeted_call(bound, runnable, conversation, timeout_s, budget, max_output_tokens, usage)
        usage.add(answer)
        text = answer.text
        try:
            parsed = contract.validate(parse_json(text))
            problems = check(parsed) if check else []
            if not problems:
                return parsed
        except json.JSONDecodeError as exc:
            problems = [f"not valid JSON: {exc.msg} at position {exc.pos}"]
        except ContractError as exc:
            problems = exc.problems
        log.info("model.invalid_output", model=bound.route.ref, attempt=attempt, problems=problems)
        if attempt == 1:
            conversation += [
                AIMessage(content=text if len(text) <= REPAIR_ECHO else text[:REPAIR_ECHO] + " ...(cut)"),
                HumanMessage(
                    content="That answer is invalid: "
                    + "; ".join(problems)
                    + ". Answer again with only the corrected JSON object."
                ),
            ]
    raise StructuredOutputError(
        f"{bound.route.ref}: invalid output after one repair: {'; '.join(problems)}", model=bound.route.ref
    )
