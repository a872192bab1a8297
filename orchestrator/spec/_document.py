"""YAML documents that remember where each value came from.

Spec and graph files are loaded so that every key and list item keeps its line (with libyaml
when it is there, else with ruamel.yaml: `load_yaml`);
validation problems are then reported as `file:line: field: message`. `--set key=value`
overrides are applied to the loaded data and remember that they came from the command line.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from orchestrator.errors import Problem, SpecError, printable
from orchestrator.spec._fastyaml import fast_load

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)
OVERRIDE = "--set"


class Strict(BaseModel):
    """The base of everything read from a file: unknown keys are errors, never ignored."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


StrList = Annotated[list[str], BeforeValidator(_as_list)]  # `x` is read as `[x]`


@dataclass
class Document:
    """Plain data loaded from a YAML file, with the line of every key and item."""

    path: Path
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)
    origins: dict[Loc, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.path)

    def line_of(self, loc: Loc) -> int | None:
        """Line of the nearest located ancestor of `loc` (1-based), or None."""
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.lines:
                return self.lines[loc[:end]]
        return None

    def origin_of(self, loc: Loc) -> str:
        for end in range(len(loc), 0, -1):
            if loc[:end] in self.origins:
                return self.origins[loc[:end]]
        return self.name

    def problem(self, loc: Loc, message: str) -> Problem:
        origin = self.origin_of(loc)
        line = None if origin == OVERRIDE else self.line_of(loc)
        return Problem(file=origin, line=line, field=dotted(loc), message=message)


def dotted(loc: Iterable[str | int]) -> str:
    return ".".join(str(part) for part in loc)


# Bounds on what a file from a stranger may cost: its size, the nodes its aliases expand to, and
# how deeply it nests (a 626-byte file of aliases once expanded to gigabytes).
MAX_DOCUMENT_BYTES = 1_000_000
MAX_NODES = 100_000
MAX_DEPTH = 40


class _TooLarge(ValueError):
    pass


