"""Context by relevance: the files a task is about are packed first (named ones, a debug task's
failing test and the modules it imports, files defining the symbols it names), the rest follow by
the repository map's rank, and the map itself obeys the policy: a file a model may not see adds
nothing to its map, not even a symbol name (proved on the wire, through a recording proxy)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator import RunOptions, run_workflow
from orchestrator.engine._packing import pack_files
from orchestrator.engine._relevance import Focus, Priority, order
from orchestrator.engine._repomap import RepoIndex, symbols_of
from orchestrator.models.registry import estimate_tokens
from orchestrator.spec import load_spec
from orchestrator.testing import FakeProvider, valid_answer
from orchestrator.workflow import prepare_workflow
from orchestrator.workspace import SourceFile
from tests.process import orchestrator
from tests.servers.model_server import ModelServer
from tests.servers.proxy import RecordingProxy

REMOTE = "models.example"


def generate(root: Path, modules: int = 198) -> None:
    """A repository of `modules` + 2 files whose bug is in z_last.py, last in alphabetical order."""
    (root / "tests").mkdir(parents=True)
    for i in range(modules):
        body = [f'"""Helpers for area {i}."""\n']
        for j in range(12):
            body.append(f"\ndef helper_{i:03d}_{j}(value, scale=2):\n    total = value * scale + {j}\n")
            body.append("    return total - 100 if total > 100 else total\n")
        (root / f"mod_{i:03d}.py").write_text("".join(body))
    (root / "z_last.py").write_text(
        "def last_total(prices):\n    total = 0\n    for price in prices[1:]:\n"
        "        total += price\n    return total\n"
    )
    (root / "tests" / "test_z_last.py").write_text(
        "from z_last import last_total\n\n\ndef test_last_total():\n    assert last_total([1, 2, 3]) == 6\n"
    )


def test_the_failing_test_the_goal_names_and_the_module_it_imports_are_packed(
    fake: FakeProvider, tmp_path: Path
) -> None:
    generate(tmp_path / "repo")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "version: 1\nname: repo200\ngoal: Find why test_z_last.py fails.\nworkspace: repo\n"
        "providers: {fake: {kind: fake}}\n"
        "tasks: [{role: debug, instruction: Find why the test fails.}]\n"
        "models: {planner: fake/p, debug: fake/d}\nroles: {debug: {tools: []}}\n"
    )
    fake.script("d", valid_answer)
    fake.script("p", valid_answer)
    run_workflow(prepare_workflow(load_spec(spec)), RunOptions(output_dir=tmp_path / "out", cache=False))
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    context = result["subtasks"][0]["context"]
    assert len(context["files"]) + len(context["omitted"]) == 200 and len(context["omitted"]) > 150
    assert context["packed"][:2] == [
        {"path": "tests/test_z_last.py", "how": "whole", "why": "named in the task's text"},
        {"path": "z_last.py", "how": "whole", "why": "imported by tests/test_z_last.py"},
    ]
    prompt = fake.calls_to("d")[0].messages[0].content
    assert '<file path="tests/test_z_last.py">' in prompt and '<file path="z_last.py">' in prompt
    assert "for price in prices[1:]:" in prompt
    # the files that did not fit are outlined by the map, within its budget
    assert "<repository_map>" in prompt and "def helper_" in prompt.split("<repository_map>")[-1]
    assert 0 < context["map"]["tokens"] <= context["map"]["budget"] <= 1024


def big_module(name: str, at: int, lines: int = 600) -> str:
    body = [f"x_{n} = {n}\n" for n in range(1, lines + 1)]
    body[at - 1] = f"def {name}(order, tax=0.2):\n"
    body[at] = "    return sum(order) * (1 + tax) - 1\n"
    return "".join(body)


def test_a_named_symbol_brings_its_file_first_and_a_cut_keeps_its_definition() -> None:
    files = [
        SourceFile("a_first.py", "def unrelated():\n    return 1\n"),
        SourceFile("billing.py", big_module("compute_invoice_total", at=450)),
        SourceFile("uses.py", "from billing import compute_invoice_total\n\nprint(compute_invoice_total([1]))\n"),
    ]
    focus = Focus("Refactor compute_invoice_total without changing its results.")
    items = order(files, focus, RepoIndex(files))
    assert [(i.source.path, i.reason) for i in items] == [
        ("billing.py", "defines compute_invoice_total, named in the task"),
        ("uses.py", "uses compute_invoice_total, named in the task"),
        ("a_first.py", "ranked by the repository map"),
    ]
    packed = pack_files(items, 600, estimate_tokens)
    assert packed.packed[0]["how"] == "cut" and "  450| def compute_invoice_total(order, tax=0.2):" in packed.text
    assert "    1| x_1 = 1" not in packed.text  # the file's head is not what the task is about


def test_a_debug_task_s_test_brings_the_module_it_imports_cut_around_what_it_imports() -> None:
    files = [
        SourceFile("pkg/__init__.py", ""),
        SourceFile("pkg/money.py", big_module("convert", at=400)),
        SourceFile(
            "tests/test_money.py", "from pkg.money import convert\n\n\ndef test_convert():\n    assert convert([1])\n"
        ),
    ]
    focus = Focus("Find why test_convert fails.", debug=True)
    items = order(files, focus, RepoIndex(files))
    assert [(i.source.path, i.reason, i.lines) for i in items[:2]] == [
        ("tests/test_money.py", "defines test_convert, named in the task", [(4, 4)]),
        ("pkg/money.py", "imported by tests/test_money.py", [(400, 400)]),
    ]
    packed = pack_files(items, 700, estimate_tokens)
    assert "  400| def convert(order, tax=0.2):" in packed.text


def test_priority_files_from_outside_come_first_with_their_hunks_in_view() -> None:
    files = [SourceFile("a.py", "A = 1\n"), SourceFile("changed.py", big_module("edited", at=300))]
    focus = Focus(
        "Review the change.", priority=(Priority("changed.py", "changed by the pull request", ((300, 301),)),)
    )
    items = order(files, focus, RepoIndex(files))
    assert items[0].source.path == "changed.py" and items[0].reason == "changed by the pull request"
    packed = pack_files(items, 400, estimate_tokens)
    assert "  300| def edited(order, tax=0.2):" in packed.text


def test_symbols_come_from_the_ast_with_signatures_and_are_read_once_per_content() -> None:
    text = (
        "from . import sibling\nfrom ..core import Base\nimport os.path\n\n"
        "LIMIT = 3\n\n"
        "class Store(Base, dict):\n    def add(self, item, qty=1, *args, force, **extra):\n"
        "        os.path.join(item)\n\n"
        "async def load(path):\n    return Store()\n"
    )
    symbols = symbols_of("pkg/sub/mod.py", text)
    shown = [(s.name, s.kind, s.depth, s.signature) for s in symbols.defines]
    assert shown == [
        ("LIMIT", "var", 0, "LIMIT"),
        ("Store", "class", 0, "class Store(Base, dict)"),
        ("add", "def", 1, "def add(self, item, qty=..., *args, force, **extra)"),
        ("load", "def", 0, "async def load(path)"),
    ]
    assert {"pkg.sub", "pkg.sub.sibling", "pkg.core", "pkg.core.Base", "os.path"} <= set(symbols.imports)
    assert symbols.uses["Store"] == 2 and symbols.uses["join"] == 1  # every identifier of the text
    assert symbols_of("pkg/sub/mod.py", text) is symbols
    assert symbols_of("broken.py", "def (:\n  oops").defines == ()  # no parse: uses only


def test_the_map_ranks_first_what_the_task_s_files_use_among_the_files_a_model_may_see() -> None:
    files = [
        SourceFile("app.py", "from money import convert_currency_amount\nconvert_currency_amount(1)\n"),
        SourceFile("money.py", "def convert_currency_amount(value):\n    return value\n"),
        SourceFile("other.py", "def other_thing():\n    return 2\n"),
        SourceFile("hidden.py", "def hidden_secret_symbol():\n    return 3\n"),
    ]
    index = RepoIndex(files)
    visible = ["app.py", "money.py", "other.py"]
    ranked = [path for path, _ in index.rank(visible, {"app.py": 1.0}, set())]
    assert ranked[:2] == ["app.py", "money.py"] and "hidden.py" not in ranked
    outline, shown = index.outline([p for p in ranked if p != "app.py"], 1000, estimate_tokens)
    assert shown == ["money.py", "other.py"] and "def convert_currency_amount(value)" in outline
    assert "hidden_secret_symbol" not in outline
    small, few = index.outline(
        ["money.py", "other.py"], estimate_tokens("money.py:\n  def convert_currency_amount(value)"), estimate_tokens
    )
    assert few == ["money.py"] and "other_thing" not in small


# ---------------------------------------------------------------- the policy, on the wire


@pytest.fixture
def remote() -> Iterator[ModelServer]:
    with ModelServer({"m": "canned", "p": "canned"}) as server:
        yield server


@pytest.mark.integration
def test_a_confidential_file_s_symbols_never_reach_a_remote_model_s_map(remote: ModelServer, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "secret").mkdir(parents=True)
    (ws / "public.py").write_text("def greet(name):\n    return 'hello ' + name\n")
    (ws / "helpers.py").write_text("def public_helper_for_map(value):\n    return value\n")
    (ws / "secret" / "vault.py").write_text(
        "class SecretKeeperVault:\n    def confidential_vault_rotation(self, key):\n        return key\n"
    )
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"version: 1\nname: mapped\ngoal: Review public.py.\nworkspace: ws\n"
        f"providers: {{remote: {{kind: openai, base_url: 'http://{REMOTE}/v1'}}, "
        f"here: {{kind: openai, base_url: '{remote.url}/v1'}}}}\n"
        "tasks: [{role: architecture_review, instruction: Review it., files: [public.py]}]\n"
        "models: {planner: [remote/p, here/p], architecture_review: [remote/m, here/m]}\n"
        "roles: {architecture_review: {tools: []}}\n"
        "policy: {files: {'secret/**': confidential}}\nfail_on: none\n"
    )
    with RecordingProxy({REMOTE: remote.url.removeprefix("http://")}) as proxy:
        env = {"HTTP_PROXY": proxy.url, "HTTPS_PROXY": proxy.url, "NO_PROXY": "127.0.0.1,localhost"}
        done = orchestrator("run", spec, "--output-dir", tmp_path / "out", "--no-cache", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    sent = b"".join(exchange.body for exchange in proxy.state.log).decode()
    assert {e.host for e in proxy.state.log} == {REMOTE} and len(proxy.state.log) == 2
    assert "def public_helper_for_map(value)" in sent  # the map went out (helpers.py is not packed)...
    for name in ("SecretKeeperVault", "confidential_vault_rotation", "vault.py"):
        assert name not in sent  # ...without a trace of the confidential file
