"""A busy machine is not a broken model: time waiting does not count against `timeout_s`, a local
model's timeouts never cool it down (a remote model's still do), and the report says where the
time went. On scripted model servers (canned answers on loopback, a recording proxy playing a
remote host); the embedded model under real load is in test_load_embedded.py."""

from __future__ import annotations

import io
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator import RunOptions, run_workflow
from orchestrator.runtime.progress import LineProgress
from orchestrator.spec import load_spec
from orchestrator.workflow import prepare_workflow
from tests.servers.model_server import ModelServer
from tests.servers.proxy import RecordingProxy

pytestmark = pytest.mark.integration
REMOTE = "models.example"  # a host on the internet, played by a loopback server behind the proxy


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer({"m": "canned", "p": "canned"}) as running:
        yield running


def write_spec(tmp_path: Path, base_url: str, here: str, tasks: int, limits: str, provider: str = "") -> Path:
    """`tasks` reviews on `server/m` at `base_url`; the planner (the aggregation) on `here`."""
    (tmp_path / "ws").mkdir(exist_ok=True)
    (tmp_path / "ws" / "app.py").write_text("def add(a, b):\n    return a - b\n")
    spec = tmp_path / "spec.yaml"
    listed = "\n".join(f"  - {{role: architecture_review, instruction: review part {i}}}" for i in range(tasks))
    spec.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            name: load
            goal: Review app.py.
            workspace: ws
            providers:
              server: {{kind: openai, base_url: '{base_url}/v1'{provider}}}
              here: {{kind: openai, base_url: '{here}/v1'}}
            models: {{planner: here/p, architecture_review: server/m}}
            roles: {{architecture_review: {{tools: []}}}}
            tasks:
            """
        )
        + listed
        + f"\nlimits: {{{limits}}}\nfail_on: none\n"
    )
    return spec


def run(spec: Path, tmp_path: Path, progress: Any = None) -> tuple[int, dict[str, Any], str]:
    options = RunOptions(output_dir=tmp_path / "out", cache=False, **({"progress": progress} if progress else {}))
    outcome = run_workflow(prepare_workflow(load_spec(spec)), options)
    return outcome.exit_code, outcome.result.model_dump(mode="json"), (tmp_path / "out" / "report.md").read_text()


def test_time_waiting_for_a_model_does_not_count_against_its_timeout(
    server: ModelServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the server answers one call at a time, each in 0.5 s; eight calls come at once, and the
    # provider's one slot queues them here: the last waits 3.5 s or more, past the 3 s timeout
    server.state.delay_s = 0.5
    limits = "concurrency: 8, timeout_s: 3, retries: 0"
    spec = write_spec(tmp_path, server.url, server.url, 8, limits, provider=", max_concurrency: 1")
    monkeypatch.setattr(os, "getloadavg", lambda: (64.0, 64.0, 64.0))  # the hint's only input: a busy machine
    lines = io.StringIO()
    code, result, report = run(spec, tmp_path, LineProgress(lines))
    assert code == 0
    assert [s["status"] for s in result["subtasks"]] == ["ok"] * 8
    assert all(not s["fallbacks"] for s in result["subtasks"])
    waited = max(s["queued_s"] for s in result["subtasks"])
    assert waited > 3.0, "one call waited longer than timeout_s and still answered"
    assert result["totals"]["queued_s"] >= waited
    assert "## Waiting" in report and "for server/m, then" in report
    assert "note: this machine is busy (load 64.0" in lines.getvalue() and "server/m" in lines.getvalue()


@pytest.fixture
def proxy(server: ModelServer) -> Iterator[RecordingProxy]:
    """`models.example` (no such host here: only the proxy reaches it) is played by `server`."""
    with RecordingProxy({REMOTE: server.url.removeprefix("http://")}) as running:
        yield running


@pytest.mark.parametrize("where", ["local", "remote"])
def test_timeouts_cool_down_a_remote_model_but_never_a_local_one(
    where: str, server: ModelServer, proxy: RecordingProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    server.fault("hang", model="m", times=3, hang_s=5)
    url = server.url if where == "local" else f"http://{REMOTE}"
    limits = "concurrency: 1, timeout_s: 1, retries: 0, cooldown_after: 3"
    _, result, report = run(write_spec(tmp_path, url, server.url, 4, limits), tmp_path)
    hops = [[h["error_kind"] for h in s["fallbacks"]] for s in result["subtasks"]]
    assert hops[:3] == [["timeout"]] * 3
    for sub in result["subtasks"][:3]:
        (hop,) = sub["fallbacks"]
        assert hop["served_s"] >= 1.0 and hop["tokens"] == 0 and "timed out" in hop["message"]
    fourth = result["subtasks"][3]
    if where == "local":  # slow is not broken: the fourth call is made, and answered
        assert fourth["status"] == "ok" and not fourth["fallbacks"]
        assert server.state.requests["m"] == 4
    else:  # a remote model that keeps timing out is cooled down, as before
        assert hops[3] == ["cooldown"] and fourth["status"] == "failed"
        assert server.state.requests["m"] == 3
        assert "cooldown" in report


@pytest.mark.parametrize("where", ["local", "remote"])
def test_a_local_model_that_timed_out_is_retried_with_twice_the_time(
    where: str, server: ModelServer, proxy: RecordingProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    server.state.delay_s = 1.5  # every answer takes 1.5 s: past timeout_s, within twice it
    url = server.url if where == "local" else f"http://{REMOTE}"
    limits = "concurrency: 1, timeout_s: 1, retries: 1, backoff_s: 0.05"
    _, result, _ = run(write_spec(tmp_path, url, server.url, 1, limits), tmp_path)
    (review,) = result["subtasks"]
    if where == "local":  # slow, not stuck: the retry had 2 s, and answered
        assert review["status"] == "ok" and review["attempts"] == 2
    else:  # a remote model gets the same timeout on every attempt
        assert review["status"] == "failed" and review["fallbacks"][0]["attempts"] == 2
        assert review["fallbacks"][0]["error_kind"] == "timeout"
