"""Spec loading (orchestrator.spec, orchestrator.source) and its meaning (orchestrator.workflow).

Every problem a user can make must come back as a SpecError whose problems name the file, the
1-based line of the offending key and the dotted field; policy refusals are PolicyError (exit 5).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.errors import PolicyError, Problem, SpecError
from orchestrator.spec import LoadedSpec, load_spec
from orchestrator.workflow import Workflow, prepare_workflow

HEAD = "version: 1\nname: demo\ngoal: Review the code.\nworkspace: ws\n"  # four lines
REPO = Path(__file__).resolve().parents[1]

WriteSpec = Callable[..., Path]


def spec_errors(path: Path, overrides: list[str] | None = None) -> list[Problem]:
    """The problems of a spec that must fail to load or to prepare."""
    with pytest.raises(SpecError) as info:
        prepare_workflow(load_spec(path, overrides or []))
    assert info.value.exit_code == 2
    assert info.value.problems
    return info.value.problems


def only(problems: list[Problem], field: str) -> Problem:
    found = [p for p in problems if p.field == field]
    assert found, f"no problem for {field!r} in {problems}"
    return found[0]


def prepared(write_spec: WriteSpec, text: str, overrides: list[str] | None = None) -> Workflow:
    return prepare_workflow(load_spec(write_spec(text), overrides or []))


def refs(workflow: Workflow, role: str) -> list[str]:
    return [route.ref for route in workflow.chains.base(role)]


# ---------------------------------------------------------------- shape


def test_minimal_spec_loads_with_defaults(write_spec: WriteSpec, tmp_path: Path) -> None:
    loaded = load_spec(write_spec(HEAD))
    assert isinstance(loaded, LoadedSpec)
    spec = loaded.spec
    assert (spec.version, spec.name, spec.goal) == (1, "demo", "Review the code.")
    assert loaded.workspace == (tmp_path / "ws").resolve()
    assert spec.include == ["**/*"]
    assert spec.exclude == [] and spec.tasks == [] and spec.models == {}
    assert spec.graph == "coding-workflow"
    assert spec.limits.concurrency == 4
    assert spec.policy.data_class == "internal"
    assert spec.fail_on == "high"

    workflow = prepare_workflow(loaded)
    assert sorted(f.path for f in workflow.files.files) == ["app.py", "lib/util.py"]
    # no models: every role runs on the embedded model
    assert workflow.chains.roles and all(refs(workflow, role) == ["local/smollm2"] for role in workflow.chains.roles)


def assert_problem(path: Path, field: str, line: int, fragments: list[str]) -> None:
    problem = only(spec_errors(path), field)
    assert problem.file == str(path)
    assert problem.line == line
    for fragment in fragments:
        assert fragment in problem.message


@pytest.mark.parametrize(
    ("extra", "field", "line", "fragments"),
    [
        ("modles: {}\n", "modles", 5, ["unknown field", "did you mean", "'models'"]),
        ("limits:\n  concurency: 2\n", "limits.concurency", 6, ["unknown field", "'concurrency'"]),
        ("tasks:\n  - role: debug\n    instrucion: x\n", "tasks.0.instrucion", 7, ["unknown field", "'instruction'"]),
        ("limits:\n  timeout_s: 5\n  concurrency: many\n", "limits.concurrency", 7, ["integer"]),
        ("fail_on: severe\n", "fail_on", 5, ["severe"]),
        ("output: {formats: [markdown, pdf]}\n", "output.formats.1", 5, ["pdf"]),
    ],
)
def test_shape_problems_name_file_line_and_field(
    write_spec: WriteSpec, extra: str, field: str, line: int, fragments: list[str]
) -> None:
    assert_problem(write_spec(HEAD + extra), field, line, fragments)


@pytest.mark.parametrize(
    ("extra", "suggested"),
    [
        ("providers:\n  deepseek:\n    base_ur: https://api.deepseek.com/v1\n", "'base_url'"),
        ("roles:\n  security:\n    output: text\n    promt: hi\n", "'prompt'"),
    ],
    ids=["providers", "roles"],
)
def test_unknown_key_under_a_named_entry_suggests_close_name(write_spec: WriteSpec, extra: str, suggested: str) -> None:
    problems = spec_errors(write_spec(HEAD + extra))
    unknown = [p for p in problems if "unknown field" in p.message]
    assert unknown and suggested in unknown[0].message


def test_missing_goal_is_named(write_spec: WriteSpec) -> None:
    path = write_spec("version: 1\nname: demo\nworkspace: ws\n")
    problem = only(spec_errors(path), "goal")
    assert problem.file == str(path)
    assert "missing" in problem.message


def test_yaml_syntax_error_gives_the_line(write_spec: WriteSpec) -> None:
    path = write_spec(HEAD + "include: ['**/*.py']\noops: a: b\n")
    [problem] = spec_errors(path)
    assert problem.file == str(path)
    assert problem.line == 6
    assert "YAML" in problem.message


@pytest.mark.parametrize("text", ["", "# only a comment\n"])
def test_empty_file_is_a_spec_error(write_spec: WriteSpec, text: str) -> None:
    path = write_spec(text)
    fields = {p.field for p in spec_errors(path)}
    assert {"name", "goal"} <= fields


def test_top_level_list_is_a_spec_error(write_spec: WriteSpec) -> None:
    [problem] = spec_errors(write_spec("- a\n- b\n"))
    assert problem.line == 1 and "mapping" in problem.message


def test_spec_file_not_found(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    [problem] = spec_errors(path)
    assert problem.file == str(path)
    assert "not found" in problem.message


def test_workspace_folder_missing(write_spec: WriteSpec) -> None:
    path = write_spec("version: 1\nname: demo\ngoal: g\nworkspace: missing-folder\n")
    problem = only(spec_errors(path), "workspace")
    assert problem.line == 4
    assert "missing-folder" in problem.message


# ---------------------------------------------------------------- models and tasks


@pytest.mark.parametrize(
    ("extra", "field", "line", "fragments"),
    [
        ("models:\n  refactr: local/smollm2\n", "models.refactr", 6, ["refactr", "did you mean", "'refactor'"]),
        ("models:\n  refactor: deepseek-r2\n", "models.refactor", 6, ["deepseek-r2", "did you mean", "'deepseek-r1'"]),
        (
            "models:\n  debug:\n    - local/smollm2\n    - deepseek-r2\n",
            "models.debug.1",
            8,
            ["deepseek-r2", "'deepseek-r1'"],
        ),
        ("models:\n  refactor: olama/qwen3:8b\n", "models.refactor", 6, ["olama", "'ollama'"]),
        (
            "tasks:\n  - role: debug\n    instruction: x\n  - role: refactr\n    instruction: y\n",
            "tasks.1.role",
            8,
            ["did you mean", "'refactor'"],
        ),
        (
            "tasks:\n  - role: debug\n    instruction: x\n    files: [app.py, nope.py]\n",
            "tasks.0.files.1",
            8,
            ["nope.py"],
        ),
    ],
)
def test_meaning_problems_name_file_line_and_field(
    write_spec: WriteSpec, extra: str, field: str, line: int, fragments: list[str]
) -> None:
    assert_problem(write_spec(HEAD + extra), field, line, fragments)


def test_task_file_excluded_from_workspace_is_rejected(write_spec: WriteSpec) -> None:
    text = HEAD + "exclude: ['lib/**']\ntasks:\n  - role: debug\n    instruction: x\n    files: [lib/util.py]\n"
    problem = only(spec_errors(write_spec(text)), "tasks.0.files.0")
    assert "lib/util.py" in problem.message


def test_bad_default_model_is_reported_once(write_spec: WriteSpec) -> None:
    problems = spec_errors(write_spec(HEAD + "models:\n  default: deepseek-r2\n"))
    assert len([p for p in problems if p.field == "models.default"]) == 1


def test_models_resolve_to_chains(write_spec: WriteSpec) -> None:
    text = HEAD + "models:\n  refactor: [ollama/qwen3:8b, openrouter/z-ai/glm-5.1]\n  debug: deepseek-r1\n"
    workflow = prepared(write_spec, text)
    assert refs(workflow, "refactor") == ["ollama/qwen3:8b", "openrouter/z-ai/glm-5.1"]
    assert refs(workflow, "debug") == ["ollama/deepseek-r1:14b"]
    assert refs(workflow, "planner") == ["local/smollm2"]


# ---------------------------------------------------------------- --set overrides


def test_overrides_take_effect(write_spec: WriteSpec) -> None:
    path = write_spec(HEAD + "limits: {concurrency: 8}\n")
    loaded = load_spec(path, ["limits.concurrency=2", "models.refactor=ollama/qwen3:8b"])
    assert loaded.spec.limits.concurrency == 2
    assert loaded.spec.models["refactor"] == ["ollama/qwen3:8b"]
    assert refs(prepare_workflow(loaded), "refactor") == ["ollama/qwen3:8b"]


@pytest.mark.parametrize(
    ("assignment", "check"),
    [
        ("limits.timeout_s=2.5", lambda s: s.limits.timeout_s == 2.5),
        ("policy.open_weights_only=true", lambda s: s.policy.open_weights_only is True),
        ("include=[src/**, '*.md']", lambda s: s.include == ["src/**", "*.md"]),
        (
            "models.debug=[ollama/qwen3:8b, local/smollm2]",
            lambda s: s.models["debug"] == ["ollama/qwen3:8b", "local/smollm2"],
        ),
    ],
)
def test_override_values_are_parsed_as_yaml(write_spec: WriteSpec, assignment: str, check: Callable) -> None:
    assert check(load_spec(write_spec(HEAD), [assignment]).spec)


@pytest.mark.parametrize(
    ("assignment", "field"),
    [
        ("limits.concurrency=many", "limits.concurrency"),
        ("limits.concurrency=[1", "limits.concurrency"),
        ("limits.concurency=2", "limits.concurency"),
        ("models.refactor=deepseek-r2", "models.refactor"),
        ("no-equals-sign", "no-equals-sign"),
    ],
)
def test_bad_override_is_reported_against_the_command_line(write_spec: WriteSpec, assignment: str, field: str) -> None:
    path = write_spec(HEAD + "limits:\n  concurrency: 3\n")
    problem = only(spec_errors(path, [assignment]), field)
    assert problem.file == "--set"
    assert problem.line is None


# ---------------------------------------------------------------- providers and trust

CONFIDENTIAL = "policy: {data_class: confidential}\n"
EVIL_DEEPSEEK = "providers:\n  deepseek: {base_url: 'https://evil.example/v1'}\n"
EVIL_NEW = "providers:\n  evil: {kind: openai, base_url: 'https://evil.example/v1', api_key_env: EVIL_KEY}\n"
TRUSTED_EVIL_KEY = "EVIL_KEY"


@pytest.mark.parametrize(("extra", "field"), [(EVIL_DEEPSEEK, "deepseek"), (EVIL_NEW, "evil")])
def test_api_key_to_unknown_host_is_refused(
    write_spec: WriteSpec, monkeypatch: pytest.MonkeyPatch, extra: str, field: str
) -> None:
    monkeypatch.delenv("ORCHESTRATOR_TRUSTED_HOSTS", raising=False)
    monkeypatch.setenv("ORCHESTRATOR_TRUSTED_KEYS", TRUSTED_EVIL_KEY)  # the variable is not what is refused here
    problem = only(spec_errors(write_spec(HEAD + extra)), f"providers.{field}.base_url")
    assert problem.line == 6
    assert "ORCHESTRATOR_TRUSTED_HOSTS" in problem.message
    assert "evil.example" in problem.message


@pytest.mark.parametrize("extra", [EVIL_DEEPSEEK, EVIL_NEW])
def test_operator_trusted_host_is_accepted(write_spec: WriteSpec, monkeypatch: pytest.MonkeyPatch, extra: str) -> None:
    monkeypatch.setenv("ORCHESTRATOR_TRUSTED_HOSTS", "other.example, evil.example")
    monkeypatch.setenv("ORCHESTRATOR_TRUSTED_KEYS", TRUSTED_EVIL_KEY)
    workflow = prepared(write_spec, HEAD + extra)
    assert any(config.host == "evil.example" for config in workflow.providers.values())


@pytest.mark.parametrize(
    ("provider", "base_url"),
    [
        ("deepseek", "https://api.deepseek.com/v1"),
        ("mine", "http://localhost:8000/v1"),
        ("mine", "http://127.0.0.1:8000/v1"),
        ("mine", "http://[::1]:8000/v1"),
    ],
)
def test_known_or_loopback_host_with_key_is_fine(
    write_spec: WriteSpec, monkeypatch: pytest.MonkeyPatch, provider: str, base_url: str
) -> None:
    monkeypatch.delenv("ORCHESTRATOR_TRUSTED_HOSTS", raising=False)
    monkeypatch.setenv("ORCHESTRATOR_TRUSTED_KEYS", "MY_KEY")  # not deepseek's documented variable: the operator's
    text = HEAD + f"providers:\n  {provider}: {{kind: openai, base_url: '{base_url}', api_key_env: MY_KEY}}\n"
    text += f"models:\n  refactor: {provider}/some-model\n"
    workflow = prepared(write_spec, text)
    assert refs(workflow, "refactor") == [f"{provider}/some-model"]


def test_catalog_host_is_not_trusted_for_another_provider(
    write_spec: WriteSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new provider cannot borrow deepseek's host to receive a different key."""
    monkeypatch.delenv("ORCHESTRATOR_TRUSTED_HOSTS", raising=False)
    monkeypatch.setenv("ORCHESTRATOR_TRUSTED_KEYS", "MY_KEY")
    text = HEAD + "providers:\n  mine: {kind: openai, base_url: 'https://api.deepseek.com/v1', api_key_env: MY_KEY}\n"
    problem = only(spec_errors(write_spec(text)), "providers.mine.base_url")
    assert "ORCHESTRATOR_TRUSTED_HOSTS" in problem.message


