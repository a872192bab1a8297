"""Findings as one table (sorted by severity, then file and line; the page's script sorts and
filters it by severity and file), each linked to the source lines around it."""

from __future__ import annotations

from orchestrator.outputs.html._base import SEVERITIES, anchor, badge, esc
from orchestrator.outputs.result import RunResult, SourceExcerpt
from orchestrator.spec.kinds import Finding

RANK = {severity: len(SEVERITIES) - i for i, severity in enumerate(SEVERITIES)}  # critical 5 ... info 1


def _excerpt_for(excerpts: list[SourceExcerpt], file: str, line: int | None) -> int | None:
    for index, excerpt in enumerate(excerpts):
        if line and excerpt.file == file and excerpt.start <= line < excerpt.start + len(excerpt.lines):
            return index
    return None


def render_findings(result: RunResult) -> str:
    found: list[tuple[Finding, str, str]] = []  # (finding, subtask id, model)
    for sub in result.verdicts():
        found += [(f, sub.id, sub.model or "") for f in sub.findings()]
    if not found:
        return '<p class="muted">No findings.</p>'
    found.sort(key=lambda item: (-RANK.get(item[0].severity, 0), item[0].file, item[0].line or 0))
    files = sorted({f.file for f, _, _ in found})
    options = "".join(f'<option value="{esc(f)}">{esc(f)}</option>' for f in files)
    levels = "".join(f'<option value="{RANK[s]}">{s} and above</option>' for s in SEVERITIES)
    controls = (
        '<div id="findings-controls" class="controls" hidden>'
        f'<label>Severity <select id="f-sev"><option value="0">all</option>{levels}</select></label> '
        f'<label>File <select id="f-file"><option value="">all files</option>{options}</select></label> '
        '<span id="f-count" class="muted"></span></div>'
    )
    header = "".join(
        f'<th><button type="button" data-sort="{key}">{label}</button></th>'
        for key, label in (("rank", "severity"), ("file", "location"), ("title", "title"))
    )
    rows = []
    for number, (finding, sub_id, model) in enumerate(found, 1):
        where = f"{finding.file}:{finding.line}" if finding.line else finding.file
        shown = _excerpt_for(result.sources, finding.file, finding.line)
        location = f'<a href="#src-{shown}">{esc(where)}</a>' if shown is not None else esc(where)
        severity = finding.severity if finding.severity in RANK else "info"
        rows.append(
            f'<tr data-rank="{RANK[severity]}" data-file="{esc(finding.file)}" data-line="{finding.line or 0}" '
            f'data-title="{esc(finding.title.lower())}" data-order="{number}">'
            f"<td>{badge(severity, severity)}</td><td><code>{location}</code></td>"
            f"<td><strong>{esc(finding.title)}</strong><p>{esc(finding.detail)}</p>"
            f'<p class="suggest">{esc(finding.suggestion)}</p></td>'
            f'<td><a href="#{anchor("subtask", sub_id)}">{esc(sub_id)}</a><br><small>{esc(model)}</small></td></tr>'
        )
    table = (
        f'<table id="findings-table" class="findings"><thead><tr>{header}<th>subtask</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    return controls + table + _sources(result, found)


def _sources(result: RunResult, found: list[tuple[Finding, str, str]]) -> str:
    if not result.sources:
        return ""
    marked: dict[int, set[int]] = {}
    for finding, _, _ in found:
        index = _excerpt_for(result.sources, finding.file, finding.line)
        if index is not None and finding.line:
            marked.setdefault(index, set()).add(finding.line)
    blocks = ['<h3>Source lines</h3><p class="muted">As the models saw them (secrets masked).</p>']
    for index, excerpt in enumerate(result.sources):
        rows = []
        for offset, text in enumerate(excerpt.lines):
            number = excerpt.start + offset
            mark = ' class="hit"' if number in marked.get(index, set()) else ""
            rows.append(f'<tr{mark}><td class="ln">{number}</td><td><code>{esc(text)}</code></td></tr>')
        last = excerpt.start + len(excerpt.lines) - 1
        blocks.append(
            f'<figure id="src-{index}" class="source"><figcaption><code>{esc(excerpt.file)}</code> '
            f'lines {excerpt.start}-{last}</figcaption><table class="code" dir="ltr">{"".join(rows)}</table></figure>'
        )
    return "".join(blocks)
