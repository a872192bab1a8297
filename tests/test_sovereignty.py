"""Data sovereignty, proved on the wire: every request goes through a recording proxy, which is
compared with the run's egress report; confidential files never reach a non-local model; a
planted secret appears in no file the run writes; telemetry stays off."""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.process import orchestrator
from tests.servers.model_server import ModelServer
from tests.servers.proxy import RecordingProxy

REMOTE = "models.example"  # a host on the internet, played by a loopback server behind the proxy
CONFIDENTIAL = "CONFIDENTIAL-MARKER-7f3a"
PUBLIC = "PUBLIC-MARKER-19c2"


@pytest.fixture
def remote() -> Iterator[ModelServer]:
    with ModelServer({m: "canned" for m in ("m", "p")}) as server:
        yield server


@pytest.fixture
def local() -> Iterator[ModelServer]:
    with ModelServer({m: "canned" for m in ("m", "p")}) as server:
        yield server


@pytest.fixture
def proxy(remote: ModelServer) -> Iterator[RecordingProxy]:
    with RecordingProxy({REMOTE: remote.url.removeprefix("http://")}) as running:
        yield running


def proxied(proxy: RecordingProxy, **extra: str) -> dict[str, str]:
    """All traffic through the proxy, loopback excepted (it is this machine)."""
    return {"HTTP_PROXY": proxy.url, "HTTPS_PROXY": proxy.url, "NO_PROXY": "127.0.0.1,localhost", **extra}


def write_spec(
    tmp_path: Path, local_url: str, policy: str = "", tasks: list[str] | None = None, key_env: str = ""
) -> Path:
    ws = tmp_path / "ws"
    (ws / "secret").mkdir(parents=True, exist_ok=True)
    (ws / "secret" / "keys.py").write_text(f"SIGNING_KEY = '{CONFIDENTIAL}'\n")
    (ws / "public.py").write_text(f"GREETING = '{PUBLIC}'\n")
    key = f", api_key_env: {key_env}" if key_env else ""
    lines = [
        "version: 1",
        "name: sovereign",
        "goal: Review the code.",
        "workspace: ws",
        "providers:",
        f"  remote: {{kind: openai, base_url: 'http://{REMOTE}/v1'}}",
        f"  onprem: {{kind: openai, base_url: '{local_url}/v1'{key}}}",
        "models:",
        "  planner: [remote/p, onprem/p]",
        "  debug: [remote/m, onprem/m]",
        "tasks:",
        *(f"  - {task}" for task in (tasks or ["{role: debug, instruction: look, files: [public.py]}"])),
        "fail_on: none",
    ]
    spec = tmp_path / "spec.yaml"
    spec.write_text("\n".join(lines) + "\n" + policy)
    return spec


def result_of(out: Path) -> dict[str, Any]:
    return json.loads((out / "result.json").read_text())


def assert_egress_matches(result: dict[str, Any], proxy: RecordingProxy) -> None:
    """The report names exactly the hosts the proxy saw, with the same requests and bytes."""
    seen: dict[str, Counter[str]] = defaultdict(Counter)
    for exchange in proxy.state.log:
        seen[exchange.host]["requests"] += 1
        seen[exchange.host]["bytes_sent"] += len(exchange.body)
        seen[exchange.host]["bytes_received"] += exchange.bytes_received
    reported = {
        h["host"]: Counter(requests=h["requests"], bytes_sent=h["bytes_sent"], bytes_received=h["bytes_received"])
        for h in result["egress"]["hosts"]
        if h["host"] in seen or not h["host"].startswith("127.0.0.1")
    }
    assert reported == dict(seen)


def test_egress_report_matches_the_proxy_log_exactly(proxy: RecordingProxy, local: ModelServer, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, local.url)
    done = orchestrator("run", spec, "--output-dir", tmp_path / "out", "--no-cache", env=proxied(proxy))
    assert done.returncode == 0, done.stderr
    result = result_of(tmp_path / "out")
    assert {e.host for e in proxy.state.log} == {REMOTE}  # nothing but the configured provider
    assert len(proxy.state.log) == 2  # the subtask and the aggregation, on the remote models
    assert_egress_matches(result, proxy)
    (host,) = [h for h in result["egress"]["hosts"] if h["host"] == REMOTE]
    assert host["models"] == ["remote/m", "remote/p"] and "data_class internal" in host["rules"][0]
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## Egress" in report and f"| {REMOTE} |" in report


def test_a_confidential_glob_keeps_its_files_away_from_non_local_models(
    proxy: RecordingProxy, local: ModelServer, tmp_path: Path
) -> None:
    tasks = [
        "{role: debug, instruction: check the keys, files: [secret/keys.py]}",
        "{role: debug, instruction: check the greeting, files: [public.py]}",
    ]
    policy = "policy:\n  files: {'secret/**': confidential}\n"
    spec = write_spec(tmp_path, local.url, policy=policy, tasks=tasks)
    done = orchestrator("run", spec, "--output-dir", tmp_path / "out", "--no-cache", env=proxied(proxy))
    assert done.returncode == 0, done.stderr
    result = result_of(tmp_path / "out")
    by_file = {s["files"][0]: s for s in result["subtasks"]}
    assert (
        by_file["secret/keys.py"]["model"] == "onprem/m" and by_file["secret/keys.py"]["data_class"] == "confidential"
    )
    assert by_file["public.py"]["model"] == "remote/m" and by_file["public.py"]["data_class"] == "internal"
    # the aggregation repeats what the confidential subtask saw, so it is confidential too
    assert result["aggregate"]["model"] == "onprem/p" and result["aggregate"]["data_class"] == "confidential"
    sent_out = b"".join(e.body for e in proxy.state.log)
    assert PUBLIC.encode() in sent_out and CONFIDENTIAL.encode() not in sent_out  # the proxy log proves it
    assert any(CONFIDENTIAL in body for body in local.state.bodies)  # it was processed on this machine
    assert_egress_matches(result, proxy)
    excluded = result["policy"]["excluded"]["debug [confidential]"]
    assert excluded[0]["model"] == "remote/m" and "confidential" in excluded[0]["reason"]


