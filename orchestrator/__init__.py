"""Sovereign Orchestrator: coding workflows across many LLMs, with data sovereignty.

The library API (the CLI is a thin layer over it):

    from orchestrator import load_spec, prepare_workflow, run_workflow, resume_workflow
    workflow = prepare_workflow(load_spec("spec.yaml", ["models.refactor=ollama/qwen3:8b"]))
    outcome = run_workflow(workflow)         # RunOutcome(result: RunResult, exit_code: ExitStatus, written)
    outcome = resume_workflow(run_id)        # finish a run stopped by its budget or a signal

Importing the package is cheap and has no side effects: every name below loads on first use.
`orchestrator.testing` has the fake providers, scripted models and the guard against real model
calls that the project's own tests use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "load_spec": "orchestrator.spec",
    "Spec": "orchestrator.spec",
    "LoadedSpec": "orchestrator.spec",
    "Role": "orchestrator.spec",
    "prepare_workflow": "orchestrator.workflow",
    "Workflow": "orchestrator.workflow",
    "run_workflow": "orchestrator.runtime",
    "run_workflow_async": "orchestrator.runtime",
    "resume_workflow": "orchestrator.runtime",
    "RunOptions": "orchestrator.runtime",
    "RunOutcome": "orchestrator.runtime",
    "RunResult": "orchestrator.outputs",
    "verify_patch": "orchestrator.runtime.verify",
    "verify_patches": "orchestrator.runtime.verify",
    "apply_patches": "orchestrator.runtime.apply",
    "plan_sweep": "orchestrator.runtime.sweep",
    "run_sweep": "orchestrator.runtime.sweep",
    "run_sweep_async": "orchestrator.runtime.sweep",
    "sweep_options": "orchestrator.runtime.sweep",
    "SweepResult": "orchestrator.runtime.sweep",
    "PatchVerdict": "orchestrator.checks",
    "CallRecord": "orchestrator.engine",
    "GraphKit": "orchestrator.engine",
    "Progress": "orchestrator.engine",
    "Route": "orchestrator.catalog",
    "ProviderConfig": "orchestrator.catalog",
    "ProviderKind": "orchestrator.models",
    "ProviderTraits": "orchestrator.models",
    "CallSettings": "orchestrator.models",
    "register_provider": "orchestrator.models",
    "ExitStatus": "orchestrator.errors",
    "Problem": "orchestrator.errors",
    "OrchestratorError": "orchestrator.errors",
    "SpecError": "orchestrator.errors",
    "PolicyError": "orchestrator.errors",
    "ProviderError": "orchestrator.errors",
    "BudgetExceeded": "orchestrator.errors",
    "CheckpointError": "orchestrator.errors",
    "Interrupted": "orchestrator.errors",
}
__all__ = [
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
]  # pinned by tests/test_public_api.py; every name is in _EXPORTS

if TYPE_CHECKING:
    from orchestrator.catalog import ProviderConfig, Route
    from orchestrator.checks import PatchVerdict
    from orchestrator.engine import CallRecord, GraphKit, Progress
    from orchestrator.errors import (
        BudgetExceeded,
        CheckpointError,
        ExitStatus,
        Interrupted,
        OrchestratorError,
        PolicyError,
        Problem,
        ProviderError,
        SpecError,
    )
    from orchestrator.models import CallSettings, ProviderKind, ProviderTraits, register_provider
    from orchestrator.outputs import RunResult
    from orchestrator.runtime import (
        RunOptions,
        RunOutcome,
        resume_workflow,
        run_workflow,
        run_workflow_async,
    )
    from orchestrator.runtime.apply import apply_patches
    from orchestrator.runtime.sweep import SweepResult, plan_sweep, run_sweep, run_sweep_async, sweep_options
    from orchestrator.runtime.verify import verify_patch, verify_patches
    from orchestrator.spec import LoadedSpec, Role, Spec, load_spec
    from orchestrator.workflow import Workflow, prepare_workflow


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'orchestrator' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
