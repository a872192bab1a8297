"""The verification of a run for people and for CI: report.md's verification and tool-loop
sections (verdicts, the tests fixed and broken, the interpreter, the quality gate), the SARIF
`fixes` of verified patches and warnings for the others, JUnit test cases (one per check per
patch) and the GitHub summary's lines. Pure functions of the typed result."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orchestrator.checks import CheckOutcome, PatchVerdict, VerificationReport
from orchestrator.outputs.result import RunResult

Add = Callable[[str], None]
OUTPUT_LINES = 15  # of a failing check's output, in report.md


def _cell(text: Any) -> str:
    return str(text if text is not None else "").replace("|", "\\|").replace("\n", " ").strip()


def final_verdicts(result: RunResult) -> list[PatchVerdict]:
    """The verdicts of the patches the run kept (one per patch of each final answer)."""
    return [v for s in result.verdicts() for v in s.verification if v.final]


def markdown_verification(result: RunResult, add: Add) -> None:
    report = result.verification
    if report is None:
        return
    add("## Verification\n")
    sandbox = report.sandbox
    where = "in a bubblewrap sandbox" if sandbox.runner == "bubblewrap" else f"WITHOUT a sandbox ({sandbox.reason})"
    source = " (replayed from the recording)" if report.replayed else ""
    add(f"Patches judged by {', '.join(f'`{c}`' for c in report.judged)}, run {where}{source}.\n")
    for line in environment_lines(report):
        add(f"{line}\n")
    if report.gate:
        add(f"**Quality gate**: {_cell(report.gate)} (exit 1).\n")
    if report.baselines:
        add(
            "Baseline (the workspace as it is): " + ", ".join(f"`{b.name}` {b.status}" for b in report.baselines) + "\n"
        )
    if not report.patches:
        add("_No patch was proposed._\n")
        return
    add("| patch | model | attempt | verdict | " + " | ".join(report.judged) + " |")
    add("| --- | --- | --- | --- | " + " | ".join("---" for _ in report.judged) + " |")
    for verdict in report.patches:
        by_name = {c.name: c for c in verdict.checks}
        cells = [_before_after(by_name.get(name)) for name in report.judged]
        label = f"**{verdict.id}**" if verdict.final else verdict.id
        add(f"| {label} | {verdict.model or '-'} | {verdict.attempt} | {verdict.verdict} | " + " | ".join(cells) + " |")
    add("")
    for verdict in report.patches:
        if verdict.verdict in ("rejected", "not_applied", "inconclusive"):
            add(f"- {verdict.id}: {verdict.verdict}: {_cell(verdict.reason)}")
    for verdict in (v for v in report.patches if v.final):
        for line in test_lines(verdict):
            add(f"- {verdict.id}: {line}")
    for verdict in (v for v in report.patches if v.final):
        for check in verdict.failing_checks:
            tail = "\n".join(check.output.strip().splitlines()[-OUTPUT_LINES:])
            add(f"\n`{verdict.id}` with `{check.name}` ({check.before} -> {check.after}):\n\n```text\n{tail}\n```")
    combined = report.combined
    if combined is not None:
        checks = ", ".join(f"`{c.name}` {c.before} -> {c.after}" for c in combined.checks)
        add(f"\n**All verified patches together** ({', '.join(combined.applied)}): {combined.verdict}; {checks}")
        for conflict in combined.conflicts:
            add(f"- conflict: `{conflict.patch}`: {_cell(conflict.message)}")
    add("")


def environment_lines(report: VerificationReport) -> list[str]:
    """The interpreter the checks ran and where the packages under test came from."""
    environment = report.environment
    if environment is None:
        return []
    lines = []
    if environment.interpreter:
        version = f", Python {environment.version}" if environment.version else ""
        lines.append(f"Interpreter: `{environment.interpreter}` ({environment.source}{version}).")
    for package in environment.packages:
        where = "the patched copy" if package.in_copy else "**not** the patched copy"
        lines.append(f"`{package.package}` imported from `{_cell(package.path or package.error)}` ({where}).")
    if environment.bound:
        lines.append(f"Ignored files: {_cell(environment.bound)}.")
    return lines


def test_lines(verdict: PatchVerdict) -> list[str]:
    """The tests a patch fixed and broke, and whether it touched the judge."""
    lines = []
    for check in verdict.checks:
        tests = check.tests
        for key in ("fixed", "broken"):
            names: list[str] = getattr(tests, key) if tests is not None else []
            if names and tests is not None:
                count = tests.counts.get(key, len(names))
                more = f" and {count - 10} more" if count > 10 else ""
                lines.append(f"{check.name} {key}: {_cell(', '.join(names[:10]))}{more}")
    if verdict.touches_tests:
        kept = "kept: the judge changed" if verdict.judge_changed else "judged with the originals"
        lines.append(f"touches the tests ({_cell(', '.join(verdict.touches_tests))}): {kept}")
    return lines


def _before_after(outcome: CheckOutcome | None) -> str:
    if outcome is None:
        return "-"
    return f"{outcome.before} -> {outcome.after or 'not run'}"


def markdown_tools(result: RunResult, add: Add) -> None:
    """The tool loops: turns, tool calls and the bounds reached, per subtask."""
    looped = [s for s in result.subtasks if s.tool_calls or s.bounds or s.reflections]
    if not looped:
        return
    add("## Tool calls\n")
    add("| subtask | model | turns | tool calls | reflections | bounds reached |")
    add("| --- | --- | --- | --- | --- | --- |")
    for sub in looped:
        tools = ", ".join(f"{c.tool} ({c.status})" for c in sub.tool_calls) or "-"
        bounds = ", ".join(f"{b.bound} (turn {b.turn})" for b in sub.bounds) or "-"
        add(f"| {sub.id} | {sub.model or '-'} | {sub.turns} | {_cell(tools)} | {sub.reflections} | {bounds} |")
    add("")


def sarif_fixes(result: RunResult, prefix: str) -> list[dict[str, Any]]:
    """A SARIF result per verified patch, with its change as a `fix` (the diff's new lines)."""
    diffs = {f"{s.id}-{i}": (s, p) for s in result.verdicts() for i, p in enumerate(s.patches(), 1)}
    found = []
    for verdict in final_verdicts(result):
        if verdict.id not in diffs:
            continue
        if verdict.verdict != "verified":
            found.append(_not_verified(verdict, *diffs[verdict.id], prefix))
            continue
        sub, patch = diffs[verdict.id]
        checks = ", ".join(f"{c.name} {c.before} -> {c.after}" for c in verdict.checks)
        uri = prefix + patch.file
        found.append(
            {
                "ruleId": f"{sub.role}/verified-patch",
                "level": "note",
                "message": {"text": f"Verified patch {verdict.id} ({checks}): {patch.rationale}".strip()},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri}}}],
                "fixes": [
                    {
                        "description": {"text": patch.rationale or f"patch {verdict.id}"},
                        "artifactChanges": [
                            {"artifactLocation": {"uri": prefix + path}, "replacements": replacements}
                            for path, replacements in _replacements(patch.diff).items()
                        ],
                    }
                ],
                "properties": {"patch": verdict.id, "model": verdict.model, "verdict": verdict.verdict},
            }
        )
    return found


