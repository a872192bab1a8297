"""Model-swap-aware scheduling on a host that keeps one model loaded."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.models._schedule import ModelGate
from tests.process import orchestrator
from tests.servers.model_server import ModelServer

MODELS = ["a", "b", "c", "d"]


def test_the_gate_serves_the_loaded_model_first() -> None:
    async def main() -> tuple[list[str], int, list[bool]]:
        gate = ModelGate(capacity=1)
        order: list[str] = []
        lasts: list[bool] = []

        async def call(model: str) -> None:
            last = await gate.acquire(model)
            order.append(model)
            lasts.append(last)
            await asyncio.sleep(0.001)
            gate.release()

        await asyncio.gather(*(call(m) for m in "abcdabcdabcd"))
        return order, gate.loads, lasts

    order, loads, lasts = asyncio.run(main())
    assert loads == 4
    assert order == sorted(order, key=lambda m: order.index(m))  # each model's calls together
    assert lasts.count(True) == 3  # the last call of every model but the final one


@pytest.fixture
def host() -> Iterator[ModelServer]:
    with ModelServer({m: "canned" for m in MODELS}, load_delay_s=0.05) as server:
        yield server


def write_spec(tmp_path: Path, url: str, single_model: bool, concurrency: int) -> Path:
    (tmp_path / "ws").mkdir(exist_ok=True)
    (tmp_path / "ws" / "x").write_text("x = 1\n")
    roles = "".join(f"  r{m}: {{output: text, prompt: 'do $instruction'}}\n" for m in MODELS)
    models = ", ".join(f"r{m}: ollama/{m}" for m in MODELS)
    tasks = "".join(f"  - {{role: r{m}, instruction: t{i}}}\n" for i in range(3) for m in MODELS)  # a b c d a b ...
    host = f"max_concurrency: 1{', max_loaded_models: 1' if single_model else ''}"
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"version: 1\nname: swap\ngoal: g\nworkspace: ws\nproviders: {{ollama: {{base_url: '{url}', {host}}}}}\n"
        f"roles:\n{roles}models: {{planner: ollama/a, {models}}}\ntasks:\n{tasks}"
        f"limits: {{concurrency: {concurrency}}}\nfail_on: none\n"
    )
    return spec


@pytest.mark.parametrize("concurrency", [4, 12])
def test_each_model_loads_once_on_a_single_model_host(host: ModelServer, tmp_path: Path, concurrency: int) -> None:
    done = orchestrator("run", write_spec(tmp_path, host.url, True, concurrency), "--output-dir", tmp_path / "o")
    assert done.returncode == 0, done.stderr
    # 12 subtasks over 4 models, then the aggregation on the loaded model's host: 4 loads (+1 if it swaps back)
    assert host.state.loads <= 5 and sum(host.state.requests.values()) == 13


def test_without_the_declaration_calls_go_in_plan_order(host: ModelServer, tmp_path: Path) -> None:
    done = orchestrator("run", write_spec(tmp_path, host.url, False, 4), "--output-dir", tmp_path / "o")
    assert done.returncode == 0, done.stderr
    assert host.state.loads >= 12  # interleaved a b c d a b c d ...: a load almost every call
