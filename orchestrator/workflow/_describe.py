"""What `validate` and `run --dry-run` print of a prepared workflow: the resolved plan of the run
(files, chains and what the policy removed, pinning, the effective rules, checks and how patches
will be judged, MCP servers, the diff under review). Calls no model."""

from __future__ import annotations

from typing import Any

from orchestrator.workflow._mcp import mcp_plan
from orchestrator.workflow._prepare import Workflow


def describe(workflow: Workflow) -> dict[str, Any]:
    """What `validate` and `run --dry-run` print: the resolved plan of the run."""
    spec = workflow.loaded.spec
    return {
        "spec": str(workflow.loaded.path),
        "name": spec.name,
        "graph": workflow.graph_name,
        "workspace": str(workflow.loaded.workspace),
        "files": [f.path for f in workflow.files.files],
        "skipped_files": [{"path": p, "reason": r} for p, r in workflow.files.skipped],
        "tasks": [t.model_dump() for t in spec.tasks],
        "chains": {role: [r.ref for r in chain] for role, chain in workflow.chains.base_chains().items()},
        "node_chains": {node: [r.ref for r in chain] for node, chain in workflow.chains.node_chains().items()},
        "excluded_by_policy": workflow.chains.excluded_report(),
        "pinned": {
            role: {r.ref: r.pin.as_dict() for r in chain if r.pin is not None}
            for role, chain in workflow.chains.base_chains().items()
            if any(r.pin is not None for r in chain)
        },
        "policy": [line.as_dict() for line in workflow.policy_lines],
        "warnings": workflow.warnings,
        "checks": {name: check.run for name, check in spec.checks.items()},
        "verify": _verify_plan(workflow),
        "mcp_servers": mcp_plan(workflow.loaded, workflow.roles, sandboxed=workflow.sandboxed_servers),
        "diff": _diff_plan(workflow),
    }


def _diff_plan(workflow: Workflow) -> dict[str, Any] | None:
    """What a diff-scoped run reviews: the revisions, and each changed file (reviewed or why not)."""
    if workflow.diff is None:
        return None
    report = workflow.diff.report
    files = [
        {"path": f.path, "status": f.status, "reviewed": f.reviewed, **({"reason": f.reason} if f.reason else {})}
        for f in report.files
    ]
    return {"base": report.base_ref, "merge_base": report.base_sha, "head": report.head_sha, "files": files}


def _verify_plan(workflow: Workflow) -> dict[str, Any] | None:
    """How patches will be judged: the checks, reflections, and the sandbox found here."""
    from orchestrator.checks import find_sandbox, sandbox_mode, shared_paths

    spec = workflow.loaded.spec
    if not spec.checks:
        return None
    policy, mode = workflow.operator.policy, sandbox_mode(spec.verify.sandbox)
    shared = shared_paths(workflow.loaded.workspace)
    sandbox = find_sandbox(mode, shared, limits=policy.checks_limits, env=policy.checks_env)
    judged = spec.verify.checks if spec.verify.checks is not None else list(spec.checks)
    return {"checks": judged, "reflections": spec.verify.reflections, **sandbox.info().model_dump()}
