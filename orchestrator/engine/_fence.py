"""The fences around data a model is shown in its loop: tool results (`<tool_result>`) and the
output of checks in a reflection (`<check_output>`).

Content cannot forge a fence. Anything inside that looks like the start of one of these tags,
opening or closing, whatever its case, spacing, line breaks, separators (`tool result`,
`TOOL-RESULT`, `tool\u200b_result`) or look-alike angle brackets and slashes, has its bracket
written as `&lt;`; and each fence carries a boundary (`id`) that content cannot guess: an
HMAC of the fenced text under a secret key of the run (derived from this user's machine key when
there is a cache, so an unchanged result keeps its boundary and the cache keeps answering), so a
closing tag is the fence's only when it repeats the id of its opening one.
"""

from __future__ import annotations

import hashlib
import hmac
import re

# '<' and the characters a model may read as one (fullwidth, small, angle quotation and brackets)
_OPENERS = "<\uff1c\ufe64\u2039\u3008\u27e8\u2329"
# what may stand between the bracket and the name: spaces, line breaks, slashes and their look-alikes
_LEAD = r"[\s/\\\uff0f\u2215\u2044\u29f8]*"
# between the words of a name: spaces, separators and invisible characters
_JOIN = r"[\s_\-.:\u00ad\u200b-\u200d\u2060\ufeff]*"
FENCE_LIKE = re.compile(
    rf"[{_OPENERS}](?={_LEAD}(?:tool{_JOIN}results?|check{_JOIN}outputs?))",
    re.IGNORECASE,
)
BOUNDARY_HEX = 16  # 64 bits


def neutralise(text: str) -> str:
    """`text` with every fence-like tag's bracket written as `&lt;`: it cannot open or close one."""
    return FENCE_LIKE.sub("&lt;", text)


def _attribute(value: str) -> str:
    """An attribute value (a tool's or a check's name) that cannot leave its quotes or its line."""
    return re.sub(r"[^A-Za-z0-9_.:/@+=-]", "_", value)[:120]


def fence(tag: str, name_attr: str, name: str, text: str, key: bytes) -> str:
    """`text` (neutralised) between an opening and a closing `tag` that carry the same boundary."""
    body = neutralise(text)
    attribute = f'{name_attr}="{_attribute(name)}"'
    mac = hmac.new(key, f"{tag}\0{attribute}\0{body}".encode("utf-8", "surrogatepass"), hashlib.sha256)
    boundary = mac.hexdigest()[:BOUNDARY_HEX]
    return f'<{tag} {attribute} id="{boundary}">\n{body}\n</{tag} id="{boundary}">'
