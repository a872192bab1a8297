"""Patches as rendered diffs (old and new line numbers, additions and removals marked) with
their verdict (what the checks said, each check before and after, the tests fixed and broken,
the reflections and the model that took over) and check output; diagnoses with their evidence.
`git apply --check` is shown as "applies", never as a verdict."""

from __future__ import annotations

import re
from typing import Any

from orchestrator.checks import CheckOutcome, PatchVerdict
from orchestrator.engine.state import CallRecord, PatchCheck
from orchestrator.outputs.html._base import anchor, badge, esc
from orchestrator.outputs.result import RunResult
from orchestrator.spec.kinds import Patch

MAX_DIFF_LINES = 2000
HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@")
GOOD = {"verified", "valid", "applies", "pass", "passed"}
VERDICT_KIND = {"verified": "good", "inconclusive": "partial", "unverified": "bad", "not_applied": "bad"}
SHOWN_TESTS = 10


def render_diff(diff: str) -> str:
    rows = []
    old = new = 0
    lines = diff.splitlines()
    for line in lines[:MAX_DIFF_LINES]:
        left = right = ""
        if line.startswith(("+++", "---", "diff ", "index ")):
            kind = "meta"
        elif line.startswith("@@"):
            kind = "hunk"
            match = HUNK.match(line)
            if match:
                old, new = int(match.group(1)), int(match.group(2))
        elif line.startswith("+"):
            kind, right, new = "add", str(new), new + 1
        elif line.startswith("-"):
            kind, left, old = "del", str(old), old + 1
        elif line.startswith("\\"):
            kind = "meta"
        else:
            kind, left, right, old, new = "ctx", str(old), str(new), old + 1, new + 1
        rows.append(
            f'<tr class="d-{kind}"><td class="ln">{left}</td><td class="ln">{right}</td>'
            f"<td><code>{esc(line) or ' '}</code></td></tr>"
        )
    more = len(lines) - MAX_DIFF_LINES
    if more > 0:
        rows.append(f'<tr class="d-meta"><td></td><td></td><td>… {more} more lines in patches/</td></tr>')
    return f'<table class="diff" dir="ltr">{"".join(rows)}</table>'


def verdict(check: PatchCheck | None) -> tuple[str, str]:
    """The verdict word and its colour class; a check record that carries a `verdict` of its own
    (verified, unverified, not_applied, rejected) speaks for itself."""
    if check is None:
        return "not checked", "muted"
    said: Any = getattr(check, "verdict", None)
    if said:
        return str(said), "good" if str(said) in GOOD else "bad"
    return ("applies", "good") if check.valid else ("does not apply", "bad")


def _check_output(check: PatchCheck | None) -> str:
    if check is None:
        return ""
    parts = [check.message] if check.message else []
    for name in ("output", "before", "after", "log"):  # what richer check records may add
        value = getattr(check, name, None)
        if value:
            parts.append(f"{name}: {value}")
    text = "\n".join(str(p) for p in parts)
    return f'<pre class="checkout" dir="ltr">{esc(text[:4000])}</pre>' if text else ""


def _patch(sub: CallRecord, index: int, patch: Patch, check: PatchCheck | None, judged: PatchVerdict | None) -> str:
    applies, _ = verdict(check)
    if judged is not None:
        word, kind = judged.verdict.replace("_", " "), VERDICT_KIND.get(judged.verdict, "bad")
    else:
        word, kind = "not verified", "muted"
    return (
        f'<article class="patch" data-subtask="{esc(sub.id)}" data-verdict="{esc(word)}"><h3><code>'
        f"{esc(patch.file)}</code> {badge(word, kind)} "
        f'<span class="muted applies" title="git apply --check on the workspace">{esc(applies)}</span></h3>'
        f'<p class="muted">from <a href="#{anchor("subtask", sub.id)}">{esc(sub.id)}</a> ({esc(sub.role)}, '
        f"{esc(sub.model or '')}) · patch {index}</p><p>{esc(patch.rationale)}</p>"
        f"{_judged(sub, judged)}{_check_output(check)}{render_diff(patch.diff)}</article>"
    )