def test_host_that_only_looks_like_loopback_is_not_trusted(
    write_spec: WriteSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ORCHESTRATOR_TRUSTED_HOSTS", raising=False)
    text = HEAD + "providers:\n  deepseek: {base_url: 'https://127.evil.example/v1'}\n"
    problem = only(spec_errors(write_spec(text)), "providers.deepseek.base_url")
    assert "ORCHESTRATOR_TRUSTED_HOSTS" in problem.message


def test_confidential_refuses_host_that_only_looks_like_loopback(write_spec: WriteSpec) -> None:
    text = HEAD + CONFIDENTIAL + "providers:\n  mine: {kind: openai, base_url: 'https://127.evil.example/v1'}\n"
    text += "models:\n  refactor: [mine/m, local/smollm2]\n"
    workflow = prepared(write_spec, text)
    assert refs(workflow, "refactor") == ["local/smollm2"]


@pytest.mark.parametrize(
    ("extra", "field", "fragment"),
    [
        ("providers:\n  mine: {kind: opnai, base_url: 'http://localhost:1/v1'}\n", "providers.mine.kind", "'openai'"),
        ("providers:\n  mine: {base_url: 'http://localhost:1/v1'}\n", "providers.mine", "kind"),
    ],
)
def test_provider_kind_problems(write_spec: WriteSpec, extra: str, field: str, fragment: str) -> None:
    problem = only(spec_errors(write_spec(HEAD + extra)), field)
    assert problem.line == 6
    assert fragment in problem.message


# ---------------------------------------------------------------- custom roles

CUSTOM_ROLE = (
    "roles:\n  security:\n    output: findings\n    prompt: 'Look for secrets in $files'\n"
    "tasks:\n  - role: security\n    instruction: Find hard-coded secrets.\n"
    "models:\n  security: ollama/qwen3:8b\n"
)


def test_custom_role_is_usable_in_tasks_and_models(write_spec: WriteSpec) -> None:
    workflow = prepared(write_spec, HEAD + CUSTOM_ROLE)
    role = workflow.roles["security"]
    assert role.output == "findings"
    assert "Look for secrets" in role.prompt
    assert not role.builtin
    assert refs(workflow, "security") == ["ollama/qwen3:8b"]
    assert "security" in workflow.worker_roles


def test_custom_role_prompt_file_is_read(write_spec: WriteSpec, tmp_path: Path) -> None:
    (tmp_path / "sec.md").write_text("Audit $files carefully.\n")
    text = HEAD + "roles:\n  security:\n    output: text\n    prompt_file: sec.md\n"
    assert "Audit" in prepared(write_spec, text).roles["security"].prompt


@pytest.mark.parametrize(
    ("role_body", "field"),
    [
        ("    output: findings\n    prompt_file: missing.md\n", "roles.security.prompt_file"),
        ("    output: findings\n", "roles.security"),
        ("    output: poem\n    prompt: hi\n", "roles.security.output"),
    ],
)
def test_bad_custom_role(write_spec: WriteSpec, role_body: str, field: str) -> None:
    problem = only(spec_errors(write_spec(HEAD + "roles:\n  security:\n" + role_body)), field)
    assert problem.line is not None and problem.line >= 6


@pytest.mark.parametrize("name", ["planner", "aggregate", "plan", "START", "END"])
def test_reserved_role_names_are_rejected(write_spec: WriteSpec, name: str) -> None:
    problem = only(spec_errors(write_spec(HEAD + f"roles:\n  {name}: {{output: text, prompt: hi}}\n")), f"roles.{name}")
    assert problem.line == 6
    assert "reserved" in problem.message


# ---------------------------------------------------------------- policy


def test_confidential_with_only_remote_models_for_a_task_role_is_a_policy_error(write_spec: WriteSpec) -> None:
    text = HEAD + CONFIDENTIAL + "tasks:\n  - role: refactor\n    instruction: x\n"
    text += "models:\n  refactor: [openrouter/qwen/qwen3.6-plus:free, openrouter/z-ai/glm-5.1]\n"
    with pytest.raises(PolicyError) as info:
        prepared(write_spec, text)
    assert info.value.exit_code == 5
    assert "refactor" in str(info.value)


def test_confidential_keeps_local_models(write_spec: WriteSpec) -> None:
    text = HEAD + CONFIDENTIAL
    text += "models:\n  refactor: [openrouter/qwen/qwen3.6-plus:free, ollama/qwen3:8b]\n  debug: local/smollm2\n"
    workflow = prepared(write_spec, text)
    assert refs(workflow, "refactor") == ["ollama/qwen3:8b"]
    assert refs(workflow, "debug") == ["local/smollm2"]
    [refused] = workflow.chains.excluded_report()["refactor"]
    assert refused["model"] == "openrouter/qwen/qwen3.6-plus:free"
    assert "confidential" in refused["reason"]
    assert "debug" not in workflow.chains.excluded_report()


def test_allow_countries_excludes_the_embedded_model(write_spec: WriteSpec) -> None:
    text = HEAD + "policy: {allow_countries: [FR]}\nmodels:\n  default: [local/smollm2, devstral]\n"
    workflow = prepared(write_spec, text)
    assert refs(workflow, "planner") == ["ollama/devstral-small:24b"]
    [refused] = workflow.chains.excluded_report()["planner"]
    assert refused["model"] == "local/smollm2"
    assert "US" in refused["reason"]


def test_allow_countries_leaving_the_planner_without_model_is_a_policy_error(write_spec: WriteSpec) -> None:
    with pytest.raises(PolicyError) as info:
        prepared(write_spec, HEAD + "policy: {allow_countries: [FR]}\n")
    assert info.value.exit_code == 5
    assert "planner" in str(info.value)


# ---------------------------------------------------------------- the shipped example


def test_quickstart_example_prepares() -> None:
    workflow = prepare_workflow(load_spec(REPO / "examples" / "quickstart" / "spec.yaml"))
    assert len(workflow.files.files) == 4
    assert {f.path for f in workflow.files.files} >= {"inventory/store.py", "inventory/pricing.py"}
    assert {"planner", "architecture_review", "refactor", "debug", "arabic_docs"} <= set(workflow.chains.roles)
    assert all(refs(workflow, role) == ["local/smollm2"] for role in workflow.chains.roles)
    assert not workflow.chains.excluded_report()
