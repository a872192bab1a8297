"""The bookkeeping of a tool loop: its turns and bounds, the transcript fitted to the model's
window, and the texts the model is shown (its tools; a reflection after a failed fix)."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import BaseMessage, HumanMessage, ToolMessage

from orchestrator.checks import PatchVerdict
from orchestrator.engine._fence import fence
from orchestrator.engine._prompt import render
from orchestrator.engine.context import AgentLimits
from orchestrator.models import BoundModel
from orchestrator.models.chain import ChainResult
from orchestrator.spec import read_data

ELIDED = "(this earlier tool result was removed to fit the context window)"
CHECK_OUTPUT_CHARS = 3000  # of each failing check's output, in a reflection


class Turns:
    """One attempt's turns: which one this is, and whether the model may still call tools."""

    def __init__(self, limit: int, agent: AgentLimits) -> None:
        self.limit, self.agent = limit, agent
        self.turn = 0
        self.calls = 0
        self.recent: list[str] = []  # the last calls, for the identical-calls bound
        self.stopped: str | None = None  # why the model must answer now

    def next(self) -> None:
        self.turn += 1

    def done(self, reason: str) -> None:
        self.stopped = self.stopped or reason

    def stop_reason(self) -> str | None:
        """Why this turn must answer (None: tools are still offered)."""
        if self.stopped:
            return self.stopped
        if self.turn >= self.limit:
            return "max_turns"
        return None

    def admit(self, key: str) -> tuple[str, str] | None:
        """Count a tool call; (bound, why) when a bound refuses it (the model then answers)."""
        if self.calls >= self.agent.max_tool_calls:
            self.done("max_tool_calls")
            return "max_tool_calls", f"limits.max_tool_calls ({self.agent.max_tool_calls}) reached"
        repeats = self.agent.repeats
        if len(self.recent) >= repeats - 1 and all(k == key for k in self.recent[-(repeats - 1) :]):
            self.done("repeated_call")
            return "repeated_call", f"the same call {repeats} times in a row"
        self.calls += 1
        self.recent.append(key)
        return None

    @staticmethod
    def fit(transcript: Sequence[BaseMessage], bound: BoundModel, budget: int) -> list[BaseMessage]:
        """The transcript within `budget` tokens: the oldest tool results are elided first."""
        messages = list(transcript)
        sizes = [bound.count_tokens(m.text) for m in messages]
        results = [i for i, m in enumerate(messages) if _is_result(m)]
        for index in results[:-1]:  # the latest result always stays
            if sum(sizes) <= budget:
                break
            original = messages[index]
            text = original.text.split("\n", 1)[0] + "\n" + ELIDED if isinstance(original, HumanMessage) else ELIDED
            messages[index] = (
                ToolMessage(content=ELIDED, tool_call_id=original.tool_call_id)
                if isinstance(original, ToolMessage)
                else HumanMessage(text)
            )
            sizes[index] = bound.count_tokens(messages[index].text)
        return messages


def _is_result(message: BaseMessage) -> bool:
    return isinstance(message, ToolMessage) or (
        isinstance(message, HumanMessage) and message.text.startswith("Turn ") and "<tool_result" in message.text
    )


def tools_section(tools: str, max_turns: int, native: bool) -> str:
    protocol = (
        "Call them as functions; when you know enough, call `answer` with your final answer as its arguments."
        if native
        else 'Each turn, reply with exactly one JSON object: a tool call such as {"tool": "read_file", '
        '"path": "PATH"}, or your final answer.'
    )
    return render(read_data("prompts", "tools.md"), tools=tools, max_turns=str(max_turns), protocol=protocol)


