"""What `orchestrator init` writes: a starter spec for a repository. The languages come from the
files' extensions, the include globs from the languages, the check from the project's own test
setup (pytest, tox or nox for Python, `npm test` for Node, `go test` for Go, `cargo test` for
Rust), and the models from a policy the user picks: `local-only` (this machine: Ollama and the
embedded model), `eu` (inference processed in the EU: Mistral's EU endpoint, this machine) or
`any` (the catalog's strongest families, wherever they serve). Every chain ends with the
embedded model, so the spec runs offline before any model is pulled or any key is set.
Routes are looked up in the catalog by family and provider, so the spec names what the catalog
serves. Nothing here writes a file or prints."""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Policy = Literal["local-only", "eu", "any"]
POLICIES: tuple[Policy, ...] = ("local-only", "eu", "any")
MAX_SCANNED = 20_000  # files looked at to detect the languages
SKIPPED_DIRS = frozenset(
    {".git", ".hg", ".svn", ".venv", "venv", "env", "node_modules", "__pycache__", ".tox", ".nox", ".orchestrator"}
    | {"dist", "build", "target", ".mypy_cache", ".pytest_cache", ".ruff_cache", "site-packages", "vendor"}
)
LANGUAGES = {
    "python": (".py",),
    "javascript": (".js", ".mjs", ".cjs", ".jsx"),
    "typescript": (".ts", ".tsx", ".mts", ".cts"),
    "go": (".go",),
    "rust": (".rs",),
}
GENERATED = ("dist", "build", "target", "vendor", "venv", "env")  # excluded when the repository has them
NPM_NO_TEST = re.compile(r"no test specified")  # the script `npm init` writes

# role -> (catalog family, provider) in order of preference, per policy; the embedded model ends each
CHOICES: dict[Policy, dict[str, list[tuple[str, str]]]] = {
    "local-only": {
        "planner": [("qwen3.6", "ollama"), ("mistral-small", "ollama")],
        "architecture_review": [("qwen3.6", "ollama"), ("devstral", "ollama")],
        "refactor": [("qwen3-coder", "ollama"), ("devstral", "ollama")],
        "debug": [("deepseek-r1", "ollama"), ("qwen3-coder", "ollama")],
        "arabic_docs": [("jais", "ollama"), ("falcon", "ollama")],
    },
    "eu": {
        "planner": [("mistral-large", "mistral"), ("mistral-small", "ollama")],
        "architecture_review": [("mistral-large", "mistral"), ("devstral", "ollama")],
        "refactor": [("devstral", "mistral"), ("codestral", "mistral"), ("devstral", "ollama")],
        "debug": [("devstral", "mistral"), ("devstral", "ollama")],
        "arabic_docs": [("mistral-large", "mistral"), ("jais", "ollama")],
    },
    "any": {
        "planner": [("qwen3.6", "openrouter"), ("qwen3.6", "ollama")],
        "architecture_review": [("glm-5.1", "openrouter"), ("claude-sonnet-4.5", "openrouter"), ("qwen3.6", "ollama")],
        "refactor": [("qwen3-coder", "openrouter"), ("qwen3-coder", "ollama")],
        "debug": [("deepseek-v4", "deepseek"), ("deepseek-r1", "openrouter"), ("deepseek-r1", "ollama")],
        "arabic_docs": [("jais", "ollama"), ("falcon", "ollama")],
    },
}
FALLBACK = ("smollm2", "local")
POLICY_RULES: dict[Policy, tuple[str, str]] = {
    "local-only": ("{local_only: true}", "nothing leaves this machine: Ollama on loopback and the embedded model"),
    "eu": ("{serving_regions: [eu]}", "inference is processed in the EU (Mistral's EU endpoint) or on this machine"),
    "any": ("{data_class: internal}", "any model the catalog knows; tighten with allow_countries, serving_regions"),
}


@dataclass
class Project:
    """What init found in a repository."""

    root: Path
    languages: dict[str, int] = field(default_factory=dict)  # language -> files
    extensions: set[str] = field(default_factory=set)
    check: str | None = None  # the test command
    check_why: str = ""  # where it was found
    excluded: list[str] = field(default_factory=list)

    @property
    def include(self) -> list[str]:
        return [f"**/*{ext}" for exts in LANGUAGES.values() for ext in exts if ext in self.extensions]


def detect(root: Path) -> Project:
    project = Project(root=root)
    scanned = 0
    for _folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and not d.startswith("."))
        for name in files:
            scanned += 1
            suffix = Path(name).suffix
            for language, extensions in LANGUAGES.items():
                if suffix in extensions:
                    project.languages[language] = project.languages.get(language, 0) + 1
                    project.extensions.add(suffix)
        if scanned >= MAX_SCANNED:
            break
    project.excluded = [f"{name}/**" for name in GENERATED if (root / name).is_dir()]
    project.check, project.check_why = find_test_command(root, project.languages)
    return project


