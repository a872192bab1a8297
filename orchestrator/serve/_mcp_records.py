"""What the MCP server's run_workflow and get_run answer, as a plain JSON record and a few lines:
a finished run's summary, findings, patches with their verdicts, exit status and outputs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.outputs import RunResult
    from orchestrator.runtime import RunOutcome


def run_record(outcome: RunOutcome, output_dir: Path) -> dict[str, Any]:
    """A finished run as a tool answers it: status, summary, findings, patches with their
    verdicts and checks, and where every output was written."""
    return result_record(outcome.result, int(outcome.exit_code), outcome.written, output_dir)


def result_record(result: RunResult, exit_status: int, written: list[Path], output_dir: Path) -> dict[str, Any]:
    """The record of a run's result, however it was obtained (a run of this server, or the ledger's)."""
    from orchestrator.outputs._write import slug

    judged = result.verification.patches if result.verification else []
    verdicts = {v.id: v for v in judged if v.final}
    written = [p.resolve() for p in written]
    summary = (result.aggregate.output or {}).get("summary") if result.aggregate else None
    findings = [
        {"subtask": sub.id, "role": sub.role, **finding.model_dump(mode="json")}
        for sub in result.verdicts()
        for finding in sub.findings()
    ]
    patches = []
    for sub in result.verdicts():
        for index, patch in enumerate(sub.patches(), 1):
            verdict = verdicts.get(f"{sub.id}-{index}")
            prefix = f"{slug(sub.id)}-{index}-"
            path = next((p for p in written if p.parent.name == "patches" and p.name.startswith(prefix)), None)
            patches.append(
                {
                    "id": f"{sub.id}-{index}",
                    "subtask": sub.id,
                    "role": sub.role,
                    "file": patch.file,
                    "rationale": patch.rationale,
                    "diff": patch.diff,
                    "verdict": verdict.verdict if verdict else None,
                    "reason": verdict.reason if verdict else "",
                    "checks": [c.model_dump() for c in verdict.checks] if verdict else [],
                    "path": str(path) if path else None,
                }
            )
    return {
        "run_id": result.run_id,
        "status": result.status,
        "exit_status": exit_status,
        "spec": result.spec.name,
        "graph": result.spec.graph,
        "summary": summary if isinstance(summary, str) else "",
        "findings": findings,
        "patches": patches,
        "subtasks": [
            {
                "id": s.id,
                "role": s.role,
                "status": s.status,
                "model": s.model,
                "error": s.error.message if s.error else None,
            }
            for s in result.verdicts()
        ],
        "tokens": {"in": result.totals.tokens_in, "out": result.totals.tokens_out},
        "cost_usd": result.totals.cost_usd,
        "warnings": result.warnings,
        "output_dir": str(output_dir.resolve()),
        "outputs": [str(p) for p in written],
    }


def run_text(record: dict[str, Any]) -> str:
    """The few lines a person reads first."""
    verified = sum(1 for p in record["patches"] if p["verdict"] == "verified")
    lines = [
        f"run {record['run_id']}: {record['status']} (exit status {record['exit_status']}), "
        f"{len(record['subtasks'])} subtasks, {len(record['findings'])} findings, "
        f"{len(record['patches'])} patches ({verified} verified)"
    ]
    if record["summary"]:
        summary = " ".join(record["summary"].split())
        lines.append(f"summary: {summary[:600]}{'...' if len(summary) > 600 else ''}")
    report = next((p for p in record["outputs"] if p.endswith("report.md")), None)
    lines.append(f"report: {report}" if report else f"outputs in {record['output_dir']}")
    names = [n for n in ("report.md", "report.html") if any(p.endswith(n) for p in record["outputs"])]
    lines.append("resources: " + ", ".join(f"run://{record['run_id']}/{n}" for n in [*names, "result.json"]))
    return "\n".join(lines)
