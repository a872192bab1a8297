"""eval.md and eval.html: the same tables, built once from the EvalResult. They hold no run id, date
or path (and not whether they were replayed: eval.json says so), so an eval replayed from its
recording renders byte for byte the same."""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from orchestrator.outputs._escape import cell
from orchestrator.outputs.evaluation._records import ArmSummary, EvalResult

OBJECTIVE_WORDS = {"resolved": "resolved rate", "cost_per_resolved": "cost per resolved run"}


@dataclass
class Table:
    title: str
    notes: list[str] = field(default_factory=list)
    header: tuple[str, ...] = ()
    right: tuple[int, ...] = ()  # the columns of numbers
    rows: list[tuple[str, ...]] = field(default_factory=list)
    items: list[str] = field(default_factory=list)  # a list instead of a table


def money(value: float | None) -> str:
    if value is None:
        return "unknown"
    return f"${value:.6f}" if value < 0.01 else f"${value:.4f}"


def seconds(ms: int) -> str:
    return f"{ms / 1000:.1f}s"


def per_resolved(arm: ArmSummary) -> str:
    """Its cost per resolved run: "-" when it resolved none, "unknown" when its cost is."""
    if arm.cost_per_resolved is not None:
        return money(arm.cost_per_resolved)
    return "unknown" if arm.resolved and arm.cost_usd is None else "-"


def percent(value: float) -> str:
    return f"{value * 100:.0f}%"


def chain(value: str | list[str] | None) -> str:
    if value is None:
        return "(the spec's)"
    return value if isinstance(value, str) else " -> ".join(value)


def _models(arm: ArmSummary) -> str:
    return "; ".join(f"{role}: {chain(model)}" for role, model in sorted(arm.models.items()))


def tables(result: EvalResult) -> list[Table]:
    valid = sum(1 for i in result.instances if i.valid)
    runs = len(result.runs)
    intro = [
        f"{result.instances_total} instance(s) ({valid} valid), {len(result.arms)} arm(s), {result.repeats} "
        f"repeat(s): {runs} run(s) of the spec `{cell(result.spec)}`.",
        "Resolved: every FAIL_TO_PASS test passes and every PASS_TO_PASS test still does (SWE-bench's grading), "
        "with the instance's test patch applied over the model's patch.",
        f"Interval: {result.interval}.",
    ]
    if result.stopped_by:
        intro.append(f"Stopped by {result.stopped_by}: the runs that had not finished are not judged.")
    found = [Table(f"Eval {cell(result.name)}", notes=intro)]
    by_rate = {a.arm: a for a in result.arms}
    order = [by_rate[name] for name in result.ranking.get(result.objective, [])] or result.arms
    found.append(_arm_table(order, f"Arms, ranked by {OBJECTIVE_WORDS[result.objective]}"))
    other = "cost_per_resolved" if result.objective == "resolved" else "resolved"
    ranked = [by_rate[name] for name in result.ranking.get(other, [])]
    found.append(
        Table(
            f"Arms, ranked by {OBJECTIVE_WORDS[other]}",
            header=("rank", "arm", "cost / resolved", "resolved", "rate", "cost"),
            right=(0, 2, 3, 4, 5),
            rows=[
                (
                    str(n),
                    cell(a.arm),
                    per_resolved(a),
                    f"{a.resolved}/{a.judged}",
                    percent(a.rate),
                    money(a.cost_usd),
                )
                for n, a in enumerate(ranked, 1)
            ],
        )
    )
    found.append(
        Table(
            "Per arm and role",
            notes=["model time: the role's calls' latency, summed; tool turns: model turns of its tool loops."],
            header=("arm", "role", "assigned", "answered by", "calls", "tokens", "cost", "model time", "tool turns"),
            right=(4, 5, 6, 7, 8),
            rows=[
                (
                    cell(r.arm),
                    cell(r.role),
                    cell(chain(r.assigned)),
                    cell(", ".join(r.models) or "-"),
                    str(r.calls),
                    f"{r.tokens_in}+{r.tokens_out}",
                    money(r.cost_usd),
                    seconds(r.latency_ms),
                    str(r.turns),
                )
                for r in result.roles
            ],
        )
    )
    arms = [a.arm for a in result.arms]
    found.append(
        Table(
            "Per instance: runs that resolved it",
            header=("instance", "FAIL_TO_PASS", "PASS_TO_PASS", *(cell(a) for a in arms)),
            right=tuple(range(1, 3 + len(arms))),
            rows=[
                (
                    cell(i.instance),
                    str(i.fail_to_pass),
                    str(i.pass_to_pass),
                    *(_instance_cell(i.valid, arm in i.refused, i.resolved_by[arm], i.runs[arm]) for arm in arms),
                )
                for i in result.instances
            ],
        )
    )
    found.append(
        Table(
            "Runs",
            header=("run", "outcome", "tests broken", "why"),
            right=(2,),
            rows=[(cell(r.label), r.outcome, str(r.tests_broken), cell(r.reason[:300])) for r in result.runs],
        )
    )
    if result.refusals:
        items = [f"arm `{cell(r.arm)}` on `{cell(r.instance)}`: {cell(r.reason)}" for r in result.refusals]
        found.append(Table("Refused by the policy (before any call)", items=items))
    left_out = [f"`{cell(i.instance)}`: {cell(i.problem)}" for i in result.instances if not i.valid]
    if left_out:
        found.append(Table("Instances left out (their runs did not run)", items=left_out))
    if result.winners:
        found.append(
            Table(
                f"Winners by {OBJECTIVE_WORDS[result.objective]} (`--write-models`)",
                header=("role", "arm", "models"),
                rows=[(cell(w.role), cell(w.arm), cell(chain(w.models))) for w in result.winners],
            )
        )
    return found


