"""Hardening: each defect a hostile pull request or a flaky network found, as a test that failed
before its fix. (Durability after SIGKILL and SIGTERM is in test_durable.py; the trust model in
test_trust.py.)"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator import RunOptions, load_spec, prepare_workflow, run_workflow
from orchestrator.errors import SpecError
from orchestrator.testing import Call, FakeProvider, registry, valid_answer
from tests.process import orchestrator
from tests.servers.model_server import ModelServer


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer({m: "canned" for m in ("planner", "m", "spare")}) as running:
        yield running


def spec_at(tmp_path: Path, text: str, files: dict[str, str] | None = None) -> Path:
    for rel, content in (files or {"ws/app.py": "def add(a, b):\n    return a - b\n"}).items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(content)
    spec = tmp_path / "spec.yaml"
    spec.write_text(textwrap.dedent(text).lstrip())
    return spec


def result_of(out: Path) -> dict[str, Any]:
    return json.loads((out / "result.json").read_text())


FAKE = """
version: 1
name: hostile
goal: Review the code.
workspace: ws
providers: {fake: {kind: fake}}
models: {default: fake/m}
tasks: [{role: architecture_review, instruction: review}]
fail_on: none
"""


# ---------------------------------------------------------------- secrets


def test_a_spec_named_key_echoed_by_a_provider_never_reaches_the_log(server: ModelServer, tmp_path: Path) -> None:
    secret = "acme-7f3a9c"  # an ordinary variable name: not *_API_KEY, *_TOKEN, ...
    server.fault("echo_auth", model="m", times=5, status=401)
    spec = spec_at(
        tmp_path,
        f"""
        version: 1
        name: echo
        goal: g
        workspace: ws
        providers:
          acme: {{kind: openai, base_url: '{server.url}/v1', api_key_env: ACME_KEY}}
          spare: {{kind: openai, base_url: '{server.url}/v1'}}
        models: {{default: [acme/m, spare/spare], planner: spare/planner}}
        tasks: [{{role: debug, instruction: look}}]
        fail_on: none
        """,
    )
    env = {"ACME_KEY": secret, "ORCHESTRATOR_TRUSTED_KEYS": "ACME_KEY"}
    done = orchestrator("run", spec, "-v", "--output-dir", tmp_path / "out", env=env)
    assert done.returncode == 0, done.stderr
    assert "invalid credentials" in done.stderr  # the provider's message was logged...
    assert secret not in done.stderr and secret not in done.stdout  # ...with the key masked


def test_a_short_secret_is_masked_in_prompts_and_outputs(fake: FakeProvider, tmp_path: Path) -> None:
    def echo(call: Call) -> str:
        return json.dumps(
            {
                "findings": [
                    {
                        "severity": "low",
                        "file": "app.py",
                        "line": 1,
                        "title": "password is hunter2",
                        "detail": "d",
                        "suggestion": "s",
                    }
                ]
            }
        )

    fake.script("m", lambda call: echo(call) if call.kind == "findings" else valid_answer(call))
    spec = spec_at(tmp_path, FAKE, {"ws/app.py": "PASSWORD = 'hunter2'\n"})
    os.environ["DB_PASSWORD"] = "hunter2"
    try:
        run_workflow(prepare_workflow(load_spec(spec)), RunOptions(output_dir=tmp_path / "out", cache=False))
    finally:
        del os.environ["DB_PASSWORD"]
    assert all("hunter2" not in m.text for c in fake.calls for m in c.messages)  # never sent
    for written in (tmp_path / "out").rglob("*"):
        if written.is_file():
            assert "hunter2" not in written.read_text(), written
    assert "password is ***" in (tmp_path / "out" / "report.md").read_text()


@pytest.mark.parametrize(
    ("provider", "field"),
    [
        ("openrouter: {base_url: 'http://127.0.0.1:8080/v1'}", "providers.openrouter.base_url"),
        ("openrouter: {api_key_env: GITHUB_TOKEN}", "providers.openrouter.api_key_env"),
        ("mine: {kind: openai, base_url: 'http://127.0.0.1:8080/v1', api_key_env: GITHUB_TOKEN}", "api_key_env"),
    ],
)
def test_keys_go_only_where_the_operator_allows(tmp_path: Path, provider: str, field: str) -> None:
    spec = spec_at(tmp_path, f"version: 1\nname: k\ngoal: g\nworkspace: ws\nproviders:\n  {provider}\n")
    done = orchestrator("validate", spec)
    assert done.returncode == 2 and field in done.stderr, done.stderr
    name = provider.split(":")[0]
    trusted = {"ORCHESTRATOR_TRUSTED_KEYS": "GITHUB_TOKEN", "ORCHESTRATOR_TRUSTED_HOSTS": "127.0.0.1"}
    assert orchestrator("validate", spec, env=trusted).returncode == 0, name  # the operator may say so


def test_a_postgres_password_is_written_nowhere_and_a_keyword_dsn_is_postgres(tmp_path: Path) -> None:
    from orchestrator.runtime.checkpoints import is_postgres, public_location

    assert public_location("postgresql://u:pw@h/db?sslmode=require&password=hunter2") == (
        "postgresql://u@h/db?sslmode=require"
    )
    assert public_location("host=db dbname=runs password='a secret' user=u") == "host=db dbname=runs user=u"
    assert is_postgres("host=127.0.0.1 port=1 dbname=x password=hunter2") and not is_postgres("runs.sqlite")
    spec = spec_at(tmp_path, "version: 1\nname: pg\ngoal: g\nworkspace: ws\ntasks: [{role: debug, instruction: x}]\n")
    dsn = "host=127.0.0.1 port=1 dbname=x user=u password=hunter2 connect_timeout=2"
    done = orchestrator("run", spec, "--checkpoint", dsn, cwd=tmp_path)
    assert done.returncode in (2, 3), done.stderr  # 2: the postgres extra is missing; 3: the database is down
    assert "hunter2" not in done.stderr + done.stdout
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("host=")]  # not taken for a SQLite file


def test_tracing_is_egress_under_the_policy(tmp_path: Path) -> None:
    spec = spec_at(
        tmp_path,
        """
        version: 1
        name: traced
        goal: g
        workspace: ws
        policy: {files: {'app.py': confidential}}
        tasks: [{role: debug, instruction: x}]
        """,
    )
    done = orchestrator("run", spec, "--trace", env={"LANGSMITH_ENDPOINT": "https://api.smith.langchain.com"})
    assert done.returncode == 5 and "LangSmith at api.smith.langchain.com would receive" in done.stderr
    assert "confidential data stays on this machine" in done.stderr


# ---------------------------------------------------------------- injection


def test_spec_strings_cannot_forge_ci_log_lines(tmp_path: Path) -> None:
    forged = "a\\n::error file=README.md,line=1::forged\\n::stop-commands::x"
    spec = spec_at(
        tmp_path,
        f'version: 1\nname: f\ngoal: g\nworkspace: ws\ntasks: [{{role: debug, instruction: x, id: "{forged}"}}]\n',
    )
    done = orchestrator("validate", spec, env={"GITHUB_ACTIONS": "true"})
    assert done.returncode == 2 and "tasks.0.id" in done.stderr
    spec.write_text(f'version: 1\nname: f\ngoal: g\nworkspace: ws\nmodels: {{debug: "ollama/x{forged}"}}\n')
    done = orchestrator("validate", spec, env={"GITHUB_ACTIONS": "true"})
    assert done.returncode == 2 and "models.debug" in done.stderr  # a model name has no control characters
    lines = (done.stdout + done.stderr).splitlines()
    assert not [line for line in lines if line.startswith("::")], lines
    import io

    from orchestrator.runtime.progress import LineProgress

    stream = io.StringIO()  # what a model says reaches progress lines escaped, on one line
    LineProgress(stream).finished("debug", forged, "ok", "ollama/x\x1b[2J" + forged, 10, 5)
    LineProgress(stream).note("the plan " + forged)
    printed = stream.getvalue().splitlines()
    assert len(printed) == 2 and not [line for line in printed if line.startswith("::")]
    assert "\\n::error" in printed[1] and "\x1b" not in stream.getvalue() and "\\x1b[2J" in printed[0]


HOSTILE = {
    "title": "<img src=x onerror=alert(1)>",
    "detail": "see ![pixel](http://tracker.example/p.png)",
    "summary": "# Fake heading\n<script>alert(1)</script>\nok",
    "diff": "--- a/app.py\n+++ b/app.py\n@@ -1 +1 @@\n-x\n+````\n+```\n",
}


def hostile_answer(call: Call) -> str:
    if call.kind == "findings":
        finding = {
            "severity": "low",
            "file": "app.py",
            "line": 1,
            "suggestion": "s",
            **{k: HOSTILE[k] for k in ("title", "detail")},
        }
        return json.dumps({"findings": [finding]})
    if call.kind == "patches":
        return json.dumps({"patches": [{"file": "app.py", "diff": HOSTILE["diff"], "rationale": "r"}]})
    if call.kind == "aggregate":
        return json.dumps({"summary": HOSTILE["summary"], "decisions": [], "disagreements": [], "next_steps": []})
    return valid_answer(call)


def test_model_html_and_markdown_are_neutralised_in_the_report(fake: FakeProvider, tmp_path: Path) -> None:
    from orchestrator.outputs.github import step_summary

    fake.script("m", hostile_answer)
    spec = spec_at(
        tmp_path,
        FAKE.replace(
            "tasks: [{role: architecture_review, instruction: review}]",
            "tasks: [{role: architecture_review, instruction: review}, {role: refactor, instruction: fix}]",
        ),
    )
    outcome = run_workflow(prepare_workflow(load_spec(spec)), RunOptions(output_dir=tmp_path / "out", cache=False))
    for text in ((tmp_path / "out" / "report.md").read_text(), step_summary(outcome.result)):
        assert "<img" not in text and "<script" not in text and "![" not in text
        assert "\n# Fake heading" not in text
    report = (tmp_path / "out" / "report.md").read_text()
    assert "&lt;img src=x onerror=alert(1)&gt;" in report and "[pixel](http://tracker.example/p.png)" in report
    diff = report.split("`````diff\n", 1)[1].split("\n`````", 1)[0]  # a fence longer than the diff's own
    assert diff == HOSTILE["diff"].rstrip()


def test_a_finding_outside_the_workspace_is_not_an_annotation(fake: FakeProvider, tmp_path: Path) -> None:
    from orchestrator.outputs.github import error_commands
    from orchestrator.outputs.sarif import build_sarif

    def answer(call: Call) -> str:
        if "findings" in call.schema.get("properties", {}):
            found = [{"severity": "high", "file": "../../etc/passwd", "title": "t", "detail": "d", "suggestion": "s"}]
            return json.dumps({"findings": found})
        return valid_answer(call)

    fake.script("m", answer)
    schema = {
        "type": "object",
        "properties": {"findings": {"type": "array", "items": {"type": "object"}}},
        "required": ["findings"],
    }
    text = (
        FAKE.replace("architecture_review", "audit")
        + f"roles: {{audit: {{output: {json.dumps(schema)}, prompt: audit}}}}\n"
    )
    outcome = run_workflow(prepare_workflow(load_spec(spec_at(tmp_path, text))), RunOptions(write=False, cache=False))
    assert outcome.result.subtasks[0].findings()[0].file == "../../etc/passwd"
    assert build_sarif(outcome.result, {}, "0")["runs"][0]["results"] == []
    (command,) = error_commands(outcome.result.model_copy(update={"fail_on": "high"}), "")
    assert "file=" not in command


# ---------------------------------------------------------------- paths


def test_outputs_stay_inside_the_output_folder(tmp_path: Path) -> None:
    from orchestrator.engine import CallRecord
    from orchestrator.outputs import write_outputs
    from orchestrator.outputs.result import RoleInfo

    out = tmp_path / "out"
    done = run_and_result(tmp_path)
    evil = CallRecord(
        id="../../../escaped",
        role="arabic_docs",
        instruction="i",
        files=[],
        status="ok",
        output={"title": "t", "markdown": "m", "fix": None},
    )
    evil_patch = evil.model_copy(
        update={
            "id": "/abs/olute",
            "role": "refactor",
            "output": {"patches": [{"file": "../x", "diff": "d", "rationale": "r"}]},
        }
    )
    result = done.model_copy(
        update={
            "subtasks": [evil, evil_patch],
            "roles": {"arabic_docs": RoleInfo(output="docs", description="", lang="ar", dir="rtl")},
        }
    )
    written = write_outputs(result, out, ["json"])
    assert written and all(path.resolve().is_relative_to(out.resolve()) for path in written)
    assert not (tmp_path / "escaped.ar.md").exists() and not list(tmp_path.glob("escaped*"))


def run_and_result(tmp_path: Path) -> Any:
    provider = FakeProvider()
    provider.script("m", valid_answer)
    registry.register("fake", provider)
    try:
        spec = spec_at(tmp_path / "run", FAKE)
        return run_workflow(prepare_workflow(load_spec(spec)), RunOptions(write=False, cache=False)).result
    finally:
        registry.unregister("fake")


def test_the_spec_output_folder_stays_inside_its_repository(tmp_path: Path) -> None:
    spec = spec_at(tmp_path / "repo", "version: 1\nname: o\ngoal: g\nworkspace: ws\noutput: {dir: ../../elsewhere}\n")
    done = orchestrator("validate", spec)
    assert done.returncode == 2 and "output.dir" in done.stderr
    assert orchestrator("validate", spec, "--set", "output.dir=/tmp/anywhere").returncode == 0  # the operator's


@pytest.mark.parametrize("content", [b"\x00\x01binary", b"x" * 300_000], ids=["binary", "300KB"])
def test_a_prompt_file_must_be_bounded_text(tmp_path: Path, content: bytes) -> None:
    spec = spec_at(
        tmp_path, "version: 1\nname: p\ngoal: g\nworkspace: ws\nroles: {r: {output: text, prompt_file: p.md}}\n"
    )
    (tmp_path / "p.md").write_bytes(content)
    done = orchestrator("validate", spec)
    assert done.returncode == 2 and "roles.r.prompt_file" in done.stderr


def test_a_patch_that_creates_a_symlink_is_rejected(tmp_path: Path) -> None:
    from orchestrator.engine._patch import check_patch

    (tmp_path / "a.py").write_text("x = 1\n")
    diff = (
        "diff --git a/link b/link\nnew file mode 120000\n--- /dev/null\n+++ b/link\n"
        "@@ -0,0 +1 @@\n+/etc/passwd\n\\ No newline at end of file\n"
    )
    check = asyncio.run(check_patch(tmp_path, "link", diff))
    assert not check.valid and "symlink" in check.message


# ---------------------------------------------------------------- bad input and bounds


def _laughs() -> str:
    """Nine levels of nine aliases each: 626 bytes that expand to 9**9 values."""
    lines = ["version: 1", "name: b", "goal: g", "a: &a [x, x, x, x, x, x, x, x, x]"]
    for i in range(8):
        this, previous = chr(98 + i), chr(97 + i)
        lines.append(f"{this}: &{this} [" + ", ".join([f"*{previous}"] * 9) + "]")
    return "\n".join(lines) + "\n"


LAUGHS = _laughs()


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        (LAUGHS, "more than 100000 values"),
        ("version: 1\nname: d\ngoal: g\ngraph: /dev/zero\n", "not a regular file"),
        ("version: 1\nname: d\ngoal: g\nx: " + "[" * 500 + "]" * 500 + "\n", "nested deeper"),
        ('version: 1\nname: n\ngoal: g\nworkspace: "a\\0b"\n', "workspace"),
        ("version: 1\nname: n\ngoal: g\nworkspace: " + "a" * 5000 + "\n", "workspace"),
        ('version: 1\nname: n\ngoal: g\ngraph: ":"\n', "graph"),
        ('version: 1\nname: n\ngoal: g\ngraph: "...:x"\n', "not a Python graph reference"),
        ('version: 1\nname: n\ngoal: g\ngraph: "../x:y"\n', "not a Python graph reference"),
        ("version: 1\nname: n\ngoal: g\ninclude: ['" + "**/" * 10 + "a/**/b/**/c/**/d/**/e']\n", "more than 4 '**'"),
    ],
)
def test_bad_documents_are_spec_errors_not_tracebacks(tmp_path: Path, text: str, expect: str) -> None:
    spec = spec_at(tmp_path, text)
    done = orchestrator("validate", spec, timeout=120)
    assert done.returncode == 2, done.stderr
    assert expect in done.stderr and "Traceback" not in done.stderr


def test_a_long_linear_graph_is_bounded_and_a_big_one_still_validates(tmp_path: Path) -> None:
    def graph(n: int) -> str:
        nodes = "".join(f"  n{i}: {{kind: role, role: debug}}\n" for i in range(n))
        edges = (
            "  - [START, n0]\n" + "".join(f"  - [n{i}, n{i + 1}]\n" for i in range(n - 1)) + f"  - [n{n - 1}, END]\n"
        )
        return f"version: 1\nname: line\nnodes:\n{nodes}edges:\n{edges}"

    spec = spec_at(tmp_path, "version: 1\nname: l\ngoal: g\nworkspace: ws\ngraph: g.yaml\n")
    (tmp_path / "g.yaml").write_text(graph(2000))
    done = orchestrator("validate", spec)
    assert done.returncode == 2 and "nodes" in done.stderr and "Traceback" not in done.stderr
    (tmp_path / "g.yaml").write_text(graph(150))
    assert orchestrator("validate", spec).returncode == 0  # no recursion limit on a long but sane graph


def test_deep_globs_match_without_exponential_backtracking(tmp_path: Path) -> None:
    deep = "/".join(["d"] * 30)
    spec = spec_at(
        tmp_path,
        "version: 1\nname: g\ngoal: g\nworkspace: ws\ninclude: ['" + "**/" * 10 + "x.py']\n",
        {f"ws/{deep}/y.py": "y = 1\n", "ws/x.py": "x = 1\n"},
    )
    done = orchestrator("validate", spec, "--json", timeout=60)  # once 44 s; now a few milliseconds
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["files"] == ["x.py"]


def test_malformed_state_is_never_a_traceback(tmp_path: Path) -> None:
    spec = spec_at(tmp_path, "version: 1\nname: s\ngoal: g\nworkspace: ws\ntasks: [{role: debug, instruction: x}]\n")
    broken = tmp_path / "broken.sqlite"
    broken.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    done = orchestrator("run", spec, "--checkpoint", broken)
    assert done.returncode == 3 and "cannot open the checkpoint database" in done.stderr
    rec = tmp_path / "rec"
    (rec / "calls").mkdir(parents=True)
    (rec / "tokens.json").write_text("[1, 2")
    digest = hashlib.sha256(spec.read_bytes()).hexdigest()
    (rec / "manifest.json").write_text(json.dumps({"spec_sha256": digest}))
    replay = orchestrator("run", spec, "--replay", rec)
    assert replay.returncode == 2 and "tokens.json" in replay.stderr and "Traceback" not in replay.stderr


# ---------------------------------------------------------------- providers


PROVIDERS = """
version: 1
name: flaky
goal: g
workspace: ws
providers:
  api: {{kind: {kind}, base_url: '{url}'}}
