"""The run on one time axis, as inline SVG: a row per call (the plan, each subtask, the
aggregation), the call's own span behind, and on it every timed event (outputs/events.py): model
attempts coloured by outcome (an attempt that failed and was retried in a colour of its own, one
that failed for good in red), waits (slot, queue, rate limit, backoff, budget) hatched, checks and
tool calls in colours of their own. Labels live in columns of their own, never on the bars: the
call on the left, the model that answered (and its lab's country) on the right, each cut to its
column's width in a monospace face whose width is known."""

from __future__ import annotations

from orchestrator.engine.state import CallRecord, Span
from orchestrator.outputs.events import run_end_ms, timed_events
from orchestrator.outputs.html._base import anchor, esc, fmt_ms
from orchestrator.outputs.result import RunResult

WIDTH, LABEL_W, MODEL_W, ROW_H, AXIS_H, RIGHT = 1000, 190, 200, 26, 28, 16
AXIS_END = WIDTH - MODEL_W  # bars end here; the model column starts after a gap
CHAR_W = 7.0  # the labels' monospace face at 11px is 6.6px a character: a margin kept
KIND_FILL = {"model": "#1e88e5", "check": "#8e24aa", "tool": "#00897b"}
FAILED_FILL = "#e53935"
RETRIED_FILL = "#fb8c00"  # failed, then tried again on the same model


def timeline_calls(result: RunResult) -> list[CallRecord]:
    calls = [*([result.plan.call] if result.plan.call else []), *result.subtasks]
    calls += [result.aggregate] if result.aggregate else []
    return sorted(calls, key=lambda c: c.timing.started_ms if c.timing else 0)


STEPS_MS: list[int] = [b * 10**k for k in range(4) for b in (1, 2, 5)] + [
    10_000,
    15_000,
    30_000,
    60_000,
    120_000,
    300_000,
]


def _step(total_ms: int) -> int:
    """A round tick step that puts at most 10 ticks on the axis (minutes past a minute)."""
    for step in STEPS_MS:
        if total_ms / step <= 10:
            return step
    return max(600_000, -(-total_ms // 10 // 600_000) * 600_000)


def render_timeline(result: RunResult) -> str:
    calls = [c for c in timeline_calls(result) if c.timing is not None]
    if not calls:
        return '<p class="muted">No timing was recorded for this run (it was made before timings were kept).</p>'
    total = max(1, run_end_ms(calls, 0))
    span_w = AXIS_END - LABEL_W - RIGHT
    scale = span_w / total
    height = AXIS_H + ROW_H * len(calls) + 8
    parts = [
        f'<svg class="timeline" role="img" aria-label="timeline of the run" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}">',
        '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
        '<rect width="6" height="6" fill="#eceff1"/><line x1="0" y1="0" x2="0" y2="6" stroke="#78909c" '
        'stroke-width="3"/></pattern></defs>',
    ]
    step = _step(total)
    for tick in range(0, total + 1, step):
        x = LABEL_W + tick * scale
        parts.append(
            f'<line x1="{x:.1f}" y1="{AXIS_H - 6}" x2="{x:.1f}" y2="{height}" stroke="#eceff1"/>'
            f'<text class="tick" x="{x:.1f}" y="{AXIS_H - 10}" text-anchor="middle">{esc(fmt_ms(tick))}</text>'
        )
    for row, call in enumerate(calls):
        parts.append(_row(result, call, AXIS_H + row * ROW_H, scale))
    parts.append("</svg>")
    return "".join(parts)


def _row(result: RunResult, call: CallRecord, y: float, scale: float) -> str:
    assert call.timing is not None
    label = call.id if call.id == (call.node or call.id) else f"{call.id} · {call.node or call.role}"
    x0 = LABEL_W + call.timing.started_ms * scale
    w0 = max(2.0, call.timing.duration_ms * scale)
    items = [
        f'<g class="trow" data-call="{esc(call.id)}">',
        f'<a href="#{anchor("subtask", call.id)}"><text class="rlabel" x="{LABEL_W - 8}" y="{y + 17}" '
        f'text-anchor="end">{esc(_fit(label, LABEL_W - 12))}</text></a>',
        f'<rect class="call" x="{x0:.1f}" y="{y + 3}" width="{w0:.1f}" height="{ROW_H - 6}" rx="3" fill="#e3f2fd" '
        f'stroke="#90caf9"><title>{esc(label)}: {esc(fmt_ms(call.timing.duration_ms))}</title></rect>',
    ]
    for event in timed_events(call):
        items.append(_event(result, event, y, scale))
    answered = next((e for e in reversed(timed_events(call)) if e.kind == "model" and e.status == "ok"), None)
    text = _model_text(result, answered.name if answered else call.model)
    if text:
        x = AXIS_END + 8
        shown = _fit(text, MODEL_W - 12)
        items.append(f'<text class="mlabel" x="{x}" y="{y + 17}"><title>{esc(text)}</title>{esc(shown)}</text>')
    items.append("</g>")
    return "".join(items)


def _fit(text: str, width: float) -> str:
    """`text` cut to what fits in `width` pixels of the labels' face."""
    most = max(1, int(width // CHAR_W))
    return text if len(text) <= most else text[: most - 1] + "…"


def _model_text(result: RunResult, model: str | None) -> str:
    if not model:
        return ""
    info = result.models.get(model)
    return f"{model} ({info.country})" if info and info.country else model


def _event(result: RunResult, event: Span, y: float, scale: float) -> str:
    x = LABEL_W + event.started_ms * scale
    w = max(2.0, event.duration_ms * scale)
    ok = event.status in ("ok", "pass", "passed", "verified")
    if event.kind == "wait":
        fill, top, h = "url(#hatch)", y + 7, ROW_H - 14
    elif event.retried:
        fill, top, h = RETRIED_FILL, y + 6, ROW_H - 12
    else:
        fill, top, h = (KIND_FILL.get(event.kind, "#6d4c41") if ok else FAILED_FILL), y + 6, ROW_H - 12
    what = _model_text(result, event.name) if event.kind == "model" else event.name
    facts = [f"{event.kind}: {what}", fmt_ms(event.duration_ms), f"at {fmt_ms(event.started_ms)}"]
    if not ok:
        facts.append(f"{event.status}, retried" if event.retried else event.status)
    if event.tokens_in is not None:
        facts.append(f"{event.tokens_in} tokens in, {event.tokens_out or 0} out")
    if event.detail:
        facts.append(event.detail)
    return (
        f'<rect class="ev ev-{esc(event.kind)}" data-status="{esc("retried" if event.retried else event.status)}" '
        f'x="{x:.1f}" y="{top}" '
        f'width="{w:.1f}" height="{h}" fill="{fill}"><title>{esc(" · ".join(facts))}</title></rect>'
    )


LEGEND = (
    '<p class="legend"><span class="sw k-model"></span>model call <span class="sw k-retried"></span>failed, '
    'retried <span class="sw k-failed"></span>failed (the next model was tried) '
    '<span class="sw k-wait"></span>wait (slot, queue, rate limit, backoff, budget) '
    '<span class="sw k-check"></span>check '
    '<span class="sw k-tool"></span>tool call · the light bar is the whole call; on the right, the model that '
    "answered; hover for details</p>"
)
