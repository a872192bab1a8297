"""The review of a diff-scoped run as it will appear on the pull request: its verdict, what became
of each finding and patch (a comment, a suggestion, or a line of the body and why), and every
comment with the text it will be posted with."""

from __future__ import annotations

from orchestrator.outputs.html._base import badge, clip, esc, table
from orchestrator.outputs.result import RunResult
from orchestrator.outputs.review import build_review, comment_body

BECAME_KIND = {"comment": "ok", "suggestion": "ok"}


def render_review(result: RunResult) -> str:
    """ "" for a run that reviewed no diff."""
    if result.diff is None:
        return ""
    review = build_review(result)
    report = result.diff
    verdict = "request changes" if review.event == "REQUEST_CHANGES" else "comment"
    parts = [
        f"<p>Against <code>{esc(report.base_ref)}</code> (merge base <code>{esc(report.base_sha[:12])}</code>), "
        f"head <code>{esc(report.head_sha[:12])}</code>: {len(report.reviewed())} of {len(report.files)} changed "
        f"files reviewed. The review's event: {badge(verdict, 'bad' if review.event == 'REQUEST_CHANGES' else 'ok')}"
        "</p>"
    ]
    rows = [
        [
            esc(row.item),
            esc(row.label),
            f"<code>{esc(row.where)}</code>",
            badge(row.became, BECAME_KIND.get(row.became, "muted")),
            esc(row.why),
        ]
        for row in review.rows
    ]
    if rows:
        parts.append(table(["what", "finding or patch", "where", "becomes", "why"], rows, "review"))
    skipped = [[f"<code>{esc(f.path)}</code>", esc(f.status), esc(f.reason)] for f in report.files if not f.reviewed]
    if skipped:
        parts.append("<h3>Changed files not reviewed</h3>" + table(["file", "change", "why"], skipped))
    for comment in review.comments:
        where = (
            f"{comment.path}:{comment.start_line}-{comment.line}"
            if comment.start_line
            else f"{comment.path}:{comment.line}"
        )
        parts.append(
            f"<h3>{badge(comment.kind, 'ok')} <code>{esc(where)}</code></h3>"
            f'<pre class="answer">{esc(clip(comment_body(comment, "github"), 20000))}</pre>'
        )
    parts.append(f'<h3>The review\'s body</h3><pre class="answer">{esc(clip(review.body, 60000))}</pre>')
    return "".join(parts)