models: {{debug: [api/m, api/spare], planner: api/planner}}
tasks: [{{role: debug, instruction: look}}]
roles: {{debug: {{tools: []}}}}  # one structured call: its repair turn is what is tested
limits: {{backoff_s: 0.01, retries: 1, max_wait_s: 10{limits}}}
fail_on: none
"""


def flaky_spec(tmp_path: Path, server: ModelServer, kind: str, limits: str = "") -> Path:
    url = f"{server.url}/v1" if kind == "openai" else server.url
    return spec_at(tmp_path, PROVIDERS.format(kind=kind, url=url, limits=limits))


@pytest.mark.parametrize("kind", ["openai", "ollama"])
def test_an_oversized_answer_is_cut_off_and_the_next_model_answers(
    server: ModelServer, tmp_path: Path, kind: str
) -> None:
    server.fault("body", model="m", times=5, body=b'{"x": "' + b"a" * 3_000_000 + b'"}')
    spec = flaky_spec(tmp_path, server, kind, ", max_response_bytes: 100000")
    done = orchestrator("run", spec, "--output-dir", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    (debug,) = result_of(tmp_path / "out")["subtasks"]
    assert debug["model"] == "api/spare" and debug["fallbacks"][0]["error_kind"] == "too_large"
    (host,) = result_of(tmp_path / "out")["egress"]["hosts"]
    assert host["bytes_received"] < 1_000_000  # read up to the cap, not the 3 MB


def test_a_repair_sends_back_only_the_start_of_an_invalid_answer(server: ModelServer, tmp_path: Path) -> None:
    server.fault(
        "body",
        model="m",
        times=1,
        body=json.dumps({"message": {"role": "assistant", "content": "x" * 50_000}, "done": True}).encode(),
    )
    spec = flaky_spec(tmp_path, server, "ollama")
    done = orchestrator("run", spec, "--output-dir", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    repair = [b for b in server.state.bodies if "That answer is invalid" in b]
    assert repair and all(len(b) < 20_000 for b in repair)  # not the 50 KB answer echoed back


@pytest.mark.parametrize("body", [b"<html><body>502 Bad Gateway</body></html>", b"{}"])
@pytest.mark.parametrize("kind", ["openai", "ollama"])
def test_a_200_with_a_body_that_is_no_answer_is_unavailable_and_retried(
    server: ModelServer, tmp_path: Path, kind: str, body: bytes
) -> None:
    server.fault(
        "body", model="m", times=1, body=body, content_type="text/html" if body.startswith(b"<") else "application/json"
    )
    done = orchestrator("run", flaky_spec(tmp_path, server, kind), "--output-dir", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    (debug,) = result_of(tmp_path / "out")["subtasks"]
    assert debug["model"] == "api/m" and debug["attempts"] == 2  # retried on the same model, then answered


def test_retry_after_as_an_http_date_is_honoured(server: ModelServer, tmp_path: Path) -> None:
    server.fault("status", model="m", times=1, status=429, retry_after_date_s=3)
    done = orchestrator("run", flaky_spec(tmp_path, server, "openai"), "--output-dir", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    (debug,) = result_of(tmp_path / "out")["subtasks"]
    assert debug["model"] == "api/m" and debug["attempts"] == 2
    assert debug["waited_s"] >= 1.0  # the header's date, not the 0.01 s backoff


def test_a_spec_error_is_raised_for_each_bad_document_in_process(tmp_path: Path) -> None:
    """The loaders raise SpecError, never another exception, on the documents above."""
    for text in (LAUGHS, "version: 1\nname: d\ngoal: g\nx: " + "[" * 500 + "]" * 500 + "\n"):
        with pytest.raises(SpecError):
            load_spec(spec_at(tmp_path, text))
