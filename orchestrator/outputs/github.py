"""GitHub Actions: a Markdown step summary (`GITHUB_STEP_SUMMARY`) and `::error` workflow
commands that annotate the findings at or above fail_on on the pull request's diff."""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.outputs._escape import cell, prose
from orchestrator.outputs.residency import refusals
from orchestrator.outputs.result import RunResult
from orchestrator.outputs.verification import summary_lines
from orchestrator.spec.kinds import at_or_above


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def error_commands(result: RunResult, prefix: str) -> list[str]:
    """`::error file=..,line=..,title=..::message` for each finding at or above fail_on."""
    lines = []
    for sub in result.verdicts():
        for finding in sub.findings():
            if not at_or_above(finding.severity, result.fail_on):
                continue
            props = []
            if result.in_workspace(finding.file):  # a path the model made up annotates no file
                props.append(f"file={_escape_property(prefix + finding.file)}")
                if finding.line:
                    props.append(f"line={int(finding.line)}")
            props.append(f"title={_escape_property(finding.severity + ': ' + finding.title)}")
            message = f"{finding.detail} Suggestion: {finding.suggestion} ({sub.model})"
            lines.append(f"::error {','.join(props)}::{_escape_data(message.strip())}")
    return lines


def step_summary(result: RunResult) -> str:
    totals = result.totals
    lines = [
        f"## {cell(result.spec.name)}: {result.status} (exit {result.exit_code})",
        "",
        f"{len(result.subtasks)} subtasks · {totals.tokens_in} tokens in, {totals.tokens_out} out · "
        f"highest finding: {result.max_severity or 'none'} (fail_on: {result.fail_on})",
        "",
        "| subtask | role | model | status | findings |",
        "| --- | --- | --- | --- | --- |",
    ]
    for sub in result.subtasks:
        model = cell(sub.model or "-")
        lines.append(f"| {cell(sub.id)} | {cell(sub.role)} | {model} | {sub.status} | {len(sub.findings())} |")
    lines += summary_lines(result)
    refused = refusals(result)
    if refused:
        lines += [
            "",
            "**Refused for residency** (the answer was served outside the serving rules and discarded):",
            "",
            "| subtask | model | served by | region | why |",
            "| --- | --- | --- | --- | --- |",
        ]
        lines += [
            f"| {cell(r.subtask)} | {cell(r.model)} | {cell(r.served_by)} | {cell(r.region)} | {cell(r.reason)} |"
            for r in refused
        ]
    lines += review_lines(result)
    summary = (result.aggregate.output or {}).get("summary") if result.aggregate else None
    if summary:
        lines += ["", prose(summary)]
    return "\n".join(lines) + "\n"


def review_lines(result: RunResult) -> list[str]:
    """A diff-scoped run: what becomes of each finding and patch in the pull request's review."""
    if result.diff is None:
        return []
    from orchestrator.outputs.review import build_review

    review = build_review(result)
    verdict = "request changes" if review.event == "REQUEST_CHANGES" else "comment"
    lines = ["", f"### Review ({verdict}): {len(review.comments)} comment(s) on the diff", ""]
    lines += ["| finding or patch | where | becomes | why |", "| --- | --- | --- | --- |"]
    for row in review.rows:
        lines.append(f"| {cell(row.label)} | `{cell(row.where)}` | {row.became} | {cell(row.why)} |")
    skipped = [f for f in result.diff.files if not f.reviewed]
    if skipped:
        lines += ["", "Not reviewed: " + ", ".join(f"`{cell(f.path)}` ({cell(f.reason)})" for f in skipped)]
    return lines


def in_github_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true" or bool(os.environ.get("GITHUB_STEP_SUMMARY"))


def write_step_summary(result: RunResult) -> Path | None:
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(step_summary(result))
    return path
