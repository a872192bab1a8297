"""`orchestrator doctor` in this real environment: with bubblewrap (the sandbox probed and a
sandboxed `true` run), the real llama.cpp self-test, the installed extras, the operator policy
and its sources, the data folders, and with --online an Ollama-compatible server on Ollama's own
port saying which catalog tags are pulled; then with bubblewrap gone from PATH, where a
preferred sandbox is a warning with its fix and a required one blocks (exit 1). Keys are named,
their values never shown."""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from orchestrator.checks import bubblewrap_problem
from tests.machine import unavailable
from tests.process import run
from tests.servers.model_server import Handler, ServerState

ORCHESTRATOR = [sys.executable, "-m", "orchestrator"]
SECRET = "sk-or-v1-doctor-must-never-print-this-0123456789"


def environment(**extra: str) -> dict[str, str]:
    """This process's environment without CI (whose sandbox would be required), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "ORCHESTRATOR_POLICY", "OPENROUTER_API_KEY")}
    return {**env, **extra}


def doctor(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    done = run([*ORCHESTRATOR, "doctor", *args], env=env, cwd=cwd, timeout=900)
    return done.returncode, done.stdout, done.stderr


def findings(stdout: str) -> dict[str, dict[str, Any]]:
    return {f["area"]: f for f in json.loads(stdout)["findings"]}


@contextmanager
def ollama(models: dict[str, str]) -> Iterator[ServerState]:
    """The tests' model server on Ollama's own port (where the catalog's ollama provider points)."""
    try:
        httpd = ThreadingHTTPServer(("127.0.0.1", 11434), Handler)
    except OSError:
        unavailable("something already listens on the Ollama port 11434")
    httpd.daemon_threads = True
    httpd.state = ServerState(models=models)  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.state  # type: ignore[attr-defined]
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.needs(bubblewrap_problem())
@pytest.mark.xdist_group("ollama-port")
def test_doctor_here_with_bubblewrap_online(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("allow_countries: [FR, AE]\ntrusted_hosts: [gpu.corp.example]\n")
    env = environment(ORCHESTRATOR_POLICY=str(policy), ORCHESTRATOR_TRUSTED_HOSTS="box.corp.example")
    with ollama({"qwen3.5:27b": "canned", "jais:latest": "canned", "not-in-catalog:1b": "canned"}) as served:
        code, out, err = doctor("--online", "--json", "--timeout", "10", env=env, cwd=tmp_path)
    assert code == 0, (out, err)
    report = json.loads(out)
    assert report["ok"] and report["online"]
    found = findings(out)
    assert found["python"]["status"] == "ok" and found["python"]["details"]["executable"]
    llama = found["llama.cpp"]
    assert llama["status"] == "ok" and "prompt tokens evaluated" in llama["summary"], llama
    sandbox = found["sandbox"]
    assert sandbox["status"] == "ok" and "a sandboxed `true` ran" in sandbox["summary"], sandbox
    assert sandbox["details"]["bubblewrap"] and sandbox["details"]["mode"] == "preferred"
    assert all(found["extras"]["details"]["installed"].values())  # the test environment has every extra
    rules = found["policy"]["details"]
    assert rules["source"] == str(policy) and rules["rules"] == {
        "allow_countries": ["FR", "AE"],
        "trusted_hosts": ["gpu.corp.example"],
    }
    assert rules["sources"] == [f"$ORCHESTRATOR_POLICY {policy}", "$ORCHESTRATOR_TRUSTED_HOSTS"]
    assert rules["trusted_hosts"] == ["box.corp.example", "gpu.corp.example"]
    data = found["data"]["details"]
    assert data["state"]["writable"] and data["state"]["free_bytes"] > 0
    assert data["run data"]["path"] == os.environ["ORCHESTRATOR_DATA_DIR"]
    assert found["host ollama"]["status"] == "ok"
    tags = found["ollama models"]["details"]
    assert tags["pulled"] == ["qwen3.5:27b", "jais"]  # in the catalog's order; the third is no catalog tag
    assert "devstral-small:24b" in tags["not_pulled"] and "ollama pull" in found["ollama models"]["fix"]
    assert not served.requests  # the tags were listed, no model was called


def test_doctor_without_bubblewrap_warns_and_blocks_when_a_sandbox_is_required(tmp_path: Path) -> None:
    """PATH without bwrap (every other program of PATH is still there). The areas this is about
    (--only: the llama.cpp self-test, run by the test above, is seconds of both cores)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for folder in os.environ["PATH"].split(os.pathsep):
        if not folder or not Path(folder).is_dir():
            continue
        for program in Path(folder).iterdir():
            link = bin_dir / program.name
            if program.name != "bwrap" and not link.exists() and os.access(program, os.X_OK):
                link.symlink_to(program)
    env = environment(PATH=str(bin_dir), OPENROUTER_API_KEY=SECRET)
    assert shutil.which("bwrap", path=env["PATH"]) is None

    code, out, err = doctor("--only", "sandbox", "--only", "keys", env=env, cwd=tmp_path)
    assert code == 0, (out, err)  # a preferred sandbox: checks run unsandboxed, with a warning
    lines = out.splitlines()
    assert [line.split()[1] for line in lines if not line.startswith(" ")][:2] == ["sandbox", "keys"]  # only those
    (sandbox,) = [line for line in lines if line.split()[1:2] == ["sandbox"]]
    assert sandbox.startswith("WARN") and "bubblewrap is not installed" in sandbox
    fix = lines[lines.index(sandbox) + 1].strip()
    assert fix == "fix: apt-get install bubblewrap (Debian/Ubuntu), dnf install bubblewrap (Fedora)"
    (keys,) = [line for line in lines if line.split()[1:2] == ["keys"]]
    assert "set: OPENROUTER_API_KEY;" in keys
    assert SECRET not in out + err  # the key is named, never shown
    assert "nothing blocks a run in what was checked (sandbox, keys)" in out

    policy = tmp_path / "policy.yaml"
    policy.write_text("sandbox: required\n")
    code, out, err = doctor("--json", "--policy", str(policy), "--only", "sandbox", env=env, cwd=tmp_path)
    assert code == 1, (out, err)
    report = json.loads(out)
    blocked = [f["area"] for f in report["findings"] if f["status"] == "fail"]
    assert not report["ok"] and blocked == ["sandbox"] and len(report["findings"]) == 1
    sandbox_finding = findings(out)["sandbox"]
    assert "verify.sandbox is required (the operator policy's)" in sandbox_finding["summary"]
    assert sandbox_finding["fix"].startswith("apt-get install bubblewrap")
    assert SECRET not in out + err
