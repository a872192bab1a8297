"""Fuzzing the loaders: hostile spec and graph documents (random values at every field, deep
nesting, control characters, huge numbers, aliases, arbitrary text) end in a SpecError or a
PolicyError, never in another exception; and none takes the loaders long (hypothesis's deadline
flags a document that does)."""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.errors import PolicyError, SpecError
from orchestrator.spec import load_spec
from orchestrator.spec.operator import Operator
from orchestrator.workflow import prepare_workflow

VALID = {
    "version": 1,
    "name": "fuzz",
    "goal": "Review.",
    "workspace": "ws",
    "include": ["**/*.py"],
    "tasks": [{"role": "debug", "instruction": "look", "files": ["app.py"]}],
    "models": {"debug": ["local/smollm2"]},
    "policy": {"data_class": "internal", "files": {"app.py": "public"}},
    "limits": {"concurrency": 2},
    "graph": "coding-workflow",
}
GRAPH = {
    "version": 1,
    "name": "g",
    "nodes": {"review": {"kind": "role", "role": "debug"}, "aggregate": {"kind": "aggregate"}},
    "edges": [["START", "review"], ["review", "aggregate"], ["aggregate", "END"]],
}

text = st.text(st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ["", "..", "../..", "/", "/etc/passwd", "\x00", "a\n::error::x", "**/" * 12, ":", "...:x", "../x:y", "x" * 5000]
)
scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | text
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4), max_leaves=20
)


def mutated(document: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    """The document with a few fields (at any depth) replaced by random values."""
    doc = json.loads(json.dumps(document))
    for _ in range(data.draw(st.integers(1, 3))):
        target: Any = doc
        while isinstance(target, dict | list) and target and data.draw(st.booleans()):
            key = data.draw(st.sampled_from(list(target) if isinstance(target, dict) else range(len(target))))
            if not isinstance(target[key], dict | list):
                break
            target = target[key]
        if isinstance(target, dict):
            target[data.draw(st.sampled_from([*target, "extra"]))] = data.draw(values)
        elif isinstance(target, list):
            target.append(data.draw(values))
    return doc


def load(spec_text: str, graph_text: str | None = None) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "ws").mkdir()
        (root / "ws" / "app.py").write_text("x = 1\n")
        (root / "spec.yaml").write_text(spec_text)
        if graph_text is not None:
            (root / "g.yaml").write_text(graph_text)
        with contextlib.suppress(SpecError, PolicyError):
            prepare_workflow(load_spec(root / "spec.yaml"), Operator())


FUZZ = settings(max_examples=100, deadline=5000, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.data())
def test_hostile_spec_documents_are_spec_errors(data: st.DataObject) -> None:
    load(json.dumps(mutated(VALID, data)))


@FUZZ
@given(st.data())
def test_hostile_graph_documents_are_spec_errors(data: st.DataObject) -> None:
    spec = {**VALID, "graph": "g.yaml", "tasks": []}
    load(json.dumps(spec), json.dumps(mutated(GRAPH, data)))


@FUZZ
@given(st.text(max_size=300))
def test_arbitrary_text_is_a_spec_error(document: str) -> None:
    load(document)
