"""The run's outputs: `result.json` (everything, machine-readable), `report.md` (for people),
`patches/*.diff` and `docs/*.md`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from orchestrator.role import Role

RESULT_SCHEMA_VERSION = 1


def _cell(text: Any) -> str:
    return str(text if text is not None else "").replace("|", "\\|").replace("\n", " ").strip()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:80] or "file"


def write_outputs(
    result: dict[str, Any],
    roles: dict[str, Role],
    out_dir: Path,
    formats: list[str],
    line_counts: dict[str, int] | None = None,
) -> list[Path]:
    """Write the formats asked for (markdown, json, sarif, junit), plus patches and docs."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if "sarif" in formats:
        from orchestrator import __version__
        from orchestrator.sarif import build_sarif

        path = out_dir / "findings.sarif"
        sarif = build_sarif(result, line_counts or {}, __version__)
        path.write_text(json.dumps(sarif, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    if "junit" in formats:
        from orchestrator.junit import build_junit

        path = out_dir / "junit.xml"
        path.write_text(build_junit(result), encoding="utf-8")
        written.append(path)
    if "json" in formats:
        path = out_dir / "result.json"
        path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    if "markdown" in formats:
        path = out_dir / "report.md"
        path.write_text(render_markdown(result, roles), encoding="utf-8")
        written.append(path)
    written += _write_artifacts(result, roles, out_dir)
    return written


def _write_artifacts(result: dict[str, Any], roles: dict[str, Role], out_dir: Path) -> list[Path]:
    written = []
    for sub in result["subtasks"]:
        output = sub.get("output") or {}
        patches = list(output.get("patches") or []) + ([output["fix"]] if output.get("fix") else [])
        for index, patch in enumerate(patches, 1):
            path = out_dir / "patches" / f"{sub['id']}-{index}-{_slug(patch['file'])}.diff"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(patch["diff"] if patch["diff"].endswith("\n") else patch["diff"] + "\n", encoding="utf-8")
            written.append(path)
        role = roles.get(sub["role"])
        if role is not None and role.output == "docs" and output.get("markdown"):
            suffix = ".ar.md" if sub["role"] == "arabic_docs" else ".md"
            path = out_dir / "docs" / f"{sub['id']}-{_slug(sub['role'])}{suffix}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(_docs_markdown(output, rtl=suffix == ".ar.md"), encoding="utf-8")
            written.append(path)
    return written


def _docs_markdown(output: dict[str, Any], *, rtl: bool, heading: str = "#") -> str:
    body = f"{heading} {output.get('title', '')}\n\n{output['markdown'].strip()}\n"
    if not rtl:
        return body
    # right-to-left safe: the block is marked RTL; code spans and fences stay LTR by themselves
    return f'<div dir="rtl" lang="ar">\n\n{body}\n</div>\n'


def render_markdown(result: dict[str, Any], roles: dict[str, Role]) -> str:
    lines: list[str] = []
    add = lines.append
    totals = result["totals"]
    add(f"# {result['spec']['name']}: workflow report\n")
    add(f"**Goal:** {result['goal'].strip()}\n")
    cost = totals["cost_usd"]
    cost_text = f"${cost:.4f}" if cost is not None else "unknown (a model has no price)"
    add(
        f"Run `{result['run_id']}` · graph `{result['spec']['graph']}` · {len(result['subtasks'])} subtasks · "
        f"status **{result['status']}** (exit {result['exit_code']}) · {result['duration_ms'] / 1000:.1f} s · "
        f"{totals['tokens_in']} tokens in, {totals['tokens_out']} out · cost {cost_text}\n"
    )
    if totals.get("cost_note"):
        add(f"_{totals['cost_note']}_\n")
    _summary(result, add)
    _plan(result, add)
    by_role: dict[str, list[dict[str, Any]]] = {}
    for sub in result["subtasks"]:
        by_role.setdefault(sub["role"], []).append(sub)
    for role_name, subs in by_role.items():
        role = roles.get(role_name)
        add(f"## {role_name}\n")
        if role is not None:
            add(f"_{role.description}_\n")
        for sub in subs:
            _subtask(sub, role.output if role and isinstance(role.output, str) else "text", add)
    _failures(result, add)
    _egress(result, add)
    _context(result, add)
    return "\n".join(lines).rstrip() + "\n"


def _summary(result: dict[str, Any], add: Any) -> None:
    aggregate = result.get("aggregate") or {}
    output = aggregate.get("output")
    add("## Summary\n")
    if not output:
        error = (aggregate.get("error") or {}).get("message", "not run")
        add(f"_The aggregation failed: {error}. The subtask outputs below are complete._\n")
        return
    add(f"{output['summary'].strip()}\n")
    add(f"_Aggregated by `{aggregate.get('model')}`._\n")
    for title, key in (("Decisions", "decisions"), ("Disagreements", "disagreements"), ("Next steps", "next_steps")):
        add(f"### {title}\n")
        items = output.get(key) or []
        add("\n".join(f"- {item}" for item in items) + "\n" if items else "_None._\n")


def _plan(result: dict[str, Any], add: Any) -> None:
    plan = result["plan"]
    source = {
        "spec": "the spec's tasks",
        "planner": "the planner",
        "fallback": "the fallback plan",
        "graph": "the graph's nodes",
    }
    add("## Plan\n")
    add(f"Planned by {source.get(plan['source'], plan['source'])}.\n")
    for note in plan.get("notes", []):
        add(f"- note: {_cell(note)}")
    if plan.get("notes"):
        add("")
    add("| id | role | model | status | tokens in/out | latency | fallbacks |")
    add("| --- | --- | --- | --- | --- | --- | --- |")
    for sub in result["subtasks"]:
        hops = ", ".join(f"{h['model']} ({h['error_kind']})" for h in sub.get("fallbacks", [])) or "-"
        add(
            f"| {sub['id']} | {sub['role']} | {sub.get('model') or '-'} | {_status(sub)} | "
            f"{sub.get('tokens_in', 0)}/{sub.get('tokens_out', 0)} | {sub.get('latency_ms', 0)} ms | {_cell(hops)} |"
        )
    add("")


def _status(sub: dict[str, Any]) -> str:
    return f"{sub['status']} (cached)" if sub.get("cached") else sub["status"]


def _subtask(sub: dict[str, Any], kind: str, add: Any) -> None:
    add(f"### {sub['id']}: {_cell(sub['instruction'])[:160]}\n")
    if sub.get("proposal_of"):
        add(f"_A proposal of the ensemble `{sub['proposal_of']}`._\n")
    if sub.get("proposals"):
        add(f"_Merged from the proposals {', '.join(f'`{p}`' for p in sub['proposals'])}._\n")
    if sub["status"] != "ok":
        add(f"**Failed:** {_cell((sub.get('error') or {}).get('message'))}\n")
        return
    add(f"_Model: `{sub['model']}`{' (cached)' if sub.get('cached') else ''}_\n")
    output = sub.get("output") or {}
    _body(sub, kind, output, add)
    if output.get("disagreements") is not None:
        add("**Disagreements between the proposals:**\n")
        add(
            "\n".join(f"- {_cell(d)}" for d in output["disagreements"]) + "\n"
            if output["disagreements"]
            else "_None._\n"
        )


def _body(sub: dict[str, Any], kind: str, output: dict[str, Any], add: Any) -> None:
    checks = iter(sub.get("checks") or [])
    if kind == "findings":
        findings = output.get("findings") or []
        if not findings:
            add("No findings.\n")
            return
        add("| severity | location | title | suggestion |")
        add("| --- | --- | --- | --- |")
        for f in findings:
            where = f"{f['file']}:{f['line']}" if f.get("line") else f["file"]
            add(f"| {f['severity']} | `{_cell(where)}` | {_cell(f['title'])} | {_cell(f['suggestion'])} |")
        add("")
        for f in findings:
            add(f"- **{_cell(f['title'])}**: {_cell(f['detail'])}")
        add("")
    elif kind == "patches":
        for patch in output.get("patches") or []:
            _patch(patch, next(checks, None), add)
        if not output.get("patches"):
            add("No patches proposed.\n")
    elif kind == "diagnosis":
        add(f"**Root cause:** {output['root_cause'].strip()}\n")
        add("**Evidence:**\n")
        add("\n".join(f"- {_cell(e)}" for e in output.get("evidence") or ["(none given)"]) + "\n")
        if output.get("fix"):
            add("**Proposed fix:**\n")
            _patch(output["fix"], next(checks, None), add)
    elif kind == "docs":
        rtl = sub["role"] == "arabic_docs"
        add(_docs_markdown(output, rtl=rtl, heading="####"))
    elif isinstance(output.get("text"), str):
        add(f"{output['text'].strip()}\n")
    else:
        shown = {k: v for k, v in output.items() if k != "disagreements"}
        add(f"```json\n{json.dumps(shown, indent=2, ensure_ascii=False)}\n```\n")


def _patch(patch: dict[str, Any], check: dict[str, Any] | None, add: Any) -> None:
    status = "not checked"
    if check is not None:
        status = ("valid: " if check["valid"] else "invalid: ") + _cell(check["message"])
    add(f"`{_cell(patch['file'])}` ({status})\n")
    add(f"{_cell(patch.get('rationale'))}\n")
    fence = "````" if "```" in patch["diff"] else "```"
    add(f"{fence}diff\n{patch['diff'].rstrip()}\n{fence}\n")


def _failures(result: dict[str, Any], add: Any) -> None:
    calls = [result["plan"].get("call"), *result["subtasks"], result.get("aggregate")]
    calls = [c for c in calls if c]
    failed = [s for s in calls if s["status"] != "ok"]
    hops = [(s["id"], h) for s in calls for h in s.get("fallbacks", [])]
    if failed:
        add("## Failures\n")
        for sub in failed:
            add(f"- {sub['id']} ({sub['role']}): {_cell((sub.get('error') or {}).get('message'))}")
        add("")
    if hops:
        add("## Fallbacks taken\n")
        for sub_id, hop in hops:
            tries = f", {hop['attempts']} attempts" if hop.get("attempts", 1) > 1 else ""
            waited = f", waited {hop['waited_s']:g}s" if hop.get("waited_s") else ""
            add(f"- {sub_id}: `{hop['model']}` failed ({hop['error_kind']}{tries}{waited}): {_cell(hop['message'])}")
        add("")
    retried = [s for s in calls if s.get("attempts", 1) > 1]
    if retried:
        add("## Retries\n")
        for sub in retried:
            add(f"- {sub['id']}: `{sub['model']}` answered on attempt {sub['attempts']} (waited {sub['waited_s']:g}s)")
        add("")
    excluded = result.get("policy", {}).get("excluded") or {}
    if excluded:
        add("## Models excluded by policy\n")
        for role, items in excluded.items():
            for item in items:
                add(f"- {role}: `{item['model']}`: {_cell(item['reason'])}")
        add("")


def _egress(result: dict[str, Any], add: Any) -> None:
    egress = result.get("egress") or {}
    hosts = egress.get("hosts") or []
    add("## Egress\n")
    if egress.get("in_process"):
        add(f"Models run in this process (nothing sent): {', '.join(f'`{m}`' for m in egress['in_process'])}.\n")
    if not hosts:
        add("No data left this machine over the network.\n")
        return
    add("| host | models | requests | bytes sent | bytes received | allowed by |")
    add("| --- | --- | --- | --- | --- | --- |")
    for h in hosts:
        models = ", ".join(f"`{m}`" for m in h["models"])
        add(
            f"| {h['host']} | {models} | {h['requests']} | {h['bytes_sent']} | {h['bytes_received']} | "
            f"{_cell('; '.join(h['rules']))} |"
        )
    add("")


def _context(result: dict[str, Any], add: Any) -> None:
    notes = []
    for sub in result["subtasks"]:
        ctx = sub.get("context") or {}
        if ctx.get("truncated") or ctx.get("omitted"):
            parts = []
            if ctx.get("truncated"):
                parts.append("truncated " + ", ".join(ctx["truncated"]))
            if ctx.get("omitted"):
                parts.append("omitted " + ", ".join(ctx["omitted"]))
            notes.append(f"- {sub['id']} ({ctx.get('model')}, {ctx.get('budget')} tokens): {'; '.join(parts)}")
    skipped = result.get("files", {}).get("skipped") or []
    if notes or skipped:
        add("## Context\n")
        if notes:
            add("Files did not fit some models' context windows:\n")
            add("\n".join(notes) + "\n")
        for item in skipped:
            add(f"- skipped `{item['path']}`: {item['reason']}")
        add("")