def find_test_command(root: Path, languages: dict[str, int]) -> tuple[str | None, str]:
    """The project's own test command and where it was found (None: none found)."""
    package = _json(root / "package.json")
    script = ((package or {}).get("scripts") or {}).get("test")
    if isinstance(script, str) and script.strip() and not NPM_NO_TEST.search(script):
        return "npm test", "package.json scripts.test"
    if "python" in languages or (root / "pyproject.toml").is_file():
        found = _python_tests(root)
        if found:
            return found
    if (root / "go.mod").is_file():
        return "go test ./...", "go.mod"
    if (root / "Cargo.toml").is_file():
        return "cargo test", "Cargo.toml"
    return None, ""


def _python_tests(root: Path) -> tuple[str, str] | None:
    """pytest when the project has tests or pytest settings; else tox or nox when they are set up."""
    pyproject = _toml(root / "pyproject.toml")
    tool = pyproject.get("tool") or {}
    settings = [name for name in ("pytest.ini", "conftest.py") if (root / name).is_file()] + (
        ["pyproject.toml [tool.pytest]"] if "pytest" in tool else []
    )
    if (root / "setup.cfg").is_file() and "[tool:pytest]" in _text(root / "setup.cfg"):
        settings.append("setup.cfg [tool:pytest]")
    tests = [name for name in ("tests", "test") if (root / name).is_dir()]
    if settings or tests or any(root.glob("test_*.py")):
        return "python -m pytest -q", ", ".join(settings + [f"{name}/" for name in tests]) or "test_*.py"
    if (root / "tox.ini").is_file() or "tox" in tool:
        return "tox", "tox.ini" if (root / "tox.ini").is_file() else "pyproject.toml [tool.tox]"
    if (root / "noxfile.py").is_file():
        return "nox", "noxfile.py"
    return None


def _json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def chains(policy: Policy) -> dict[str, list[str]]:
    """role -> model refs (provider/model), from the catalog's routes of each chosen family."""
    from orchestrator.catalog import load_catalog

    catalog = load_catalog()
    found: dict[str, list[str]] = {}
    for role, choices in CHOICES[policy].items():
        refs: list[str] = []
        for family, provider in [*choices, FALLBACK]:
            entry = catalog.get(family)
            route = next((r for r in entry.routes if r.provider == provider), None) if entry else None
            if route is not None and f"{provider}/{route.model}" not in refs:
                refs.append(f"{provider}/{route.model}")
        found[role] = refs
    return found


def render(project: Project, policy: Policy, name: str) -> str:
    """The spec's text: YAML with comments saying where each part came from."""
    languages = ", ".join(f"{lang} ({count} files)" for lang, count in project.languages.items()) or "none found"
    rule, meaning = POLICY_RULES[policy]
    lines = [
        f"# A starter spec written by `orchestrator init --policy {policy}` for {project.root.name or project.root}.",
        f"# Languages: {languages}.",
        "#   orchestrator validate THIS_FILE          # checks it, calls no model",
        "#   orchestrator run THIS_FILE --dry-run     # the model chains and what the policy refuses",
        "#   orchestrator run THIS_FILE",
        "version: 1",
        f"name: {json.dumps(name)}",
        "goal: |  # what the run is for: edit it",
        "  Review the architecture of this repository, find the most likely bugs and",
        "  propose fixes, each verified by the project's tests.",
        "workspace: .",
        f"include: {json.dumps(project.include or ['**/*'])}",
    ]
    if project.excluded:
        lines.append(f"exclude: {json.dumps(project.excluded)}")
    lines += ["graph: coding-workflow", "# each role: a chain of models, the first that works answers"]
    lines.append("models:")
    for role, refs in chains(policy).items():
        lines.append(f"  {role}: [{', '.join(refs)}]")
    lines += [f"policy: {rule}  # {meaning}"]
    if project.check:
        lines += [
            f"checks:  # found: {project.check_why}; every proposed patch is run against it, never trusted",
            f"  tests: {{run: {json.dumps(project.check)}, timeout_s: 600}}",
            "verify: {checks: [tests], reflections: 1}",
        ]
    else:
        lines.append("# checks: none found (add `checks: {tests: {run: ...}}` to have patches verified)")
    lines += [
        "limits: {concurrency: 4, timeout_s: 300}",
        "output: {dir: out, formats: [markdown, html, json]}",
        "fail_on: high",
    ]
    return "\n".join(lines) + "\n"


def spec_name(root: Path) -> str:
    """A spec's name from the folder's: letters, digits, dots, dashes and underscores."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", root.name).strip("-._")
    return cleaned[:60] or "project"
