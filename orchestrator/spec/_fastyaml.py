"""The fast path of the YAML loader: libyaml (PyYAML's C parser, when it was built with it) reads
the document's events, and the plain data and the line of every key and item are built from them
in one pass, about 30 times faster than ruamel.yaml's round-trip loader in pure Python (62 ms
against 2 ms for a spec of 200 tasks here).

The data must be what ruamel.yaml would have given, so scalars are resolved with ruamel's own
YAML 1.2 rules (libyaml alone would read `yes`, `on` and `017` the YAML 1.1 way) and typed
values are built by ruamel's own constructor. Anything this path does not handle the same way
returns None, and the caller loads the document with ruamel.yaml, which also words every error:
a syntax error, a directive (`%YAML 1.1`), an explicit tag, an anchor or alias, a merge key, a
duplicate or non-scalar key, more than one document, a document past the loader's bounds, a
character that only YAML 1.1 reads as a line break (libyaml would count lines differently), or a
tab (libyaml takes some that ruamel refuses, `0:\t`)."""

from __future__ import annotations

from functools import cache
from typing import Any

Loc = tuple[str | int, ...]
STR = "tag:yaml.org,2002:str"
# the tags whose scalars ruamel's constructor builds here (ints, floats, booleans, null, dates)
TYPED = {f"tag:yaml.org,2002:{name}" for name in ("int", "float", "bool", "null", "timestamp")}


# line breaks to libyaml (YAML 1.1) but not to YAML 1.2, and the byte-order mark
YAML11_BREAKS = ("\x85", "\u2028", "\u2029", "\ufeff")


class _Fallback(Exception):
    """The document needs ruamel.yaml."""


@cache
def _parts() -> tuple[Any, Any, Any, dict[str, list[tuple[str, Any]]]] | None:
    """PyYAML (with libyaml), ruamel's round-trip constructor and node class, and ruamel's YAML
    1.2 implicit resolvers by first character, in ruamel's order; None without libyaml."""
    try:
        import yaml
        from yaml import CSafeLoader  # noqa: F401  (only there when PyYAML was built with libyaml)
    except ImportError:
        return None
    from ruamel.yaml import YAML
    from ruamel.yaml.nodes import ScalarNode
    from ruamel.yaml.resolver import implicit_resolvers

    by_first: dict[str, list[tuple[str, Any]]] = {}
    for versions, tag, regexp, first in implicit_resolvers:
        if (1, 2) in versions:
            for char in first:
                by_first.setdefault(char, []).append((tag, regexp))
    return yaml, YAML(typ="rt").constructor, ScalarNode, by_first


def fast_load(text: str, max_nodes: int, max_depth: int) -> tuple[Any, dict[Loc, int]] | None:
    """(data, lines) as the ruamel path gives them, or None when that path must load the text."""
    parts = _parts()
    if parts is None or ("%" in text and any(line.startswith("%") for line in text.splitlines())):
        return None
    if "\t" in text or any(char in text for char in YAML11_BREAKS):
        return None
    yaml = parts[0]
    try:
        return _Builder(yaml.parse(text, Loader=yaml.CSafeLoader), parts, max_nodes, max_depth).document()
    except (_Fallback, yaml.YAMLError, ValueError, TypeError, IndexError, OverflowError):
        return None


class _Builder:
    def __init__(self, events: Any, parts: Any, max_nodes: int, max_depth: int) -> None:
        self.events = iter(events)
        yaml, self.constructor, self.node_class, self.resolvers = parts
        self.kinds = yaml.events
        self.budget = max_nodes
        self.max_depth = max_depth
        self.lines: dict[Loc, int] = {}

    def document(self) -> tuple[Any, dict[Loc, int]]:
        kinds = self.kinds
        start, event = self._next(), self._next()
        if isinstance(event, kinds.StreamEndEvent):
            return None, self.lines
        if not isinstance(start, kinds.StreamStartEvent) or not isinstance(event, kinds.DocumentStartEvent):
            raise _Fallback
        data = self._node(self._next(), ())
        if not isinstance(self._next(), kinds.DocumentEndEvent) or not isinstance(self._next(), kinds.StreamEndEvent):
            raise _Fallback  # more than one document
        return data, self.lines

    def _next(self) -> Any:
        return next(self.events)

    def _node(self, event: Any, loc: Loc) -> Any:
        self.budget -= 1
        if self.budget < 0 or len(loc) > self.max_depth:
            raise _Fallback  # the ruamel path says which bound and where
        kinds = self.kinds
        if isinstance(event, kinds.AliasEvent) or event.anchor is not None:
            raise _Fallback
        if isinstance(event, kinds.ScalarEvent):
            return self._scalar(event)
        if event.tag is not None:
            raise _Fallback
        if isinstance(event, kinds.SequenceStartEvent):
            items: list[Any] = []
            event = self._next()
            while not isinstance(event, kinds.SequenceEndEvent):
                child = (*loc, len(items))
                self.lines[child] = event.start_mark.line + 1
                items.append(self._node(event, child))
                event = self._next()
            return items
        if isinstance(event, kinds.MappingStartEvent):
            out: dict[str, Any] = {}
            event = self._next()
            while not isinstance(event, kinds.MappingEndEvent):
                if not isinstance(event, kinds.ScalarEvent) or event.anchor is not None:
                    raise _Fallback  # a key that is no plain scalar
                key = str(self._scalar(event, key=True))
                if key in out:
                    raise _Fallback  # ruamel refuses duplicate keys, in its words
                child = (*loc, key)
                self.lines[child] = event.start_mark.line + 1
                out[key] = self._node(self._next(), child)
                event = self._next()
            return out
        raise _Fallback

    def _scalar(self, event: Any, key: bool = False) -> Any:
        if event.tag is not None:
            raise _Fallback
        value: str = event.value
        tag = STR
        if event.implicit[0]:  # plain: ruamel's YAML 1.2 implicit resolvers, in its order
            for candidate, regexp in self.resolvers.get(value[:1], ()):
                if regexp.match(value):
                    tag = candidate
                    break
        if tag == STR:
            return value
        if tag not in TYPED:
            raise _Fallback  # a merge key, `=`
        built = self.constructor.yaml_constructors[tag](self.constructor, self.node_class(tag, value))
        if key:  # a key is named as the ruamel path names it: str() of ruamel's own value
            return built
        return _plain_scalar(built)


def _plain_scalar(value: Any) -> Any:
    """ruamel's scalar types as the ruamel path's `_plain` converts them."""
    name = type(value).__name__
    if name == "ScalarFloat":
        return float(value)
    if name in {"ScalarInt", "HexInt", "OctalInt", "BinaryInt"}:
        return int(value)
    if name == "ScalarBoolean":
        return bool(value)
    return value
