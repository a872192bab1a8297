"""`orchestrator init` on generated repositories: a Python project (pytest) and a Node project
(`npm test` running node's own test runner) get specs that `orchestrator validate` accepts and
whose check, run for real on the unpatched tree, passes; models follow --policy; an existing
file is kept unless --force; test commands of other setups are found (tox, nox, go, cargo)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from orchestrator.cli._starter import detect, find_test_command
from orchestrator.spec import load_spec
from orchestrator.workflow import prepare_workflow
from tests.process import orchestrator

NODE_PROBLEM = "" if shutil.which("node") and shutil.which("npm") else "node and npm are not installed"


def python_repo(root: Path) -> Path:
    (root / "shop" / "cart").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "shop" / "__init__.py").write_text("")
    (root / "shop" / "cart" / "__init__.py").write_text(
        "def total(prices, discount=0.0):\n    return round(sum(prices) * (1 - discount), 2)\n"
    )
    (root / "tests" / "test_cart.py").write_text(
        "from shop.cart import total\n\n\ndef test_total():\n    assert total([1.0, 2.5], 0.1) == 3.15\n"
    )
    (root / "pyproject.toml").write_text('[project]\nname = "shop"\nversion = "0"\n\n[tool.pytest.ini_options]\n')
    (root / "README.md").write_text("# shop\n")
    return root


def node_repo(root: Path) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "test").mkdir()
    (root / "node_modules" / "left-pad").mkdir(parents=True)
    (root / "src" / "add.js").write_text("function add(a, b) { return a + b; }\nmodule.exports = { add };\n")
    (root / "test" / "add.test.js").write_text(
        "const test = require('node:test');\nconst assert = require('node:assert');\n"
        "const { add } = require('../src/add.js');\n\ntest('add', () => { assert.strictEqual(add(2, 3), 5); });\n"
    )
    (root / "node_modules" / "left-pad" / "index.js").write_text("module.exports = 1;\n")
    package = {"name": "adder", "version": "1.0.0", "scripts": {"test": "node --test"}}
    (root / "package.json").write_text(json.dumps(package, indent=2))
    return root


def run_check(root: Path, spec: Path) -> subprocess.CompletedProcess[str]:
    """The spec's check as checks run it (`/bin/sh -c`), on the unpatched tree."""
    loaded = load_spec(spec)
    command = loaded.spec.checks["tests"].run
    assert isinstance(command, str)
    return subprocess.run(["/bin/sh", "-c", command], cwd=root, capture_output=True, text=True, timeout=300)


def test_init_writes_a_valid_spec_for_a_python_repository_whose_check_passes(tmp_path: Path) -> None:
    root = python_repo(tmp_path / "shop")
    done = orchestrator("init", cwd=root)
    assert done.returncode == 0, done.stderr
    spec = root / "orchestrator.yaml"
    assert f"wrote {spec}" in done.stdout and "check: python -m pytest -q" in done.stdout
    loaded = load_spec(spec)
    assert loaded.spec.name == "shop" and loaded.spec.include == ["**/*.py"]
    assert loaded.spec.verify is not None and loaded.spec.verify.checks == ["tests"]
    workflow = prepare_workflow(loaded)
    assert {f.path for f in workflow.files.files} == {"shop/__init__.py", "shop/cart/__init__.py", "tests/test_cart.py"}
    chains = {role: [r.ref for r in chain] for role, chain in workflow.chains.base_chains().items()}
    assert chains and all(chain[-1] == "local/smollm2" for chain in chains.values())  # runs offline as written
    assert all(ref.split("/")[0] in ("ollama", "local") for chain in chains.values() for ref in chain)
    assert loaded.spec.policy.local_only is True
    assert orchestrator("validate", spec).returncode == 0
    checked = run_check(root, spec)
    assert checked.returncode == 0 and "1 passed" in checked.stdout, checked.stdout + checked.stderr

    text = spec.read_text()
    again = orchestrator("init", "--policy", "any", cwd=root)
    assert again.returncode == 2 and "exists: nothing was written" in again.stderr
    assert spec.read_text() == text
    eu = orchestrator("init", "--policy", "eu", "--force", cwd=root)
    assert eu.returncode == 0, eu.stderr
    assert spec.read_text() != text
    eu_spec = load_spec(spec)
    assert eu_spec.spec.policy.serving_regions == ["eu"]
    eu_chains = prepare_workflow(eu_spec).chains.base_chains()
    assert {r.provider for chain in eu_chains.values() for r in chain} == {"mistral", "ollama", "local"}
    anywhere = orchestrator("init", str(root), "--policy", "any", "--output", "any.yaml", cwd=tmp_path)
    assert anywhere.returncode == 0, anywhere.stderr
    assert orchestrator("validate", root / "any.yaml").returncode == 0
    assert not list(root.glob(".orchestrator-init-*"))  # the scratch file of the validation is gone


@pytest.mark.needs(NODE_PROBLEM)
def test_init_writes_a_valid_spec_for_a_node_repository_whose_check_passes(tmp_path: Path) -> None:
    root = node_repo(tmp_path / "adder")
    done = orchestrator("init", cwd=root)
    assert done.returncode == 0, done.stderr
    spec = root / "orchestrator.yaml"
    loaded = load_spec(spec)
    assert loaded.spec.include == ["**/*.js"] and loaded.spec.checks["tests"].run == "npm test"
    workflow = prepare_workflow(loaded)
    assert {f.path for f in workflow.files.files} == {"src/add.js", "test/add.test.js"}  # not node_modules
    assert orchestrator("validate", spec).returncode == 0
    checked = run_check(root, spec)
    assert checked.returncode == 0 and "pass 1" in checked.stdout, checked.stdout + checked.stderr


def test_a_repository_without_tests_gets_a_spec_without_checks(tmp_path: Path) -> None:
    (tmp_path / "tool.go").write_text("package main\n\nfunc main() {}\n")
    done = orchestrator("init", "--output", "spec.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "no test command found" in done.stderr
    loaded = load_spec(tmp_path / "spec.yaml")
    assert loaded.spec.checks == {} and loaded.spec.include == ["**/*.go"]
    refused = orchestrator("init", "--output", "../elsewhere.yaml", cwd=tmp_path)
    assert refused.returncode == 2 and not (tmp_path.parent / "elsewhere.yaml").exists()


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"tox.ini": "[tox]\n", "lib.py": ""}, "tox"),
        ({"noxfile.py": "import nox\n", "lib.py": ""}, "nox"),
        ({"pytest.ini": "[pytest]\n", "tox.ini": "[tox]\n", "lib.py": ""}, "python -m pytest -q"),
        ({"go.mod": "module x\n", "x.go": "package x\n"}, "go test ./..."),
        ({"Cargo.toml": "[package]\n", "src/lib.rs": ""}, "cargo test"),
        ({"package.json": '{"scripts": {"test": "echo \\"Error: no test specified\\" && exit 1"}}'}, None),
    ],
)
def test_the_test_command_of_each_setup(tmp_path: Path, files: dict[str, str], expected: str | None) -> None:
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    project = detect(tmp_path)
    assert find_test_command(tmp_path, project.languages)[0] == expected == project.check
