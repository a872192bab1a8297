"""Models and egress (each model's lab and country, each host contacted with its bytes each way
and the policy rule that allowed it), and tokens, cost and time per model, role and node as small
bar charts (SVG, with the numbers written beside the bars so they read printed). A chart that
would say nothing is left out: cost when nothing cost anything, the graph nodes when each node
is one role (the per-role charts say it all)."""

from __future__ import annotations

from orchestrator.outputs.html._base import badge, esc, fmt_bytes, fmt_cost, fmt_ms, table
from orchestrator.outputs.residency import pinning_text
from orchestrator.outputs.result import RunResult, UsageTotals

BAR_W, LABEL_W, ROW_H = 220, 170, 18


def render_models(result: RunResult) -> str:
    used: dict[str, int] = {}
    for call in result.calls():
        for ref in [*(h.model for h in call.fallbacks), *([call.model] if call.model else [])]:
            used[ref] = used.get(ref, 0) + 1
    rows = []
    for ref, info in result.models.items():
        where = (
            "this machine (the run's own worker)"
            if info.host is None
            else info.host + (" (this machine)" if info.local else "")
        )
        weights = {True: "open", False: "closed", None: "?"}[info.open_weights]
        tried = used.get(ref, 0)
        rows.append(
            [
                f"<code>{esc(ref)}</code>",
                esc(info.lab or "?"),
                esc(info.country or "?"),
                esc(info.license or "?"),
                esc(weights),
                esc(where),
                str(tried) if tried else '<span class="muted">not called</span>',
            ]
        )
    models = table(["model", "lab", "country", "license", "weights", "served from", "calls"], rows, "models")
    return models + render_egress(result)


def render_egress(result: RunResult) -> str:
    egress = result.egress
    parts = ["<h3>Egress</h3>"]
    if egress.in_process:
        names = ", ".join(f"<code>{esc(m)}</code>" for m in egress.in_process)
        parts.append(f"<p>Run on this machine by the run itself, nothing sent: {names}.</p>")
    parts.append(render_served(result))
    if not egress.hosts:
        parts.append(f"<p>{badge('no egress', 'good')} No data left this machine over the network.</p>")
        return "".join(parts)
    rows = []
    for host in egress.hosts:
        countries = sorted({c for m in host.models if (c := _country(result, m))})
        rows.append(
            [
                f"<code>{esc(host.host)}</code>",
                ", ".join(f"<code>{esc(m)}</code>" for m in host.models) or '<span class="muted">(no model)</span>',
                esc(", ".join(countries) or "-"),
                str(host.requests),
                esc(fmt_bytes(host.bytes_sent)),
                esc(fmt_bytes(host.bytes_received)),
                "<br>".join(esc(rule) for rule in host.rules),
            ]
        )
    header = ["host", "models", "model countries", "requests", "sent", "received", "allowed by"]
    parts.append(table(header, rows, "egress"))
    return "".join(parts)


def render_served(result: RunResult) -> str:
    """Every answer: served by, region, host, the request's pinning, used or refused."""
    rows = []
    for call in result.egress.calls:
        verdict = badge("used", "good") if call.verdict == "used" else f"{badge('refused', 'bad')} {esc(call.reason)}"
        rows.append(
            [
                f"<code>{esc(call.model)}</code>",
                esc(call.served_by),
                esc(call.region),
                f"<code>{esc(call.host)}</code>" if call.host else "-",
                esc(pinning_text(call)),
                verdict,
            ]
        )
    if not rows:
        return ""
    return table(["model", "served by", "region", "host", "pinned", "answer"], rows, "served")


def _country(result: RunResult, model: str) -> str | None:
    info = result.models.get(model)
    return info.country if info else None


def _bars(title: str, values: dict[str, float], text: dict[str, str], second: dict[str, float] | None = None) -> str:
    """One horizontal bar per name; `second` stacks a lighter bar (tokens out after tokens in)."""
    if not values:
        return ""
    top = max([v + (second or {}).get(k, 0.0) for k, v in values.items()] + [1e-9])
    height = ROW_H * len(values) + 24
    width = LABEL_W + BAR_W + 150
    rows = [
        f'<figure class="chart"><figcaption>{esc(title)}</figcaption>'
        f'<svg role="img" aria-label="{esc(title)}" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}">'
    ]
    for row, (name, value) in enumerate(values.items()):
        y = 8 + row * ROW_H
        w1 = BAR_W * value / top
        w2 = BAR_W * (second or {}).get(name, 0.0) / top
        rows.append(
            f'<text class="clabel" x="{LABEL_W - 6}" y="{y + 12}" text-anchor="end">{esc(name[:28])}</text>'
            f'<rect x="{LABEL_W}" y="{y}" width="{w1:.1f}" height="{ROW_H - 5}" fill="#1e88e5"/>'
            f'<rect x="{LABEL_W + w1:.1f}" y="{y}" width="{w2:.1f}" height="{ROW_H - 5}" fill="#90caf9"/>'
            f'<text class="cvalue" x="{LABEL_W + w1 + w2 + 6:.1f}" y="{y + 12}">{esc(text[name])}</text>'
        )
    rows.append("</svg></figure>")
    return "".join(rows)


def _group(title: str, groups: dict[str, UsageTotals]) -> str:
    if not groups:
        return ""
    tokens_in = {k: float(g.tokens_in) for k, g in groups.items()}
    tokens_out = {k: float(g.tokens_out) for k, g in groups.items()}
    token_text = {k: f"{g.tokens_in} in + {g.tokens_out} out" for k, g in groups.items()}
    time = {k: float(g.latency_ms) for k, g in groups.items()}
    time_text = {k: f"{fmt_ms(g.latency_ms)} · {g.calls} call{'s' if g.calls != 1 else ''}" for k, g in groups.items()}
    cost = {k: float(g.cost_usd or 0.0) for k, g in groups.items()}
    cost_text = {k: fmt_cost(g.cost_usd) for k, g in groups.items()}
    priced = any(value > 0 for value in cost.values())
    return (
        f'<div class="charts"><h3>{esc(title)}</h3>'
        f"{_bars('tokens (in, then out)', tokens_in, token_text, tokens_out)}"
        f"{_bars('model time', time, time_text)}{_bars('cost', cost, cost_text) if priced else ''}</div>"
    )


def render_usage(result: RunResult) -> str:
    totals = result.totals
    note = f'<p class="muted">{esc(totals.cost_note)}</p>' if totals.cost_note else ""
    if not any((g.cost_usd or 0) > 0 for g in totals.by_model.values()):
        note += f'<p class="muted">No call cost anything (total {esc(fmt_cost(totals.cost_usd))}): no cost chart.</p>'
    nodes = _group("Per graph node", totals.by_node)
    if totals.by_node == totals.by_role:
        nodes = '<p class="muted">Per graph node: as per role (each node ran one role).</p>' if nodes else ""
    return note + _group("Per model", totals.by_model) + _group("Per role", totals.by_role) + nodes
