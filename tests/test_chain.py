"""Fallback chains, repair of invalid output, and the failure classification table."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from orchestrator.catalog import Route
from orchestrator.chain import call_chain, parse_json
from orchestrator.errors import ProviderConfigError, ProviderError, ProviderUnavailable
from orchestrator.failure import classify
from orchestrator.output import Findings, output_schema
from orchestrator.pool import ModelPool
from orchestrator.registry import CallSettings, ProviderConfig
from tests.fakes import Call, FakeProvider

GOOD = json.dumps({"findings": []})


def run_chain(fake: FakeProvider, models: list[str], **kwargs: Any) -> Any:
    settings = CallSettings(
        timeout_s=kwargs.pop("timeout", 5),
        backoff_s=0.0,
        retries=kwargs.pop("retries", 2),
        cooldown_after=kwargs.pop("cooldown_after", 100),
    )
    pool = ModelPool({"fake": ProviderConfig(name="fake", kind="fake")}, settings)
    chain = [Route(provider="fake", model=m) for m in models]
    return asyncio.run(
        call_chain(pool, chain, lambda r, b: [HumanMessage("review")], output_schema("findings"), Findings, **kwargs)
    )


def raising(exc: BaseException) -> Any:
    def script(call: Call) -> str:
        raise exc

    return script


def test_first_model_answers(fake: FakeProvider) -> None:
    fake.script("a", lambda c: GOOD)
    result = run_chain(fake, ["a", "b"])
    assert result.ok and result.route.model == "a"
    assert result.hops == [] and len(fake.calls) == 1
    assert result.usage.tokens_in == 11 and result.usage.tokens_out == 7


def test_connection_error_falls_back_to_next_model(fake: FakeProvider) -> None:
    fake.script("a", raising(ConnectionRefusedError("refused")))
    fake.script("b", lambda c: GOOD)
    result = run_chain(fake, ["a", "b"])
    assert result.ok and result.route.model == "b"
    assert [h["model"] for h in result.hops] == ["fake/a"]
    assert result.hops[0]["error_kind"] == "unavailable"


def test_invalid_json_gets_one_repair_on_the_same_model(fake: FakeProvider) -> None:
    answers = iter(["this is not json", GOOD])
    fake.script("a", lambda c: next(answers))
    result = run_chain(fake, ["a"])
    assert result.ok and result.hops == []
    calls = fake.calls_to("a")
    assert len(calls) == 2
    assert "invalid" in calls[1].user and "not valid JSON" in calls[1].user  # the repair names the problem


def test_output_invalid_twice_falls_back(fake: FakeProvider) -> None:
    fake.script("a", lambda c: json.dumps({"findings": [{"severity": "catastrophic"}]}))
    fake.script("b", lambda c: GOOD)
    result = run_chain(fake, ["a", "b"])
    assert result.route.model == "b"
    assert len(fake.calls_to("a")) == 2  # original + one repair, no more
    assert result.hops[0]["error_kind"] == "invalid_output"


def test_every_model_failing_reports_each_hop_and_never_raises(fake: FakeProvider) -> None:
    fake.script("a", raising(TimeoutError()))
    fake.script("b", raising(PermissionError("no key")))
    result = run_chain(fake, ["a", "b"])
    assert not result.ok and result.output is None
    assert [h["error_kind"] for h in result.hops] == ["unavailable", "config"]
    assert result.error is not None and result.error["kind"] == "config"


def test_timeout_per_call_is_enforced(fake: FakeProvider) -> None:
    fake.delay_s = 2.0
    fake.script("slow", lambda c: GOOD)
    result = run_chain(fake, ["slow"], timeout=0.05)
    assert not result.ok and result.hops[0]["error_kind"] == "unavailable"


def test_semantic_check_failure_triggers_repair(fake: FakeProvider) -> None:
    answers = iter([json.dumps({"findings": []}), GOOD])
    fake.script("a", lambda c: next(answers))
    seen: list[int] = []

    def check(output: Any) -> list[str]:
        seen.append(1)
        return ["need one more look"] if len(seen) == 1 else []

    assert run_chain(fake, ["a"], check=check).ok
    assert len(fake.calls_to("a")) == 2


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1}',
        '```json\n{"a": 1}\n```',
        '<think>hmm {"no": 0}</think>\n{"a": 1}',
        'Sure! Here it is: {"a": 1} Hope that helps.',
    ],
)
def test_parse_json_tolerates_wrapping(text: str) -> None:
    assert parse_json(text) == {"a": 1}


class StatusError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"status {status}")
        self.status_code = status


class RateLimitError(Exception):
    """Named like openai's; classification goes by class name, not import."""


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (StatusError(429), ProviderUnavailable),
        (StatusError(503), ProviderUnavailable),
        (StatusError(401), ProviderConfigError),
        (StatusError(404), ProviderConfigError),
        (RateLimitError("slow down"), ProviderUnavailable),
        (ConnectionRefusedError(), ProviderUnavailable),
        (TimeoutError(), ProviderUnavailable),
        (PermissionError("no key"), ProviderConfigError),
    ],
)
def test_classification_table(exc: Exception, expected: type[ProviderError]) -> None:
    error = classify(exc, "p/m")
    assert type(error) is expected
    assert error.model == "p/m" and "p/m" in error.message


def test_unknown_errors_are_generic_provider_errors() -> None:
    error = classify(ValueError("odd"), "p/m")
    assert type(error) is ProviderError and error.kind == "provider"