def _not_verified(verdict: PatchVerdict, sub: Any, patch: Any, prefix: str) -> dict[str, Any]:
    """A SARIF warning for a proposed patch the checks did not verify (no `fix`: it is not one)."""
    return {
        "ruleId": f"{sub.role}/{verdict.verdict.replace('_', '-')}-patch",
        "level": "warning",
        "message": {"text": f"Patch {verdict.id} is {verdict.verdict}: {verdict.reason}"},
        "locations": [{"physicalLocation": {"artifactLocation": {"uri": prefix + patch.file}}}],
        "properties": {
            "patch": verdict.id,
            "model": verdict.model,
            "verdict": verdict.verdict,
            "broken": verdict.broken,
            "touches_tests": verdict.touches_tests,
        },
    }


def _replacements(diff: str) -> dict[str, list[dict[str, Any]]]:
    """Each hunk of a unified diff as a SARIF replacement: the old lines' region, the new text."""
    found: dict[str, list[dict[str, Any]]] = {}
    path = ""
    lines = diff.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("+++ "):
            path = line[4:].strip().removeprefix("b/")
        elif line.startswith("@@") and path:
            start = int(line.split()[1].lstrip("-").split(",")[0] or 1)
            old_count, new_text = 0, []
            index += 1
            while index < len(lines) and not lines[index].startswith(("@@", "--- ", "diff ")):
                body = lines[index]
                if body.startswith(("-", " ")):
                    old_count += 1
                if body.startswith(("+", " ")):
                    new_text.append(body[1:])
                index += 1
            first = max(start, 1) if old_count else start + 1  # `@@ -N,0` inserts after line N
            region = {"startLine": first, "startColumn": 1, "endLine": first + old_count, "endColumn": 1}
            text = "".join(f"{line}\n" for line in new_text)  # whole lines, their newlines included
            found.setdefault(path, []).append({"deletedRegion": region, "insertedContent": {"text": text}})
            continue
        index += 1
    return found


def junit_cases(result: RunResult) -> list[tuple[str, str, float, str | None, str]]:
    """(classname, name, seconds, failure kind or None, text) per check per final patch."""
    cases: list[tuple[str, str, float, str | None, str]] = []
    for verdict in final_verdicts(result):
        outcomes = verdict.checks or []
        if verdict.verdict in ("rejected", "not_applied", "inconclusive") and not any(c.after for c in outcomes):
            cases.append((f"{result.spec.name}.verify", f"{verdict.id}", 0.0, "error", verdict.reason))
            continue
        for check in outcomes:
            kind = None if check.good else ("failure" if check.judged == "fail" or check.after == "fail" else "error")
            said = f" ({check.problem})" if check.problem else ""
            text = f"{check.before} -> {check.after}{said}\n{check.output[-4000:]}"
            cases.append(
                (f"{result.spec.name}.verify", f"{verdict.id}: {check.name}", check.duration_ms / 1000, kind, text)
            )
    return cases


def summary_lines(result: RunResult) -> list[str]:
    """The GitHub step summary's verification table."""
    verdicts = final_verdicts(result)
    if result.verification is None or not verdicts:
        return []
    lines = ["", "| patch | verdict | checks | tests |", "| --- | --- | --- | --- |"]
    for verdict in verdicts:
        checks = ", ".join(f"{c.name} {c.before} → {c.after or 'not run'}" for c in verdict.checks) or verdict.reason
        tests = "; ".join(test_lines(verdict)) or "-"
        lines.append(f"| {verdict.id} | {verdict.verdict} | {_cell(checks)} | {_cell(tests)} |")
    if result.verification.gate:
        lines += ["", f"**Quality gate**: {_cell(result.verification.gate)} (exit 1)"]
    return lines
