"""Sovereign Orchestrator: coding workflows across many LLMs, with data sovereignty.

The library API (the CLI is a thin layer over it):

    from orchestrator import load_spec, prepare_workflow, run_workflow
    workflow = prepare_workflow(load_spec("spec.yaml"))
    outcome = run_workflow(workflow)          # RunOutcome(result, exit_code, written)

Importing the package is cheap and has no side effects; the names above load on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_spec", "prepare_workflow", "run_workflow"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "load_spec":
        from orchestrator.spec import load_spec

        return load_spec
    if name == "prepare_workflow":
        from orchestrator.workflow import prepare_workflow

        return prepare_workflow
    if name == "run_workflow":
        from orchestrator.run import run_workflow

        return run_workflow
    raise AttributeError(name)
