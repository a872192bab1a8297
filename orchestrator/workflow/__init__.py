"""Spec -> runnable Workflow: roles, providers, the chain table, the graph and the files, with
every problem found before any model is called (this is `orchestrator validate`)."""

from orchestrator.policy.chains import DEFAULT_KEY, EMBEDDED, Need
from orchestrator.workflow._describe import describe
from orchestrator.workflow._prepare import Workflow, needed_roles, needs, prepare_workflow
from orchestrator.workflow._providers import default_providers, merge_providers

__all__ = [
    "DEFAULT_KEY",
    "EMBEDDED",
    "Need",
    "Workflow",
    "default_providers",
    "describe",
    "merge_providers",
    "needed_roles",
    "needs",
    "prepare_workflow",
]