def read_text_file(path: Path, limit: int, kind: str) -> str:
    """The text of a regular file no larger than `limit` bytes, or SpecError saying why not (a
    device such as /dev/zero, a folder, a binary, an over-long or unreadable file)."""

    def problem(message: str) -> SpecError:
        return SpecError([Problem(str(path), None, "", message)])

    try:
        if not path.is_file():
            raise problem(f"{kind} file not found" if not path.exists() else f"{kind} file is not a regular file")
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise problem(f"cannot read {kind} file: {exc}") from None
    if len(data) > limit:
        raise problem(f"{kind} file is larger than {limit} bytes")
    if b"\0" in data:
        raise problem(f"{kind} file is binary (it holds NUL bytes)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise problem(f"{kind} file is not UTF-8 text: {exc}") from None


def load_yaml(path: Path, *, kind: str = "spec") -> Document:
    """Read a YAML mapping, raising SpecError with the line for syntax errors. libyaml reads it
    when it can (`_fastyaml.py`: the same data and lines); ruamel.yaml otherwise, and for every
    document with an error, so each error is worded and placed as ruamel's loader does."""
    text = read_text_file(path, MAX_DOCUMENT_BYTES, kind)
    fast = fast_load(text, MAX_NODES, MAX_DEPTH)
    if fast is not None and isinstance(fast[0], dict):
        return Document(path=path, data=fast[0], lines=fast[1])
    return _load_ruamel(path, text, kind)


def _load_ruamel(path: Path, text: str, kind: str) -> Document:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    yaml = YAML(typ="rt")
    try:
        raw = yaml.load(text)
    except MarkedYAMLError as exc:  # the line where the construct began (an unclosed quote's own line)
        mark = exc.context_mark or exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        message = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        raise SpecError([Problem(str(path), line, "", f"invalid YAML: {message}")]) from None
    except YAMLError as exc:
        raise SpecError([Problem(str(path), None, "", f"invalid YAML: {exc}")]) from None
    except RecursionError:
        raise SpecError([Problem(str(path), None, "", f"invalid YAML: nested deeper than {MAX_DEPTH}")]) from None
    # ruamel's constructors on odd input (`!!float .`)
    except (ValueError, IndexError, TypeError, AttributeError) as exc:
        raise SpecError([Problem(str(path), None, "", f"invalid YAML: {printable(str(exc))[:200]}")]) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise SpecError([Problem(str(path), 1, "", f"a {kind} file must be a YAML mapping")])
    doc = Document(path=path, data=None)
    budget = [MAX_NODES]
    try:
        doc.data = _plain(raw, (), doc.lines, budget)
    except _TooLarge as exc:
        raise SpecError([Problem(str(path), None, "", str(exc))]) from None
    return doc


def _plain(node: Any, loc: Loc, lines: dict[Loc, int], budget: list[int]) -> Any:
    """Convert ruamel's round-trip containers to dicts and lists, recording lines; aliases are
    expanded here, so the nodes they expand to and the depth are bounded."""
    budget[0] -= 1
    if budget[0] < 0:
        raise _TooLarge(f"the document expands to more than {MAX_NODES} values (YAML aliases?)")
    if len(loc) > MAX_DEPTH:
        raise _TooLarge(f"{dotted(loc[:3])}...: nested deeper than {MAX_DEPTH} levels")
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            child = (*loc, str(key))
            position = getattr(node, "lc", None)
            if position is not None:
                with contextlib.suppress(KeyError, TypeError):
                    lines[child] = position.key(key)[0] + 1
            out[str(key)] = _plain(value, child, lines, budget)
        return out
    if isinstance(node, list):
        items = []
        for index, value in enumerate(node):
            child = (*loc, index)
            position = getattr(node, "lc", None)
            if position is not None:
                with contextlib.suppress(KeyError, TypeError, IndexError):
                    lines[child] = position.item(index)[0] + 1
            items.append(_plain(value, child, lines, budget))
        return items
    if isinstance(node, str):
        return str(node)
    if hasattr(node, "real") and type(node).__name__ == "ScalarFloat":
        return float(node)
    if type(node).__name__ in {"ScalarInt", "HexInt", "OctalInt", "BinaryInt"}:
        return int(node)
    if type(node).__name__ == "ScalarBoolean":
        return bool(node)
    return node


def apply_overrides(doc: Document, assignments: Sequence[str]) -> None:
    """Apply `key.path=value` assignments; values are parsed as YAML scalars or flow nodes."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    yaml = YAML(typ="safe")
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SpecError([Problem(OVERRIDE, None, assignment, "expected KEY=VALUE")])
        try:
            value = yaml.load(text) if text.strip() else ""
        except YAMLError as exc:
            raise SpecError([Problem(OVERRIDE, None, key, f"cannot parse value: {exc}")]) from None
        parts: list[str | int] = [int(p) if p.isdigit() else p for p in key.split(".")]
        target = doc.data
        for depth, part in enumerate(parts[:-1]):
            nxt = _child(target, part)
            if nxt is None:
                nxt = {}
                _assign(target, part, nxt, assignment)
            target = nxt
            if not isinstance(target, dict | list):
                where = dotted(parts[: depth + 1])
                raise SpecError([Problem(OVERRIDE, None, key, f"{where} is not a mapping")])
        _assign(target, parts[-1], value, assignment)
        doc.origins[tuple(parts)] = OVERRIDE


def _child(container: Any, part: str | int) -> Any:
    if isinstance(container, dict):
        return container.get(str(part))
    if isinstance(container, list) and isinstance(part, int) and part < len(container):
        return container[part]
    return None


def _assign(container: Any, part: str | int, value: Any, assignment: str) -> None:
    if isinstance(container, dict):
        container[str(part)] = value
    elif isinstance(container, list) and isinstance(part, int) and part < len(container):
        container[part] = value
    elif isinstance(container, list) and isinstance(part, int) and part == len(container):
        container.append(value)
    else:
        raise SpecError([Problem(OVERRIDE, None, assignment, "no such list item")])


def validate_document(doc: Document, model: type[M]) -> M:
    """Validate `doc.data` against a pydantic model; every problem names file, line, field."""
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        raise SpecError(problems_from(exc, doc, model)) from None


def problems_from(exc: ValidationError, doc: Document, model: type[BaseModel]) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        loc = _data_loc(doc.data, tuple(error["loc"]))
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown field" + _suggest(loc, model)
        elif error["type"] == "missing":
            message = "required field is missing"
        elif error["type"] == "literal_error":
            message = f"{message}, got {error.get('input')!r}"
        problems.append(doc.problem(loc, message))
    # one line per problem, in file order, without repeats from union branches
    seen: set[tuple[str, int | None, str]] = set()
    unique = []
    for problem in sorted(problems, key=lambda p: (p.line or 0, p.field)):
        if (problem.file, problem.line, problem.field) not in seen:
            seen.add((problem.file, problem.line, problem.field))
            unique.append(problem)
    return unique


def _data_loc(data: Any, loc: Loc) -> Loc:
    """Drop pydantic's union-branch tags ('str', 'list[str]') that are not keys in the data."""
    out: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and str(part) in node:
            out.append(str(part))
            node = node[str(part)]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            out.append(part)
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and not _is_branch_tag(part):
            out.append(part)  # a missing key: still name it
            node = None
    return tuple(out)


def _is_branch_tag(part: str) -> bool:
    return any(ch in part for ch in "[]()") or part in {"str", "int", "float", "bool", "list", "dict"}


def _suggest(loc: Loc, model: type[BaseModel]) -> str:
    """` (did you mean 'x'?)` for an unknown key, from the fields of the model at that place."""
    if not loc or not isinstance(loc[-1], str):
        return ""
    fields = _fields_at(model, loc[:-1])
    close = difflib.get_close_matches(loc[-1], fields, n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{close[0]}'?)"
    return f" (allowed: {', '.join(sorted(fields))})" if fields else ""


def _fields_at(model: type[BaseModel], loc: Loc) -> list[str]:
    current: Any = model
    skip_key = False  # after a dict[str, Model] field, the next part is a user's key
    for part in loc:
        if isinstance(part, int) or skip_key:
            skip_key = False
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        info = current.model_fields.get(part)
        if info is None:
            return []
        skip_key = getattr(info.annotation, "__origin__", None) is dict
        current = _inner_model(info.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _inner_model(annotation: Any) -> Any:
    """The BaseModel inside `X`, `X | None`, `list[X]` or `dict[str, X]`, else the annotation."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        inner = _inner_model(arg)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            return inner
    return annotation


def close_match(word: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)` or an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
