"""Fallback chains, repair of invalid output, and the failure classification table."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from orchestrator import CallSettings, ProviderConfig
from orchestrator.catalog import Route
from orchestrator.errors import ProviderConfigError, ProviderError, ProviderUnavailable
from orchestrator.models import contract_for
from orchestrator.models._structured import parse_json
from orchestrator.models.chain import call_chain
from orchestrator.models.failure import classify
from orchestrator.models.pool import ModelPool
from orchestrator.testing import Call, FakeProvider

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
        call_chain(pool, chain, lambda r, b: [HumanMessage("review")], contract_for("findings"), **kwargs)
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
    assert [h["error_kind"] for h in result.hops] == ["timeout", "config"]
    assert result.error is not None and result.error["kind"] == "config"


def test_timeout_per_call_is_enforced(fake: FakeProvider) -> None:
    fake.delay_s = 2.0
    fake.script("slow", lambda c: GOOD)
    result = run_chain(fake, ["slow"], timeout=0.05)
    assert not result.ok and result.hops[0]["error_kind"] == "timeout"


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


# ---------------------------------------------------------------- retries, Retry-After, cooldown


class HTTPError(Exception):
    """Shaped like an SDK's status error: a status code and a response with headers."""

    def __init__(self, status: int, retry_after: str | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.status_code = status
        self.response = type("R", (), {"headers": {"retry-after": retry_after} if retry_after else {}})()


def failing_then(answer: str, *errors: BaseException) -> Any:
    pending = list(errors)

    def script(call: Call) -> str:
        if pending:
            raise pending.pop(0)
        return answer

    return script


def test_transient_failure_is_retried_on_the_same_model(fake: FakeProvider) -> None:
    fake.script("a", failing_then(GOOD, HTTPError(503), ConnectionResetError("reset")))
    result = run_chain(fake, ["a", "b"])
    assert result.ok and result.route.model == "a" and result.hops == []
    assert result.attempts == 3 and len(fake.calls_to("a")) == 3


def test_each_attempt_is_a_span_of_its_own_and_a_retry_never_hides(fake: FakeProvider) -> None:
    """Two failures retried on the same model, then its answer: three model spans one after the
    other (the failed ones `retried`, with their error kind), the Retry-After wait between them."""
    fake.script("a", failing_then(GOOD, HTTPError(429, retry_after="0.2"), HTTPError(503)))
    result = run_chain(fake, ["a", "b"])
    assert result.ok and result.attempts == 3
    models = [s for s in result.spans if s["kind"] == "model"]
    assert [(s["name"], s["status"], s["retried"]) for s in models] == [
        ("fake/a", "unavailable", True), ("fake/a", "unavailable", True), ("fake/a", "ok", False)
    ]  # fmt: skip
    assert [s["detail"] for s in models] == ["attempt 1 of 3, retried", "attempt 2 of 3, retried", "attempt 3 of 3"]
    assert models[0]["tokens_in"] is None and models[2]["tokens_in"] is not None  # tokens: the answer's
    for before, after in itertools.pairwise(models):
        assert before["started_ms"] + before["duration_ms"] <= after["started_ms"]  # one after the other
    (wait,) = [s for s in result.spans if s["kind"] == "wait" and s["name"] == "rate_limit"]
    assert wait["duration_ms"] >= 200
    assert models[0]["started_ms"] + models[0]["duration_ms"] <= wait["started_ms"]
    assert wait["started_ms"] + wait["duration_ms"] <= models[1]["started_ms"]


def test_a_model_that_answers_at_once_is_one_span(fake: FakeProvider) -> None:
    fake.script("a", lambda c: GOOD)
    result = run_chain(fake, ["a"])
    (model,) = [s for s in result.spans if s["kind"] == "model"]
    assert model["status"] == "ok" and not model["retried"] and model["detail"] == ""


def test_retries_are_bounded_then_the_chain_falls_back(fake: FakeProvider) -> None:
    fake.script("a", raising(HTTPError(500)))
    fake.script("b", lambda c: GOOD)
    result = run_chain(fake, ["a", "b"], retries=1)
    assert result.route.model == "b"
    assert len(fake.calls_to("a")) == 2 and result.hops[0]["attempts"] == 2


def test_retry_after_is_honoured(fake: FakeProvider) -> None:
    fake.script("a", failing_then(GOOD, HTTPError(429, retry_after="0.3")))
    result = run_chain(fake, ["a"])
    assert result.ok and result.attempts == 2
    assert result.waited_s >= 0.3  # backoff_s is 0 in these tests: the wait came from Retry-After


def test_retry_after_longer_than_max_wait_falls_back_at_once(fake: FakeProvider) -> None:
    fake.script("a", raising(HTTPError(429, retry_after="3600")))
    fake.script("b", lambda c: GOOD)
    result = run_chain(fake, ["a", "b"])
    assert result.route.model == "b" and len(fake.calls_to("a")) == 1
    assert result.hops[0]["error_kind"] == "unavailable" and result.hops[0]["status"] == 429


def pool_with(settings: CallSettings, *providers: str) -> ModelPool:
    return ModelPool({p: ProviderConfig(name=p, kind="fake") for p in providers}, settings)


def chain_on(pool: ModelPool, refs: list[str]) -> Any:
    routes = [Route(provider=r.split("/")[0], model=r.split("/")[1]) for r in refs]
    return asyncio.run(call_chain(pool, routes, lambda r, b: [HumanMessage("x")], contract_for("findings")))


@pytest.mark.parametrize("status", [401, 403, 404, 400])
def test_configuration_errors_fall_back_without_retrying(fake: FakeProvider, status: int) -> None:
    fake.script("a", raising(HTTPError(status)))
    fake.script("b", lambda c: GOOD)
    result = chain_on(pool_with(CallSettings(backoff_s=0), "api", "other"), ["api/a", "other/b"])
    assert result.route.ref == "other/b" and len(fake.calls_to("a")) == 1
    assert result.hops[0]["error_kind"] == "config" and result.hops[0]["status"] == status


def test_a_host_that_keeps_refusing_is_cooled_down_for_the_run(fake: FakeProvider) -> None:
    fake.script("down", raising(ConnectionRefusedError("refused")))
    fake.script("other", raising(ConnectionRefusedError("refused")))
    fake.script("ok", lambda c: GOOD)
    pool = pool_with(CallSettings(backoff_s=0, retries=2, cooldown_after=3), "host", "api")
    first = chain_on(pool, ["host/down", "api/ok"])
    assert first.route.ref == "api/ok" and len(fake.calls_to("down")) == 3
    # every later call skips the host without a request, whatever the model
    for _ in range(5):
        later = chain_on(pool, ["host/other", "host/down", "api/ok"])
        assert later.route.ref == "api/ok"
        assert [h["error_kind"] for h in later.hops] == ["cooldown", "cooldown"]
    assert len(fake.calls_to("down")) == 3 and fake.calls_to("other") == []


def test_a_rate_limited_model_is_cooled_down_alone(fake: FakeProvider) -> None:
    fake.script("busy", raising(HTTPError(429)))
    fake.script("free", lambda c: GOOD)
    pool = pool_with(CallSettings(backoff_s=0, retries=2, cooldown_after=3), "api")
    assert chain_on(pool, ["api/busy", "api/free"]).route.ref == "api/free"
    again = chain_on(pool, ["api/busy", "api/free"])
    assert again.hops[0]["error_kind"] == "cooldown" and again.route.ref == "api/free"  # same provider, other model
    assert len(fake.calls_to("busy")) == 3


def test_refused_credentials_cool_the_provider_at_once(fake: FakeProvider) -> None:
    fake.script("a", raising(HTTPError(401)))
    fake.script("b", lambda c: GOOD)
    fake.script("c", lambda c: GOOD)
    pool = pool_with(CallSettings(backoff_s=0), "api", "local")
    chain_on(pool, ["api/a", "local/c"])
    later = chain_on(pool, ["api/b", "local/c"])
    assert later.hops[0]["error_kind"] == "cooldown" and fake.calls_to("b") == []


class PickyProvider(FakeProvider):
    """An endpoint that rejects json_schema the way llama-cpp-python's server does."""

    def structured_modes(self, config: ProviderConfig) -> list[str]:
        return ["json_schema", "grammar", "json_object"]

    def structured_kwargs(self, schema: dict[str, Any], name: str, config: ProviderConfig, mode: str = "") -> Any:
        return {"schema": schema, "mode": mode}

    def schema_in_prompt(self, mode: str) -> bool:
        return mode != "json_schema"

    def rejects_format(self, exc: BaseException) -> bool:
        return "response_format" in str(exc)


def test_structured_mode_steps_down_when_the_endpoint_rejects_it() -> None:
    from orchestrator.models.registry import registry

    picky = PickyProvider()

    class Rejection(HTTPError):
        def __str__(self) -> str:
            return "response_format type json_schema not supported"

    def script(call: Call) -> str:
        if call.kwargs["mode"] == "json_schema":
            raise Rejection(500)
        return GOOD

    picky.script("m", script)
    registry.register("picky", picky)
    try:
        pool = ModelPool({"p": ProviderConfig(name="p", kind="picky")}, CallSettings(backoff_s=0))
        route = [Route(provider="p", model="m")]
        run = lambda: asyncio.run(  # noqa: E731
            call_chain(pool, route, lambda r, b: [HumanMessage("x")], contract_for("findings"))
        )
        first = run()
        assert first.ok and first.mode == "grammar" and first.hops == []
        assert [c.kwargs["mode"] for c in picky.calls] == ["json_schema", "grammar"]
        assert "JSON Schema" in picky.calls[1].user  # the schema moved into the prompt
        second = run()
        assert second.mode == "grammar" and [c.kwargs["mode"] for c in picky.calls][2:] == ["grammar"]
    finally:
        registry.unregister("picky")


def test_concurrent_rejections_step_down_only_once() -> None:
    from orchestrator.models.registry import registry

    picky = PickyProvider()
    registry.register("picky", picky)
    try:
        pool = ModelPool({"p": ProviderConfig(name="p", kind="picky")}, CallSettings())
        bound = pool.get(Route(provider="p", model="m"))
        assert pool.mode(bound) == "json_schema"
        assert pool.downgrade(bound, "json_schema") == "grammar"
        assert pool.downgrade(bound, "json_schema") == "grammar"  # a second report of the same rejection
        assert pool.downgrade(bound, "grammar") == "json_object"
        assert pool.downgrade(bound, "json_object") is None
    finally:
        registry.unregister("picky")


def test_parse_json_accepts_raw_control_characters_in_strings() -> None:
    assert parse_json('{"a": "line one\nline\ttwo"}') == {"a": "line one\nline\ttwo"}
