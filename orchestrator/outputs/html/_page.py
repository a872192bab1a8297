"""report.html: one self-contained page rendered from the typed result alone. Inline CSS and SVG,
one small inline script (sorting and filtering the findings; everything reads without it and
printed), and a Content-Security-Policy that forbids every fetch."""

from __future__ import annotations

import json

from orchestrator.engine.state import CallRecord
from orchestrator.outputs.html import _graph, _timeline
from orchestrator.outputs.html._assets import CSS, SCRIPT, content_security_policy
from orchestrator.outputs.html._base import anchor, badge, clip, esc, fmt_cost, fmt_ms, table
from orchestrator.outputs.html._docs import render_docs
from orchestrator.outputs.html._findings import render_findings
from orchestrator.outputs.html._patches import render_diagnoses, render_patches
from orchestrator.outputs.html._review import render_review
from orchestrator.outputs.html._usage import render_models, render_usage
from orchestrator.outputs.result import RunResult

SECTIONS = (
    ("summary", "Summary"),
    ("graph", "Graph"),
    ("timeline", "Timeline"),
    ("subtasks", "Subtasks"),
    ("findings", "Findings"),
    ("review", "Review"),
    ("diagnoses", "Diagnoses"),
    ("patches", "Patches"),
    ("docs", "Docs"),
    ("models", "Models and egress"),
    ("usage", "Usage"),
    ("notes", "Notes"),
)
STATUS_KIND = {
    "ok": "ok",
    "quality_gate": "bad",
    "provider_failure": "failed",
    "policy_refused": "failed",
    "budget_exceeded": "partial",
}


def render_html(result: RunResult) -> str:
    title = f"{result.spec.name}: workflow report"
    bodies = {
        "summary": _summary(result),
        "graph": _graph_section(result),
        "timeline": f'<div class="scroll">{_timeline.render_timeline(result)}</div>{_timeline.LEGEND}',
        "subtasks": _subtasks(result),
        "findings": render_findings(result),
        "review": render_review(result),
        "diagnoses": render_diagnoses(result),
        "patches": render_patches(result),
        "docs": render_docs(result),
        "models": render_models(result),
        "usage": render_usage(result),
        "notes": _notes(result),
    }
    # a section with nothing to show (the review of a run that reviewed no diff) has no link either
    nav = "".join(f'<a href="#{key}">{label}</a>' for key, label in SECTIONS if bodies[key])
    sections = "".join(
        f'<section id="{key}"><h2>{label}</h2>{bodies[key]}</section>' for key, label in SECTIONS if bodies[key]
    )
    return (
        '<!DOCTYPE html>\n<html lang="en" dir="ltr"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{content_security_policy()}">'
        '<meta name="referrer" content="no-referrer">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f"{_header(result)}<nav>{nav}</nav><main>{sections}</main><script>{SCRIPT}</script></body></html>\n"
    )


def _header(result: RunResult) -> str:
    totals = result.totals
    facts = [
        f"run <code>{esc(result.run_id)}</code>",
        f"graph <code>{esc(result.spec.graph)}</code>",
        f"{len(result.subtasks)} subtasks",
        f"started {esc(result.started_at)}",
        f"{fmt_ms(result.duration_ms)}",
        f"{totals.tokens_in} tokens in, {totals.tokens_out} out",
        f"cost {fmt_cost(totals.cost_usd)}",
    ]
    status = badge(result.status.replace("_", " "), STATUS_KIND.get(result.status, "muted"))
    gate = result.verification.gate if result.verification else ""
    gated = f' · <span class="gate">{esc(gate)}</span>' if gate else ""
    return (
        f"<header><h1>{esc(result.spec.name)}: workflow report</h1>"
        f"<p>{status} exit {result.exit_code} · fail on <code>{esc(result.fail_on)}</code> · worst finding "
        f"<code>{esc(result.max_severity or 'none')}</code>{gated}</p>"
        f'<p class="goal"><strong>Goal:</strong> {esc(result.goal.strip())}</p>'
        f'<p class="facts">{" ".join(f"<span>{fact}</span>" for fact in facts)}</p></header>'
    )


def _summary(result: RunResult) -> str:
    aggregate = result.aggregate
    output = aggregate.output if aggregate else None
    if not output:
        error = aggregate.error.message if aggregate and aggregate.error else "not run"
        return f'<p class="muted">The aggregation failed: {esc(error)}. Every subtask output is below.</p>'
    assert aggregate is not None
    parts = [f"<p>{esc(str(output.get('summary', '')).strip())}</p>"]
    parts.append(f'<p class="muted">Aggregated by <code>{esc(aggregate.model)}</code>.</p>')
    for heading, key in (("Decisions", "decisions"), ("Disagreements", "disagreements"), ("Next steps", "next_steps")):
        items = [str(item) for item in output.get(key) or [] if str(item).strip()]
        listed = "".join(f"<li>{esc(item)}</li>" for item in items) or '<li class="muted">none</li>'
        parts.append(f"<h3>{heading}</h3><ul>{listed}</ul>")
    return "".join(parts)


