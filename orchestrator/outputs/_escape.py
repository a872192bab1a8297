"""Making model, spec and repository text safe inside Markdown (report.md, the GitHub step summary)
while keeping code and diffs readable.

Everything a model wrote is hostile: raw HTML (`<img onerror=...>`, `<script>`, `</div>` that
closes our right-to-left block) is shown as text, images (a tracking pixel fetched when the report
is opened) become plain links, text cannot start headings or other blocks of the report, and a diff
cannot close the fence it is shown in. Code spans and fenced blocks are left exactly as written.
"""

from __future__ import annotations

import re

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]*)[^)]*\)")
_BLOCK_START = re.compile(r"^(\s*)([#>|=+*-]|\d+[.)])")


def html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _inline(text: str) -> str:
    """Outside code spans: HTML shown as text, images as links."""
    out, last = [], 0
    for match in _CODE_SPAN.finditer(text):
        out.append(_IMAGE.sub(_image_link, html(text[last : match.start()])))
        out.append(match.group(0))
        last = match.end()
    out.append(_IMAGE.sub(_image_link, html(text[last:])))
    return "".join(out)


def _image_link(match: re.Match[str]) -> str:
    alt, url = match.group(1) or "image", match.group(2)
    return f"[{alt}]({url})" if url else alt


def cell(text: object) -> str:
    """Text safe inside one table cell or one list line."""
    value = str(text if text is not None else "").replace("\n", " ").replace("\r", " ").strip()
    return _inline(value).replace("|", "\\|")


def prose(text: object) -> str:
    """A model's paragraph(s): no HTML, no images, and no line that starts a heading, a quote, a
    table or a list of the report's own."""
    lines = []
    for line in str(text if text is not None else "").strip().splitlines():
        lines.append(_BLOCK_START.sub(lambda m: f"{m.group(1)}\\{m.group(2)}", _inline(line)))
    return "\n".join(lines)


def markdown(text: str) -> str:
    """A model's Markdown document (a docs role's answer): headings and lists stay, fenced blocks
    and code spans stay exactly as written, HTML and images outside them are neutralised."""
    out: list[str] = []
    fence: str | None = None
    for line in text.splitlines():
        opening = _FENCE.match(line)
        if fence is not None:
            out.append(line)
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence):
                fence = None
        elif opening:
            fence = opening.group(1)
            out.append(line)
        else:
            out.append(_inline(line))
    if fence is not None:  # an unclosed fence would swallow the rest of the report: close it
        out.append(fence)
    return "\n".join(out)


def fenced(body: str, info: str = "") -> str:
    """`body` in a code fence no line of it can close (longer than any backtick run inside)."""
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{body.rstrip()}\n{fence}"
