"""The embedded model's worker process and its engine, for real (SmolLM2 through llama.cpp).

Behaviour, never time: a timed-out call stops the worker (its CPU time stops growing), a stuck
worker is killed, a killed worker is replaced and the run finishes, prefixes are reused, and
constrained answers parse and follow their schema whichever way they were constrained.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from orchestrator.errors import ProviderUnavailable
from orchestrator.models.contract import output_schema
from orchestrator.models.failure import classify
from orchestrator.providers._client import ModelWorker, ModelWorkerError, ModelWorkerLost, workers
from orchestrator.providers._llama import CONTEXT_WINDOW, weights_path

LONG = [SystemMessage(content="You are a storyteller."), HumanMessage(content="Tell a very long story about a ship.")]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for(condition: Any, limit_s: float = 120.0) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.05)


def model(**fields: Any) -> Any:
    from orchestrator.providers.embedded import EmbeddedChatModel

    return EmbeddedChatModel(model_path=str(weights_path()), **fields)


def test_a_lost_worker_is_an_unavailable_failure() -> None:
    error = classify(ModelWorkerLost("the embedded model's worker (pid 1) exited with code -9"), "local/smollm2")
    assert isinstance(error, ProviderUnavailable) and error.retryable and error.kind == "unavailable"


@pytest.mark.integration
@pytest.mark.embedded
def test_a_timed_out_call_stops_the_generation_and_the_worker_serves_on() -> None:
    chat = model(max_tokens=4000)
    worker = chat.worker()

    async def timed_out() -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1.0):
                await chat.ainvoke(LONG)

    wait_for(worker.ready.is_set)
    before = cpu_seconds(worker.pid)
    asyncio.run(timed_out())
    wait_for(lambda: not worker.pending)  # the worker confirmed the stop (or was killed)
    during = cpu_seconds(worker.pid) if worker.alive else None
    time.sleep(1.0)
    if during is not None:  # stopped, not killed: it computes nothing more
        assert during > before, "the call never ran"
        assert cpu_seconds(worker.pid) - during < 0.2, "the worker kept generating after the timeout"
        assert chat.worker() is worker
    answer = chat.invoke([HumanMessage(content="Say hi.")], max_tokens=4)
    assert answer.usage_metadata["output_tokens"] > 0


@pytest.mark.integration
@pytest.mark.embedded
def test_a_worker_that_does_not_stop_is_killed_and_replaced() -> None:
    chat = model(max_tokens=4000)
    stuck = chat.worker()
    wait_for(stuck.ready.is_set)

    async def call() -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1.0):
                task = asyncio.ensure_future(chat.ainvoke(LONG))
                await asyncio.sleep(0.3)
                os.kill(stuck.pid, signal.SIGSTOP)  # frozen: it cannot answer the cancellation
                await task

    asyncio.run(call())
    wait_for(lambda: stuck.process.poll() is not None, 30)
    assert stuck.process.returncode == -signal.SIGKILL and not stuck.alive
    fresh = chat.worker()
    assert fresh is not stuck and fresh.pid != stuck.pid
    assert chat.invoke([HumanMessage(content="Say hi.")], max_tokens=4).usage_metadata["output_tokens"] > 0


@pytest.mark.integration
@pytest.mark.embedded
def test_a_killed_worker_is_replaced_and_the_run_finishes(tmp_path: Path) -> None:
    from bench.model import quick_spec
    from orchestrator import RunOptions, load_spec, prepare_workflow, run_workflow

    spec = quick_spec(tmp_path)  # one debug subtask of the quickstart
    killed: list[int] = []

    def killer() -> None:  # SIGKILL the worker in the middle of the run's first call
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            busy = [w for w in workers() if w.pending and w.alive and w.ready.is_set()]
            if busy:
                time.sleep(0.2)
                killed.append(busy[0].pid)
                os.kill(busy[0].pid, signal.SIGKILL)
                return
            time.sleep(0.02)

    thread = threading.Thread(target=killer)
    thread.start()
    outcome = run_workflow(prepare_workflow(load_spec(spec)), RunOptions(write=False, checkpoint="off", cache=False))
    thread.join()
    assert killed, "the run never called the model"
    subtask = outcome.result.subtasks[0]
    assert outcome.exit_code == 0 and subtask.status == "ok", subtask.error
    assert subtask.attempts >= 2  # the first attempt died with its worker; a fresh worker answered
    assert all(w.pid != killed[0] for w in workers() if w.alive)


# ---- the engine, in this process


@pytest.fixture(scope="module")
def engine() -> Any:
    from orchestrator.providers._engine import Engine

    return Engine(str(weights_path()), CONTEXT_WINDOW, parallel=2, threads=os.cpu_count() or 1)


def run_all(engine: Any, requests: list[dict[str, Any]]) -> dict[int, Any]:
    sequences = {r["id"]: engine.submit(r) for r in requests}
    ended: dict[int, str] = {}
    while not engine.idle():
        ended.update({s.id: how for s, how in engine.step()})
    assert all(how == "done" for how in ended.values()), ended
    return {ident: sequences[ident].result() for ident in ended}


def request(ident: int, system: str, user: str, schema: dict[str, Any] | None, **more: Any) -> dict[str, Any]:
    return {
        "id": ident,
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
        "response_format": {"type": "json_object", "schema": schema} if schema else None,
        "max_tokens": 200,
        **more,
    }


SYSTEM = "You review Python code. " + "def add(a, b):\n    return a - b\n" * 20


@pytest.mark.integration
@pytest.mark.embedded
@pytest.mark.parametrize("method", ["llguidance", "grammar"])
def test_constrained_answers_parse_and_follow_their_schema(engine: Any, method: str) -> None:
    from jsonschema import Draft202012Validator

    finding = output_schema("findings")["properties"]["findings"]["items"]
    schema = {  # a finding's shape, bounded so the whole answer fits in 200 tokens
        "type": "object",
        "properties": {"findings": {"type": "array", "maxItems": 2, "items": {
            "type": "object", "additionalProperties": False, "required": ["severity", "line", "title"],
            "properties": {"severity": finding["properties"]["severity"], "line": {"type": "integer"},
                           "title": {"type": "string", "maxLength": 40}}}}},
        "required": ["findings"],
    }  # fmt: skip
    engine.method = method
    try:
        results = run_all(engine, [request(i, SYSTEM, f"Review it ({i}).", schema, seed=i) for i in (1, 2)])
    finally:
        engine.method = "llguidance"
    for result in results.values():
        assert result["finish_reason"] == "stop"
        Draft202012Validator(schema).validate(json.loads(result["text"]))


@pytest.mark.integration
@pytest.mark.embedded
def test_a_schema_llguidance_cannot_compile_falls_back_to_the_grammar(engine: Any) -> None:
    from orchestrator.providers._constraint import GrammarCheck

    odd = {"type": "object", "properties": {"a": {"type": "string", "format": "no-such-format"}}, "required": ["a"]}
    sequence = engine.submit(request(9, "Answer.", "Give a.", odd))
    assert isinstance(sequence.constraint, GrammarCheck)
    while not engine.idle():
        engine.step()
    assert isinstance(json.loads(sequence.result()["text"])["a"], str)


@pytest.mark.integration
@pytest.mark.embedded
def test_calls_sharing_a_prefix_reuse_the_cache(engine: Any) -> None:
    system = "You document Python code. " + "def sub(a, b):\n    return a + b\n" * 20
    first = run_all(engine, [request(20, system, "Name one function.", None, max_tokens=8)])[20]
    second = run_all(engine, [request(21, system, "Name another function.", None, max_tokens=8)])[21]
    system_tokens = len(engine.words.tokenize(system, add_special=False))
    assert first["cached_tokens"] < system_tokens <= second["cached_tokens"] < second["prompt_tokens"]


@pytest.mark.integration
@pytest.mark.embedded
def test_a_cancelled_call_leaves_the_others_running(engine: Any) -> None:
    calls = [engine.submit(request(i, SYSTEM, f"Story {i}.", None, max_tokens=60)) for i in (30, 31)]
    engine.step()
    engine.cancelled.add(30)
    ended: dict[int, str] = {}
    while not engine.idle():
        ended.update({s.id: how for s, how in engine.step()})
    assert ended == {30: "cancelled", 31: "done"} and calls[1].result()["completion_tokens"] > 0


@pytest.mark.integration
@pytest.mark.embedded
def test_a_schema_no_constraint_can_compile_fails_that_call_only() -> None:
    chat = model(max_tokens=8)
    hostile = {"type": "object", "properties": {"a": {"$ref": 1}}}  # llama-cpp-python's converter raises
    with pytest.raises(ModelWorkerError):
        chat.invoke([HumanMessage(content="Hi.")], response_format={"type": "json_object", "schema": hostile})
    assert chat.invoke([HumanMessage(content="Say hi.")]).usage_metadata["output_tokens"] > 0


def test_a_worker_that_cannot_start_fails_its_calls() -> None:
    broken = ModelWorker({"path": "/no/such/model.gguf", "window": 512})
    _, future = broken.submit({"messages": []})
    with pytest.raises(ModelWorkerLost, match="exited with code"):
        future.result(timeout=120)
