"""Documentation answers rendered from Markdown: no raw HTML, no links or images (nothing a
model writes can make the page fetch or navigate), right to left for a role whose `dir` is rtl
(`lang` from the role), with code spans and blocks kept left to right inside."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from orchestrator.outputs.html._base import anchor, esc, lang_attr
from orchestrator.outputs.result import RoleInfo, RunResult

_CODE = re.compile(r"<code(?=[ >])")


@cache
def _markdown() -> Any:
    from markdown_it import MarkdownIt

    parser = MarkdownIt("commonmark", {"html": False})
    return parser.disable(["image", "link", "autolink", "html_inline", "html_block"])


def render_markdown_text(text: str) -> str:
    """Markdown as HTML; raw HTML in it is shown as text, code stays left to right."""
    rendered: str = _markdown().render(text)
    return _CODE.sub('<code dir="ltr"', rendered).replace("<pre>", '<pre dir="ltr">')


def docs_block(output: dict[str, Any], role: RoleInfo | None) -> str:
    direction = "rtl" if role is not None and role.dir == "rtl" else "ltr"
    lang = lang_attr(role.lang if role else None)
    title = esc(output.get("title", ""))
    body = render_markdown_text(str(output.get("markdown", "")))
    return f'<div class="doc" dir="{direction}"{lang}><h3>{title}</h3>{body}</div>'


def render_docs(result: RunResult) -> str:
    blocks = []
    for sub in result.verdicts():
        role = result.role(sub.role)
        output = sub.output or {}
        if role is None or role.output != "docs" or not sub.ok or not output.get("markdown"):
            continue
        blocks.append(
            f'<article class="docs" data-subtask="{esc(sub.id)}"><p class="muted">from '
            f'<a href="#{anchor("subtask", sub.id)}">{esc(sub.id)}</a> ({esc(sub.role)}, {esc(sub.model or "")})</p>'
            f"{docs_block(output, role)}</article>"
        )
    return "".join(blocks) or '<p class="muted">No documentation was written.</p>'
