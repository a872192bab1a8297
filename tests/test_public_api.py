"""The public API is curated, lazy and pinned (as httpx pins its exported members): adding or
removing a name is a decision this test makes visible."""

from __future__ import annotations

import json
import subprocess
import sys

import orchestrator

PUBLIC = [
    "BudgetExceeded",
    "CallRecord",
    "CallSettings",
    "CheckpointError",
    "ExitStatus",
    "GraphKit",
    "Interrupted",
    "LoadedSpec",
    "OrchestratorError",
    "PatchVerdict",
    "PolicyError",
    "Problem",
    "Progress",
    "ProviderConfig",
    "ProviderError",
    "ProviderKind",
    "ProviderTraits",
    "Role",
    "Route",
    "RunOptions",
    "RunOutcome",
    "RunResult",
    "Spec",
    "SpecError",
    "SweepResult",
    "Workflow",
    "apply_patches",
    "load_spec",
    "plan_sweep",
    "prepare_workflow",
    "register_provider",
    "resume_workflow",
    "run_sweep",
    "run_sweep_async",
    "run_workflow",
    "run_workflow_async",
    "sweep_options",
    "verify_patch",
    "verify_patches",
]


def test_the_exported_names_are_pinned() -> None:
    assert orchestrator.__all__ == PUBLIC
    for name in PUBLIC:
        value = getattr(orchestrator, name)
        assert getattr(value, "__name__", name) == name, name  # the object, not a module of that name
    assert set(dir(orchestrator)) >= set(PUBLIC)


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        orchestrator.run_flow  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "run_flow" in str(exc)
    else:
        raise AssertionError("a name outside the API resolved")


def test_importing_the_package_is_cheap_and_loads_names_on_first_use() -> None:
    code = (
        "import sys, json, orchestrator\n"
        "before = sorted({m.split('.')[0] for m in sys.modules})\n"
        "orchestrator.ExitStatus\n"
        "print(json.dumps([before, 'orchestrator.errors' in sys.modules, 'orchestrator.runtime' in sys.modules]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, errors_loaded, runtime_loaded = json.loads(done.stdout)
    assert not {"pydantic", "langgraph", "langchain_core", "structlog", "click"} & set(before)
    assert errors_loaded and not runtime_loaded  # only what was asked for
