"""The fast YAML path (libyaml's events, ruamel's YAML 1.2 rules) gives exactly what the ruamel
path gives, data and lines, for every document it takes; every other document goes to ruamel,
which words the errors. Differential: both paths on the repository's YAML and on generated
documents with the scalars where YAML 1.1 and 1.2 disagree."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from orchestrator.spec._document import MAX_DEPTH, MAX_NODES, _load_ruamel, load_yaml
from orchestrator.spec._fastyaml import fast_load

REPO = Path(__file__).resolve().parent.parent
# plain scalars that YAML 1.1 (libyaml's own reading) and 1.2 (ruamel's) read differently, or that
# ruamel's constructor builds in its own way
TRICKY = [
    "yes", "no", "on", "off", "y", "n", "True", "FALSE", "017", "010", "08", "0o17", "0b101", "0x1F", "0xff",
    "1_000", "+12", "-0", "1e5", "12e03", "1.5e3", ".5", "+.5", "-.inf", ".NaN", "1.", "0.", "1:30", "~", "null",
    "Null", "", "2024-01-01", "2024-01-01 10:00:00", "2001-12-14t21:59:43.10-05:00", "0o", "0x", "_1", "1__0", "=",
    "00", "+0b1", "-0x_a", "0b_", "<<", "!", "a b", "x: y", "- z", "[1]", "'q'", '"d"', "#c", "@a", "`b", "%x",
    "12:30:45", "1,000", "9" * 30, "0.1e-7", "-1E+3", "1e", "e5", "inf", ".inf", "+.inf", "NaN", "0b2", "0o8",
]  # fmt: skip


def normal(value: Any) -> Any:
    """Comparable data: NaN equal to itself, and the type of every scalar kept."""
    if isinstance(value, dict):
        return {key: normal(item) for key, item in value.items()}
    if isinstance(value, list):
        return [normal(item) for item in value]
    if isinstance(value, float) and math.isnan(value):
        return ("nan",)
    return (type(value).__name__.replace("HexCapsInt", "int"), value)


def both(text: str) -> tuple[Any, Any]:
    """(fast path's (data, lines) or None, the ruamel path's (data, lines) or its exception)."""
    fast = fast_load(text, MAX_NODES, MAX_DEPTH)
    try:
        doc = _load_ruamel(Path("doc.yaml"), text, "spec")
        slow: Any = (doc.data, doc.lines)
    # what the ruamel path does, whatever it is
    except Exception as exc:
        slow = exc
    return fast, slow


def check(text: str) -> bool:
    """True when the fast path took the document (and then it agreed with ruamel)."""
    fast, slow = both(text)
    if fast is None or not isinstance(fast[0], dict):
        return False
    assert not isinstance(slow, Exception), (text, slow)
    assert normal(fast[0]) == normal(slow[0]), text
    assert fast[1] == slow[1], text
    return True


@pytest.mark.parametrize(
    "path",
    sorted(p for p in REPO.rglob("*.y*ml") if ".venv" not in p.parts and ".git" not in p.parts),
    ids=lambda p: str(p.relative_to(REPO)),
)
def test_every_yaml_file_of_the_repository_loads_the_same_both_ways(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    if YAML(typ="rt").load(text).__class__.__name__ != "CommentedMap":
        pytest.skip("not a mapping")
    assert check(text), "the fast path should take the repository's own files"


@pytest.mark.parametrize("scalar", TRICKY)
def test_scalars_where_yaml_versions_disagree_read_as_ruamel_reads_them(scalar: str) -> None:
    text = f"version: 1\nplain: {scalar}\nlisted:\n  - {scalar}\nflow: {{k: {scalar}}}\n{scalar or 'empty'}: key\n"
    check(text)  # taken and equal, or left to ruamel
    quoted = f"version: 1\nq: '{scalar.replace(chr(39), chr(39) * 2)}'\n"
    assert check(quoted)


keys = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True)
    | st.sampled_from(TRICKY)
    | st.text(max_size=20)
)
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4), max_leaves=25
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(keys, values, max_size=6), st.sampled_from(["block", "flow", "json"]))
def test_generated_documents_load_the_same_both_ways(document: dict[str, Any], style: str) -> None:
    if style == "json":
        text = json.dumps(document, indent=1)
    else:
        import io

        yaml = YAML(typ="rt")
        yaml.default_flow_style = style == "flow"
        stream = io.StringIO()
        yaml.dump(document, stream)
        text = stream.getvalue()
    check(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_is_either_taken_the_same_or_left_to_ruamel(text: str) -> None:
    check(text)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("%YAML 1.1\n---\na: yes\n", "a directive: YAML 1.1 rules"),
        ("a: &x 1\nb: *x\n", "an anchor and an alias"),
        ("a: !custom 1\n", "an explicit tag"),
        ("a: 1\na: 2\n", "a duplicate key"),
        ("? [a]\n: b\n", "a key that is no scalar"),
        ("<<: {a: 1}\n", "a merge key"),
        ("a: 1\n---\nb: 2\n", "two documents"),
        ("a: [1, 2\n", "a syntax error"),
        ("0:\t", "a tab: libyaml takes this one, ruamel refuses it"),
        ("x: " + "[" * (MAX_DEPTH + 2) + "]" * (MAX_DEPTH + 2) + "\n", "past the depth bound"),
    ],
)
def test_what_the_fast_path_leaves_to_ruamel(text: str, why: str) -> None:
    assert fast_load(text, MAX_NODES, MAX_DEPTH) is None, why


@pytest.mark.parametrize("text", ["x: !!float .\n", "x: !!int abc\n"])
def test_what_ruamels_constructors_choke_on_is_a_spec_error(text: str) -> None:
    from orchestrator.errors import SpecError

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "spec.yaml"
        path.write_text(text)
        with pytest.raises(SpecError, match="invalid YAML"):
            load_yaml(path)


def test_errors_keep_their_file_line_field_message_form() -> None:
    """A document with an error is read by ruamel: its error, with the line, as before."""
    from orchestrator.errors import SpecError

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "spec.yaml"
        path.write_text("version: 1\nname: x\ngoal: 'unclosed\ntasks: []\n")
        with pytest.raises(SpecError) as raised:
            load_yaml(path)
        (problem,) = raised.value.problems
        assert problem.line == 3 and problem.message.startswith("invalid YAML")
        path.write_text("version: 1\na: 1\na: 2\n")
        with pytest.raises(SpecError) as raised:
            load_yaml(path)
        assert "duplicate" in raised.value.problems[0].message