def _judged(sub: CallRecord, judged: PatchVerdict | None) -> str:
    """The verdict's reason, each check before and after, the tests it changed, and how the
    subtask got there (earlier attempts, reflections, the models that left)."""
    if judged is None:
        return '<p class="muted">No check judged this patch (the spec declares no checks).</p>'
    parts = [f'<p class="verdict-reason">{esc(judged.reason)}</p>']
    rows = [_check_row(check) for check in judged.checks]
    if rows:
        head = "<tr><th>check</th><th>before → after</th><th>says</th><th>tests</th></tr>"
        parts.append(f'<table class="checks"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>')
    if judged.touches_tests:
        files = ", ".join(judged.touches_tests)
        said = "the judge changed: its changes were kept" if judged.judge_changed else "judged with the originals"
        parts.append(f'<p class="muted">Touches the tests ({esc(files)}): {esc(said)}.</p>')
    steps = [f"attempt {v.attempt} by {v.model or '-'}: {v.verdict}" for v in sub.verification if not v.final]
    steps += [f"{hop.model} left: {hop.message}" for hop in sub.fallbacks]
    if sub.reflections or steps:
        listed = "".join(f"<li>{esc(step)}</li>" for step in steps)
        parts.append(f'<p class="muted">{sub.reflections} reflection(s) before this answer.</p><ul>{listed}</ul>')
    return "".join(parts)


def _check_row(check: CheckOutcome) -> str:
    changed = []
    tests = check.tests
    for key in ("fixed", "broken", "still_failing", "added", "removed"):
        names: list[str] = getattr(tests, key) if tests is not None else []
        if names and tests is not None:
            count = tests.counts.get(key, len(names))
            shown = ", ".join(names[:SHOWN_TESTS]) + (f" (of {count})" if count > SHOWN_TESTS else "")
            changed.append(f"<strong>{key.replace('_', ' ')}</strong>: {esc(shown)}")
    reused = " (the run_check run of the same patch)" if check.reused else ""
    return (
        f"<tr><td><code>{esc(check.name)}</code></td><td>{esc(check.before)} → {esc(check.after or 'not run')}"
        f"{esc(reused)}</td><td>{esc(check.problem or 'passes')}</td><td>{'<br>'.join(changed) or '-'}</td></tr>"
    )


def render_patches(result: RunResult) -> str:
    blocks = []
    for sub in result.verdicts():
        checks = list(sub.checks)
        finals = {v.id: v for v in sub.verification if v.final}
        for index, patch in enumerate(sub.patches()):
            check = checks[index] if index < len(checks) else None
            blocks.append(_patch(sub, index + 1, patch, check, finals.get(f"{sub.id}-{index + 1}")))
    return _environment(result) + ("".join(blocks) or '<p class="muted">No patches were proposed.</p>')


def _environment(result: RunResult) -> str:
    """How the checks saw the project: the sandbox, the interpreter, where packages came from,
    and the quality gate."""
    report = result.verification
    if report is None:
        return ""
    sandbox = "in a bubblewrap sandbox" if report.sandbox.runner == "bubblewrap" else "WITHOUT a sandbox"
    lines = [f"Checks {', '.join(report.judged)} ran {sandbox}."]
    environment = report.environment
    if environment is not None and environment.interpreter:
        lines.append(f"Interpreter: {environment.interpreter} ({environment.source}).")
        for package in environment.packages:
            where = "the patched copy" if package.in_copy else "NOT the patched copy"
            lines.append(f"{package.package} imported from {package.path or package.error} ({where}).")
    if report.gate:
        lines.append(f"Quality gate: {report.gate}.")
    return "".join(f'<p class="verification">{esc(line)}</p>' for line in lines)


def render_diagnoses(result: RunResult) -> str:
    blocks = []
    for sub in result.verdicts():
        role = result.role(sub.role)
        output = sub.output or {}
        if role is None or role.output != "diagnosis" or not sub.ok:
            continue
        evidence = "".join(f"<li>{esc(e)}</li>" for e in output.get("evidence") or []) or "<li>(none given)</li>"
        fix = "a fix is proposed under Patches" if sub.patches() else "no fix proposed"
        blocks.append(
            f'<article class="diagnosis" data-subtask="{esc(sub.id)}"><h3>{esc(sub.id)}: '
            f"{esc(sub.instruction)}</h3><p><strong>Root cause:</strong> {esc(output.get('root_cause'))}</p>"
            f'<p><strong>Evidence:</strong></p><ul>{evidence}</ul><p class="muted">{esc(fix)}</p></article>'
        )
    return "".join(blocks)