def _graph_section(result: RunResult) -> str:
    if result.graph is None:
        return '<p class="muted">The graph was not recorded for this run.</p>'
    plan = result.plan
    note = f"<p>Planned by {esc(plan.source)}" + (f": {esc('; '.join(plan.notes))}" if plan.notes else "") + ".</p>"
    return f'{note}<div class="scroll">{_graph.render_graph(result.graph)}</div>{_graph.LEGEND}'


def _model(result: RunResult, model: str | None) -> str:
    if not model:
        return "-"
    info = result.models.get(model)
    country = f" ({esc(info.country)})" if info and info.country else ""
    return f"<code>{esc(model)}</code>{country}"


def _subtasks(result: RunResult) -> str:
    rows = []
    calls: list[CallRecord] = [*([result.plan.call] if result.plan.call else []), *result.subtasks]
    calls += [result.aggregate] if result.aggregate else []
    for call in calls:
        status = "cached" if call.cached and call.ok else call.status
        hops = ", ".join(f"{h.model} ({h.error_kind})" for h in call.fallbacks)
        note = ""
        if call.proposal_of:
            note = f"proposal of {call.proposal_of}"
        elif call.proposals:
            note = f"merges {', '.join(call.proposals)}"
        detail = esc(call.error.message) if call.error else esc(clip(call.instruction, 160))
        rows.append(
            f'<tr id="{anchor("subtask", call.id)}" class="subtask" data-subtask="{esc(call.id)}">'
            f"<td><strong>{esc(call.id)}</strong><br><small>{esc(call.node or call.role)}</small></td>"
            f"<td>{esc(call.role)}</td><td>{_model(result, call.model)}</td>"
            f"<td>{badge(status, 'ok' if call.ok else 'failed')}</td>"
            f"<td>{call.tokens_in} / {call.tokens_out}</td><td>{esc(fmt_ms(call.latency_ms))}</td>"
            f"<td>{esc(hops) or '-'}</td><td>{detail}<br><small class='muted'>{esc(note)}</small>"
            f"{_other_output(result, call)}</td></tr>"
        )
    header = "<tr><th>id</th><th>role</th><th>model</th><th>status</th><th>tokens in/out</th><th>latency</th>"
    header += "<th>fallbacks</th><th>instruction</th></tr>"
    return f'<table class="subtasks"><thead>{header}</thead><tbody>{"".join(rows)}</tbody></table>'


def _other_output(result: RunResult, call: CallRecord) -> str:
    """Answers of kinds without a section of their own (text, a JSON Schema of the role's)."""
    role = result.role(call.role)
    kind = role.output if role is not None else "text"
    if not call.output or kind in ("findings", "patches", "diagnosis", "docs", "plan", "aggregate"):
        return ""
    if call.role in ("planner", "aggregate"):
        return ""
    text = call.output.get("text") if isinstance(call.output.get("text"), str) else None
    shown = text if text is not None else json.dumps(call.output, indent=2, ensure_ascii=False)
    return f'<pre class="answer">{esc(clip(shown, 20000))}</pre>'


def _notes(result: RunResult) -> str:
    parts = []
    excluded = [
        [esc(owner), f"<code>{esc(item.model)}</code>", esc(item.reason)]
        for owner, items in result.policy.excluded.items()
        for item in items
    ]
    if excluded:
        parts.append("<h3>Models excluded by policy</h3>" + table(["role or node", "model", "why"], excluded))
    hops = [
        [esc(call.id), f"<code>{esc(h.model)}</code>", esc(h.error_kind), str(h.attempts), esc(h.message)]
        for call in result.calls()
        for h in call.fallbacks
    ]
    if hops:
        parts.append("<h3>Fallbacks taken</h3>" + table(["subtask", "model", "error", "attempts", "message"], hops))
    context = []
    for sub in result.subtasks:
        ctx = sub.context
        if ctx.get("truncated") or ctx.get("omitted"):
            cut = ", ".join(map(str, ctx.get("truncated") or [])) or "-"
            left = ", ".join(map(str, ctx.get("omitted") or [])) or "-"
            context.append([esc(sub.id), esc(ctx.get("model")), esc(cut), esc(left)])
    if context:
        parts.append("<h3>Context</h3>" + table(["subtask", "model", "truncated", "omitted"], context))
    skipped = [[f"<code>{esc(s.path)}</code>", esc(s.reason)] for s in result.files.skipped]
    if skipped:
        parts.append("<h3>Files skipped</h3>" + table(["file", "why"], skipped))
    if result.warnings:
        parts.append("<h3>Warnings</h3><ul>" + "".join(f"<li>{esc(w)}</li>" for w in result.warnings) + "</ul>")
    if result.pending:
        parts.append(f"<h3>Pending</h3><p>{len(result.pending)} call(s) stopped by the budget; resume the run.</p>")
    return "".join(parts)
