"""findings.sarif: SARIF 2.1.0, one result per finding, so review findings show up as
code-scanning annotations, and one per verified patch with the change as its `fix`. The model
that produced a finding is the tool extension that defines its rule; paths are relative to the
repository root (or to the workspace outside git).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

from orchestrator.engine.state import CallRecord
from orchestrator.outputs.residency import refusals
from orchestrator.outputs.result import RunResult
from orchestrator.outputs.verification import sarif_fixes
from orchestrator.spec.kinds import Finding

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
LEVELS = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
# GitHub code scanning ranks findings by this property (0.0-10.0)
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "1.0"}


def repo_prefix(workspace: Path) -> str:
    """The workspace's path inside its git repository ("" at the root or outside git)."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--show-prefix"], cwd=workspace, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def _rule_id(role: str, title: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:60] or "finding"
    return f"{role}/{slug}"


def build_sarif(result: RunResult, line_counts: dict[str, int], version: str) -> dict[str, Any]:
    """The SARIF log of a result. `line_counts` drops lines a model invented."""
    prefix = repo_prefix(Path(result.workspace))
    extensions: list[dict[str, Any]] = []
    ext_index: dict[str, int] = {}
    results = []
    for sub in result.verdicts():  # an ensemble's merged answer speaks for its proposals
        if not sub.ok:
            continue
        for finding in sub.findings():
            if not result.in_workspace(finding.file):  # a path the model made up: no code-scanning alert
                continue
            model = sub.model or "?"
            if model not in ext_index:
                ext_index[model] = len(extensions)
                extensions.append({"name": model, "rules": [], "properties": {"catalogId": sub.catalog_id}})
            extension = extensions[ext_index[model]]
            rule_id = _rule_id(sub.role, finding.title)
            rule_ids = [r["id"] for r in extension["rules"]]
            if rule_id not in rule_ids:
                extension["rules"].append(
                    {
                        "id": rule_id,
                        "shortDescription": {"text": finding.title[:200]},
                        "properties": {
                            "role": sub.role,
                            "security-severity": SECURITY_SEVERITY[finding.severity],
                        },
                    }
                )
                rule_ids.append(rule_id)
            entry = _result(finding, sub, rule_id, rule_ids.index(rule_id), ext_index[model], prefix, line_counts)
            if result.diff is not None:  # a diff-scoped run: whether the pull request's diff shows the line
                entry["properties"]["inDiff"] = result.diff.in_diff(finding.file, finding.line)
            results.append(entry)
    # verified patches, as results with their fix; the others as warnings with their verdict
    fixes = sarif_fixes(result, prefix)
    results += fixes
    fix_rules = [
        {"id": rule, "shortDescription": {"text": _patch_rule(rule)}}
        for rule in sorted({str(f["ruleId"]) for f in fixes})
    ]
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "Sovereign Orchestrator",
                        "version": version,
                        "informationUri": "https://pypi.org/project/sovereign-orchestrator/",
                        "rules": fix_rules,
                    },
                    "extensions": extensions,
                },
                "automationDetails": {"id": f"{result.spec.name}/{result.run_id}"},
                "results": results,
                "properties": {"status": result.status, "exitCode": result.exit_code},
                **_residency(result),
            }
        ],
    }


def _patch_rule(rule: str) -> str:
    if rule.endswith("/verified-patch"):
        return "a patch the project's checks verified"
    verdict = rule.rsplit("/", 1)[-1].removesuffix("-patch").replace("-", " ")
    return f"a proposed patch the project's checks did not verify ({verdict})"


def _residency(result: RunResult) -> dict[str, Any]:
    """The answers refused for residency, as notifications of the run's invocation (they are
    not findings about the code): which call, which model, who served it, where, and why."""
    refused = refusals(result)
    if not refused:
        return {}
    notifications = [
        {
            "descriptor": {"id": "residency/refused"},
            "level": "error",
            "message": {
                "text": f"{r.subtask} ({r.role}): the answer of {r.model}, served by {r.served_by} in {r.region}, "
                f"was refused for residency: {r.reason}"
            },
            "properties": {"subtask": r.subtask, "model": r.model, "servedBy": r.served_by, "region": r.region},
        }
        for r in refused
    ]
    successful = result.status not in ("provider_failure", "policy_refused")
    return {"invocations": [{"executionSuccessful": successful, "toolExecutionNotifications": notifications}]}


def _result(
    finding: Finding,
    sub: CallRecord,
    rule_id: str,
    rule_index: int,
    extension_index: int,
    prefix: str,
    line_counts: dict[str, int],
) -> dict[str, Any]:
    location: dict[str, Any] = {"artifactLocation": {"uri": prefix + finding.file}}
    line = finding.line
    if line is not None and 1 <= line <= line_counts.get(finding.file, 0):
        location["region"] = {"startLine": line}
    text = finding.title
    if finding.detail:
        text += f"\n\n{finding.detail}"
    if finding.suggestion:
        text += f"\n\nSuggestion: {finding.suggestion}"
    return {
        "ruleId": rule_id,
        "rule": {"id": rule_id, "index": rule_index, "toolComponent": {"index": extension_index}},
        "level": LEVELS[finding.severity],
        "message": {"text": text},
        "locations": [{"physicalLocation": location}],
        "properties": {
            "severity": finding.severity,
            "model": sub.model,
            "subtask": sub.id,
            "role": sub.role,
        },
    }