def reflection_reason(verdicts: list[PatchVerdict], kind: str) -> str:
    """Why a fix goes back to its model ("" when it need not): it does not apply, it breaks a
    check or a test that passed, or (a diagnosis' fix) the failing check still fails. A verdict
    the checks could not reach (inconclusive: the baseline cannot judge) is not the model's to fix."""
    for verdict in verdicts:
        if verdict.verdict in ("rejected", "not_applied"):
            return f"{verdict.id.split('@')[0]} was {verdict.verdict.replace('_', ' ')}: {verdict.reason}"
        if verdict.verdict == "inconclusive":
            continue
        if verdict.broken:
            shown = ", ".join(verdict.broken[:5])
            return f"the patch breaks tests that passed before: {shown}"
        broken = [c for c in verdict.checks if c.regressed]
        if broken:
            return f"the patch breaks {', '.join(f'{c.name} ({c.before} -> {c.after})' for c in broken)}"
        if kind == "diagnosis":
            failing = verdict.failing_checks
            if failing:
                return f"with the fix, {', '.join(f'{c.name} ({c.before} -> {c.after})' for c in failing)} still fails"
    return ""


def edits_reason(problems: Sequence[object]) -> str:
    return f"{len(problems)} of your edits do not apply" if problems else ""


def reflection_text(
    verdicts: list[PatchVerdict],
    reason: str,
    show_output: bool,
    edit_problems: Sequence[object] = (),
    *,
    fence_key: bytes,
) -> str:
    """What the model is told about its fix: edits that do not apply, each check before and after,
    and the failing checks' output."""
    lines = [f"- {problem}" for problem in edit_problems]
    if edit_problems:
        lines.insert(0, "These edits could not be applied to the files as you were shown them:")
    if verdicts:
        lines.append("Your answer's patches were applied to a copy of the workspace and the project's checks were run.")
    for verdict in verdicts:
        checks = ", ".join(f"{c.name}: {c.before} -> {c.after or 'not run'}" for c in verdict.checks)
        lines.append(f"- {', '.join(verdict.files) or verdict.id}: {verdict.verdict} ({checks or verdict.reason})")
        if verdict.broken:
            lines.append(f"  tests that passed before and fail with it: {', '.join(verdict.broken[:10])}")
        if verdict.touches_tests and not verdict.judge_changed:
            files = ", ".join(verdict.touches_tests[:10])
            lines.append(f"  it was judged with the project's own {files}: the tests are not yours to change")
    for verdict in verdicts:
        for check in verdict.failing_checks:
            if show_output:
                output = check.output[-CHECK_OUTPUT_CHARS:]
                lines.append(fence("check_output", "check", check.name, output, fence_key))
            else:
                lines.append(f"({check.name}'s output is withheld: the policy keeps the files it may show from you)")
    lines.append(f"The problem: {reason}. Correct it and answer again, in the same JSON shape.")
    return "\n".join(lines)


def add_usage(total: ChainResult, outcome: ChainResult) -> None:
    """Count what a turn (or a model's attempts) used into a total; an unknown cost stays unknown."""
    first = total.usage.calls == 0 and total.cost_basis is None
    total.usage.merge(outcome.usage)
    total.usage.calls += max(outcome.usage.calls, 1 if outcome.ok else 0)
    total.latency_ms += outcome.latency_ms
    total.waited_s = round(total.waited_s + outcome.waited_s, 3)
    total.spans += outcome.spans  # every turn's model attempts and waits, on the run's clock
    if outcome.ok:
        total.cached = outcome.cached if first else total.cached and outcome.cached
        known = total.cost_usd is not None or first
        total.cost_usd = (total.cost_usd or 0.0) + outcome.cost_usd if known and outcome.cost_usd is not None else None
        total.cost_basis = outcome.cost_basis


def keep_answer(total: ChainResult, outcome: ChainResult) -> None:
    """The answer of `outcome` becomes the total's (its usage was counted by `add_usage`); a tool
    loop's `attempts` are the most any of its turns took (a retried turn shows as 2)."""
    total.output, total.route, total.mode = outcome.output, outcome.route, outcome.mode
    total.host = outcome.host
    total.served = outcome.served
    total.attempts = max(total.attempts, outcome.attempts)
