"""report.md: the run for people. Summary, plan, a section per role, failures, fallbacks taken,
waiting, egress and context packing, rendered from the typed result alone."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from orchestrator.engine.state import CallRecord, PatchCheck
from orchestrator.outputs._escape import cell, fenced, markdown, prose
from orchestrator.outputs._waiting import markdown_waiting
from orchestrator.outputs.residency import pinning_text
from orchestrator.outputs.result import RoleInfo, RunResult
from orchestrator.outputs.verification import markdown_tools, markdown_verification
from orchestrator.spec.kinds import Patch

Add = Callable[[str], None]
SHOWN_OMITTED = 8  # files left out of a prompt named in the report (result.json has them all)


def docs_markdown(output: dict[str, Any], role: RoleInfo | None, heading: str = "#") -> str:
    """A docs answer as Markdown (its HTML and images neutralised); a right-to-left role's block is
    marked so (code spans and fences stay left-to-right by themselves)."""
    body = f"{heading} {cell(output.get('title', ''))}\n\n{markdown(str(output['markdown']).strip())}\n"
    if role is None or role.dir != "rtl":
        return body
    lang = f' lang="{role.lang}"' if role.lang else ""
    return f'<div dir="rtl"{lang}>\n\n{body}\n</div>\n'


def render_markdown(result: RunResult) -> str:
    lines: list[str] = []
    add = lines.append
    totals = result.totals
    add(f"# {cell(result.spec.name)}: workflow report\n")
    add(f"**Goal:** {prose(result.goal)}\n")
    cost_text = f"${totals.cost_usd:.4f}" if totals.cost_usd is not None else "unknown (a model has no price)"
    add(
        f"Run `{result.run_id}` · graph `{cell(result.spec.graph)}` · {len(result.subtasks)} subtasks · "
        f"status **{result.status}** (exit {result.exit_code}) · {result.duration_ms / 1000:.1f} s · "
        f"{totals.tokens_in} tokens in, {totals.tokens_out} out · cost {cost_text}\n"
    )
    if totals.cost_note:
        add(f"_{totals.cost_note}_\n")
    _summary(result, add)
    _plan(result, add)
    by_role: dict[str, list[CallRecord]] = {}
    for sub in result.subtasks:
        by_role.setdefault(sub.role, []).append(sub)
    for role_name, subs in by_role.items():
        role = result.role(role_name)
        add(f"## {cell(role_name)}\n")
        if role is not None:
            add(f"_{cell(role.description)}_\n")
        for sub in subs:
            _subtask(sub, role, add)
    markdown_verification(result, add)
    markdown_tools(result, add)
    _failures(result, add)
    markdown_waiting(result, add)
    _egress(result, add)
    _context(result, add)
    return "\n".join(lines).rstrip() + "\n"


def _summary(result: RunResult, add: Add) -> None:
    aggregate = result.aggregate
    output = aggregate.output if aggregate else None
    add("## Summary\n")
    if not output:
        error = aggregate.error.message if aggregate and aggregate.error else "not run"
        add(f"_The aggregation failed: {cell(error)}. The subtask outputs below are complete._\n")
        return
    assert aggregate is not None
    add(f"{prose(output['summary'])}\n")
    add(f"_Aggregated by `{aggregate.model}`._\n")
    for title, key in (("Decisions", "decisions"), ("Disagreements", "disagreements"), ("Next steps", "next_steps")):
        add(f"### {title}\n")
        items = output.get(key) or []
        add("\n".join(f"- {cell(item)}" for item in items) + "\n" if items else "_None._\n")


_SOURCES = {
    "spec": "the spec's tasks",
    "planner": "the planner",
    "fallback": "the fallback plan",
    "graph": "the graph's nodes",
}


def _plan(result: RunResult, add: Add) -> None:
    plan = result.plan
    add("## Plan\n")
    add(f"Planned by {_SOURCES.get(plan.source, plan.source)}.\n")
    for note in plan.notes:
        add(f"- note: {cell(note)}")
    if plan.notes:
        add("")
    add("| id | role | model | status | tokens in/out | latency | fallbacks |")
    add("| --- | --- | --- | --- | --- | --- | --- |")
    for sub in result.subtasks:
        hops = ", ".join(f"{h.model} ({h.error_kind})" for h in sub.fallbacks) or "-"
        add(
            f"| {cell(sub.id)} | {cell(sub.role)} | {cell(sub.model or '-')} | {_status(sub)} | "
            f"{sub.tokens_in}/{sub.tokens_out} | {sub.latency_ms} ms | {cell(hops)} |"
        )
    add("")


def _status(sub: CallRecord) -> str:
    return f"{sub.status} (cached)" if sub.cached else sub.status


def _subtask(sub: CallRecord, role: RoleInfo | None, add: Add) -> None:
    add(f"### {cell(sub.id)}: {cell(sub.instruction[:160])}\n")
    if sub.proposal_of:
        add(f"_A proposal of the ensemble `{sub.proposal_of}`._\n")
    if sub.proposals:
        add(f"_Merged from the proposals {', '.join(f'`{p}`' for p in sub.proposals)}._\n")
    if not sub.ok:
        add(f"**Failed:** {cell(sub.error.message if sub.error else None)}\n")
        return
    add(f"_Model: `{sub.model}`{' (cached)' if sub.cached else ''}_\n")
    output = sub.output or {}
    _body(sub, role, output, add)
    if output.get("disagreements") is not None:
        add("**Disagreements between the proposals:**\n")
        add(
            "\n".join(f"- {cell(d)}" for d in output["disagreements"]) + "\n"
            if output["disagreements"]
            else "_None._\n"
        )


def _body(sub: CallRecord, role: RoleInfo | None, output: dict[str, Any], add: Add) -> None:
    checks = iter(sub.checks)
    kind = role.output if role is not None else "text"
    if kind == "findings":
        findings = sub.findings()
        if not findings:
            add("No findings.\n")
            return
        add("| severity | location | title | suggestion |")
        add("| --- | --- | --- | --- |")
        for f in findings:
            where = f"{f.file}:{f.line}" if f.line else f.file
            add(f"| {f.severity} | {cell(where)} | {cell(f.title)} | {cell(f.suggestion)} |")
        add("")
        for f in findings:
            add(f"- **{cell(f.title)}**: {cell(f.detail)}")
        add("")
    elif kind == "patches":
        patches = sub.patches()
        for patch in patches:
            _patch(patch, next(checks, None), add)
        if not patches:
            add("No patches proposed.\n")
    elif kind == "diagnosis":
        add(f"**Root cause:** {prose(output['root_cause'])}\n")
        add("**Evidence:**\n")
        add("\n".join(f"- {cell(e)}" for e in output.get("evidence") or ["(none given)"]) + "\n")
        fix = sub.patches()
        if fix:
            add("**Proposed fix:**\n")
            _patch(fix[0], next(checks, None), add)
    elif kind == "docs":
        add(docs_markdown(output, role, heading="####"))
    elif isinstance(output.get("text"), str):
        add(f"{prose(output['text'])}\n")
    else:
        shown = {k: v for k, v in output.items() if k != "disagreements"}
        add(fenced(json.dumps(shown, indent=2, ensure_ascii=False), "json") + "\n")


def _patch(patch: Patch, check: PatchCheck | None, add: Add) -> None:
    status = "not checked"
    if check is not None:
        status = ("valid: " if check.valid else "invalid: ") + cell(check.message)
    add(f"`{cell(patch.file)}` ({status})\n")
    add(f"{cell(patch.rationale)}\n")
    add(fenced(patch.diff, "diff") + "\n")


def _failures(result: RunResult, add: Add) -> None:
    calls = [c for c in [result.plan.call, *result.subtasks, result.aggregate] if c]
    failed = [s for s in calls if not s.ok]
    hops = [(s.id, h) for s in calls for h in s.fallbacks]
    if failed:
        add("## Failures\n")
        for sub in failed:
            add(f"- {cell(sub.id)} ({cell(sub.role)}): {cell(sub.error.message if sub.error else None)}")
        add("")
    if hops:
        add("## Fallbacks taken\n")
        for sub_id, hop in hops:
            tries = f", {hop.attempts} attempts" if hop.attempts > 1 else ""
            waited = f", waited {hop.waited_s:g}s" if hop.waited_s else ""
            add(f"- {cell(sub_id)}: `{cell(hop.model)}` failed ({hop.error_kind}{tries}{waited}): {cell(hop.message)}")
        add("")
    retried = [s for s in calls if s.attempts > 1]
    if retried:
        add("## Retries\n")
        for sub in retried:
            add(f"- {cell(sub.id)}: `{cell(sub.model)}` answered on attempt {sub.attempts} (waited {sub.waited_s:g}s)")
        add("")
    excluded = result.policy.excluded
    if excluded:
        add("## Models excluded by policy\n")
        for role, items in excluded.items():
            for item in items:
                add(f"- {cell(role)}: `{cell(item.model)}`: {cell(item.reason)}")
        add("")


def _egress(result: RunResult, add: Add) -> None:
    egress = result.egress
    add("## Egress\n")
    if egress.in_process:
        names = ", ".join(f"`{m}`" for m in egress.in_process)
        add(f"Models run on this machine by the run itself (nothing sent): {names}.\n")
    _served(result, add)
    if not egress.hosts:
        add("No data left this machine over the network.\n")
        return
    add("| host | models | requests | bytes sent | bytes received | allowed by |")
    add("| --- | --- | --- | --- | --- | --- |")
    for h in egress.hosts:
        models = ", ".join(f"`{m}`" for m in h.models)
        add(
            f"| {h.host} | {models} | {h.requests} | {h.bytes_sent} | {h.bytes_received} | {cell('; '.join(h.rules))} |"
        )
    add("")


def _served(result: RunResult, add: Add) -> None:
    """Every answer: who served it, where, the request's pinning, and whether it was used."""
    calls = result.egress.calls
    if not calls:
        return
    add("| model | served by | region | host | pinned | answer |")
    add("| --- | --- | --- | --- | --- | --- |")
    for c in calls:
        verdict = "used" if c.verdict == "used" else f"**refused**: {c.reason}"
        add(
            f"| `{cell(c.model)}` | {cell(c.served_by)} | {cell(c.region)} | {cell(c.host or '-')} "
            f"| {cell(pinning_text(c))} | {cell(verdict)} |"
        )
    add("")


def _context(result: RunResult, add: Add) -> None:
    notes = []
    for sub in result.subtasks:
        ctx = sub.context
        if ctx.get("truncated") or ctx.get("omitted"):
            parts = []
            if ctx.get("truncated"):
                parts.append("truncated " + ", ".join(ctx["truncated"]))
            omitted = list(ctx.get("omitted") or [])
            if omitted:
                more = f" and {len(omitted) - SHOWN_OMITTED} more" if len(omitted) > SHOWN_OMITTED else ""
                parts.append("omitted " + ", ".join(omitted[:SHOWN_OMITTED]) + more)
            shown = (ctx.get("map") or {}).get("files")
            if shown:
                parts.append(f"the repository map outlined {shown} more")
            notes.append(f"- {sub.id} ({ctx.get('model')}, {ctx.get('budget')} tokens): {'; '.join(parts)}")
    skipped = result.files.skipped
    if notes or skipped:
        add("## Context\n")
        if notes:
            add(
                "Files did not fit some models' context windows (the files the task is about are packed "
                "first; result.json says for each file whether it was packed whole or cut, and why):\n"
            )
            add("\n".join(notes) + "\n")
        for item in skipped:
            add(f"- skipped `{item.path}`: {item.reason}")
        add("")