def _arm_table(arms: list[ArmSummary], title: str) -> Table:
    header = ("rank", "arm", "models", "resolved", "rate", "95% CI", "tests broken", "tokens", "cost", "time")
    return Table(
        title,
        header=(*header, "cost / resolved", "tool turns", "refused"),
        right=(0, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12),
        rows=[
            (
                str(n),
                cell(a.arm),
                cell(_models(a)),
                f"{a.resolved}/{a.judged}",
                percent(a.rate),
                f"{percent(a.ci_low)}-{percent(a.ci_high)}",
                str(a.tests_broken),
                f"{a.tokens_in}+{a.tokens_out}",
                money(a.cost_usd),
                seconds(a.duration_ms),
                per_resolved(a),
                str(a.tool_turns),
                str(a.refused),
            )
            for n, a in enumerate(arms, 1)
        ],
    )


def _instance_cell(valid: bool, refused: bool, resolved: int, runs: int) -> str:
    if not valid:
        return "left out"
    if refused and not runs:
        return "refused"
    return f"{resolved}/{runs}"


def render_markdown(result: EvalResult) -> str:
    out: list[str] = []
    for number, table in enumerate(tables(result)):
        out.append(("# " if number == 0 else "## ") + table.title)
        out.append("")
        for note in table.notes:
            out += [note, ""]
        if table.header:
            out.append("| " + " | ".join(table.header) + " |")
            out.append("|" + "|".join("---:" if i in table.right else "---" for i in range(len(table.header))) + "|")
            out += ["| " + " | ".join(row) + " |" for row in table.rows]
            out.append("")
        if table.items:
            out += [f"- {item}" for item in table.items]
            out.append("")
    return "\n".join(out).rstrip() + "\n"


STYLE = (
    "body{font:14px/1.5 system-ui,sans-serif;margin:2em;color:#1b1f24}"
    "table{border-collapse:collapse;margin:.5em 0 1.5em}"
    "th,td{border:1px solid #d0d7de;padding:.3em .6em;vertical-align:top}th{background:#f6f8fa}"
    "td.n{text-align:right;font-variant-numeric:tabular-nums}code{background:#f6f8fa;padding:0 .2em}"
)


def render_html(result: EvalResult) -> str:
    """One self-contained page (no script, no network)."""
    body: list[str] = []
    for number, table in enumerate(tables(result)):
        tag = "h1" if number == 0 else "h2"
        body.append(f"<{tag}>{_text(table.title)}</{tag}>")
        body += [f"<p>{_text(note)}</p>" for note in table.notes]
        if table.header:
            head = "".join(f"<th>{_text(h)}</th>" for h in table.header)
            rows = []
            for row in table.rows:
                cells = "".join(
                    f'<td class="n">{_text(v)}</td>' if i in table.right else f"<td>{_text(v)}</td>"
                    for i, v in enumerate(row)
                )
                rows.append(f"<tr>{cells}</tr>")
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")
        if table.items:
            body.append("<ul>" + "".join(f"<li>{_text(item)}</li>" for item in table.items) + "</ul>")
    title = html.escape(f"Eval {result.name}")
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<title>{title}</title><style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _text(markdown_cell: str) -> str:
    """A cell made for Markdown shown as HTML text: escapes undone, then escaped for HTML, with
    `code` spans kept as code."""
    plain = markdown_cell.replace("\\|", "|").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    parts = plain.split("`")
    return "".join(f"<code>{html.escape(p)}</code>" if i % 2 else html.escape(p) for i, p in enumerate(parts))