def test_a_policy_with_no_allowed_model_exits_5_at_validate_time(local: ModelServer, tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path,
        local.url,
        policy="policy:\n  files: {'secret/**': confidential}\n",
        tasks=["{role: debug, instruction: check the keys, files: [secret/keys.py]}"],
    )
    spec.write_text(spec.read_text().replace("debug: [remote/m, onprem/m]", "debug: remote/m"))
    done = orchestrator("validate", spec)
    assert done.returncode == 5
    assert "'debug [confidential]' has no allowed model" in done.stderr and "remote/m" in done.stderr
    # the same spec is fine when the subtask does not see the confidential file
    spec.write_text(spec.read_text().replace("files: [secret/keys.py]", "files: [public.py]"))
    assert orchestrator("validate", spec).returncode == 0


def test_telemetry_is_off_even_when_the_environment_asks_for_tracing(
    proxy: RecordingProxy, local: ModelServer, tmp_path: Path
) -> None:
    tracing = {
        "LANGSMITH_TRACING": "true",
        "LANGCHAIN_TRACING_V2": "true",
        "LANGSMITH_ENDPOINT": "http://telemetry.example",
        "LANGSMITH_API_KEY": "lsv2-test-key-0000000000",
    }
    spec = write_spec(tmp_path, local.url)
    done = orchestrator("run", spec, "--output-dir", tmp_path / "out", "--no-cache", env=proxied(proxy, **tracing))
    assert done.returncode == 0, done.stderr
    assert {e.host for e in proxy.state.log} == {REMOTE}  # no trace was sent anywhere
    # the witness works: asked for explicitly, traces do go out
    proxy.state.log.clear()
    traced = orchestrator(
        "run", spec, "--output-dir", tmp_path / "o2", "--no-cache", "--trace", env=proxied(proxy, **tracing)
    )
    assert traced.returncode == 0
    assert {e.host for e in proxy.state.log} == {REMOTE, "telemetry.example"}


def test_without_tracing_variables_only_configured_providers_are_contacted(
    proxy: RecordingProxy, local: ModelServer, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGSMITH", "LANGCHAIN"))}
    spec = write_spec(tmp_path, local.url)
    done = orchestrator("run", spec, "--output-dir", tmp_path / "out", "--no-cache", env={**env, **proxied(proxy)})
    assert done.returncode == 0
    assert {e.host for e in proxy.state.log} == {REMOTE}


def test_a_planted_secret_appears_in_no_file_the_run_writes(local: ModelServer, tmp_path: Path) -> None:
    secret = "sk-planted-5eCr3t-0123456789abcdef"
    local.fault("echo_auth", model="m", times=1, status=401)  # the server repeats the key in its error
    spec = write_spec(tmp_path, local.url, key_env="ONPREM_API_KEY")
    text = spec.read_text().replace("models:", f"  spare: {{kind: openai, base_url: '{local.url}/v1'}}\nmodels:")
    text = text.replace("debug: [remote/m, onprem/m]", "debug: [onprem/m, spare/m]").replace(
        "remote/p, onprem/p", "spare/p"
    )
    spec.write_text(text)  # onprem refuses (echoing the key); spare, keyless, takes over
    (tmp_path / "ws" / "config.py").write_text(f"API_KEY = '{secret}'  # committed by mistake\n")
    out, recordings = tmp_path / "out", tmp_path / "rec"
    args = ("run", spec, "--output-dir", out, "--record", recordings, "-v", "--log-format", "json", "--format", "json")
    done = orchestrator(*args, "--format", "markdown", "--format", "sarif", "--format", "junit",
                        env={"ONPREM_API_KEY": secret, "ORCHESTRATOR_TRUSTED_KEYS": "ONPREM_API_KEY"})  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = result_of(out)
    hop = result["subtasks"][0]["fallbacks"][0]
    assert hop["error_kind"] == "config" and "***" in hop["message"]  # the echo was caught...
    assert any(secret in body for body in local.state.bodies) is False  # ...and no prompt carried the key
    written = [*out.rglob("*"), *recordings.rglob("*")]
    written += [*Path(os.environ["ORCHESTRATOR_DATA_DIR"]).rglob("*"), *Path(os.environ["XDG_STATE_HOME"]).rglob("*")]
    assert any(p.name == "checkpoints.sqlite" for p in written) and any(p.suffix == ".sarif" for p in written)
    for path in written:
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    assert secret not in done.stdout and secret not in done.stderr  # nor in the logs
