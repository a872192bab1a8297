"""Conditions on graph edges: `findings.max_severity >= high`, `patches.valid == 0 or status == failed`.

A condition reads facts about the result of the node the edge leaves:

    status                ok | failed
    iteration             how many times the node has run (1 on its first run)
    findings.count        number of findings
    findings.max_severity the highest severity (none < info < low < medium < high < critical)
    patches.count         patches proposed (a diagnosis' fix counts as one)
    patches.valid         patches that apply (`git apply --check`)
    patches.invalid       patches that do not apply
    patches.verified      patches the spec's checks verified (every judged check passes with it)
    checks.failing        judged checks that fail with the node's patches (0 without checks)
    diagnosis.has_fix     whether a diagnosis proposed a fix (true | false)
    output.FIELD          a top-level field of the output (strings, numbers, booleans)

Comparisons are `== != >= > <= <`, joined by `and` / `or` (`and` binds tighter); `else`
marks the edge taken when no other condition of the same node holds. Parsed at validation time,
so a bad condition is a spec error, never a runtime surprise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from orchestrator.spec.kinds import SEVERITY_RANK

SEVERITIES = {"none": -1, **SEVERITY_RANK}
FACTS = {
    "status": "word",
    "iteration": "number",
    "findings.count": "number",
    "findings.max_severity": "severity",
    "patches.count": "number",
    "patches.valid": "number",
    "patches.invalid": "number",
    "patches.verified": "number",
    "checks.failing": "number",
    "diagnosis.has_fix": "bool",
}
_COMPARISON = re.compile(r"^\s*([a-z_][a-z0-9_.]*)\s*(==|!=|>=|<=|>|<)\s*(.+?)\s*$")
ELSE = "else"


class ConditionError(ValueError):
    pass


@dataclass(frozen=True)
class Comparison:
    fact: str
    op: str
    value: Any

    def holds(self, facts: dict[str, Any]) -> bool:
        left = facts.get(self.fact)
        right = self.value
        if FACTS.get(self.fact) == "severity":
            left, right = SEVERITIES.get(str(left), -1), SEVERITIES[right]
        if left is None:
            return self.op == "!="
        try:
            return bool(
                {
                    "==": lambda: left == right,
                    "!=": lambda: left != right,
                    ">=": lambda: left >= right,
                    "<=": lambda: left <= right,
                    ">": lambda: left > right,
                    "<": lambda: left < right,
                }[self.op]()
            )
        except TypeError:
            return False


@dataclass(frozen=True)
class Condition:
    """Disjunction of conjunctions of comparisons (or `else`)."""

    text: str
    clauses: tuple[tuple[Comparison, ...], ...]

    @property
    def is_else(self) -> bool:
        return not self.clauses

    def holds(self, facts: dict[str, Any]) -> bool:
        return any(all(c.holds(facts) for c in clause) for clause in self.clauses)


def parse_condition(text: str) -> Condition:
    text = text.strip()
    if text == ELSE:
        return Condition(text, ())
    clauses = []
    for alternative in re.split(r"\s+or\s+", text):
        clauses.append(tuple(_comparison(part) for part in re.split(r"\s+and\s+", alternative)))
    return Condition(text, tuple(clauses))


def _comparison(text: str) -> Comparison:
    match = _COMPARISON.match(text)
    if not match:
        raise ConditionError(f"cannot read '{text}': expected FACT OP VALUE, e.g. findings.max_severity >= high")
    fact, op, raw = match.groups()
    kind = FACTS.get(fact) or ("output" if fact.startswith("output.") and fact.count(".") == 1 else None)
    if kind is None:
        raise ConditionError(f"unknown fact '{fact}' (known: {', '.join(FACTS)}, output.FIELD)")
    value = _value(raw)
    if kind == "severity" and str(value) not in SEVERITIES:
        raise ConditionError(f"'{raw}' is not a severity ({', '.join(SEVERITIES)})")
    if kind == "number" and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise ConditionError(f"{fact} is a number; got '{raw}'")
    if kind == "bool" and not isinstance(value, bool):
        raise ConditionError(f"{fact} is true or false; got '{raw}'")
    if kind in ("word", "bool") and op not in ("==", "!="):
        raise ConditionError(f"{fact} can only be compared with == or !=")
    return Comparison(fact, op, value)


def _value(raw: str) -> Any:
    raw = raw.strip().strip("'\"")
    if raw in ("true", "false"):
        return raw == "true"
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        return float(raw)
    except ValueError:
        return raw
