"""The repository context of a call's prompt: its files in the order of what the task is about
(`_relevance.py`), packed to fit each model's window (`_packing.py`), and after them the map of
the repository's other files (`_repomap.py`), within `limits.map_tokens`.

The map obeys the policy as the tools do (`RunContext.may_read`): a file this model may not see,
in this role or graph node, adds nothing to its map, not even a symbol name; nor does a file of a
higher data class than the call's own files, so that what a call saw stays what its record says.
What was packed (whole, cut or left out, and why) and what the map showed go to the call's
`context` in result.json.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from orchestrator.catalog import Route
from orchestrator.engine._changes import review_files
from orchestrator.engine._packing import pack_files
from orchestrator.engine._prompt import MAP_HEADING, system_message
from orchestrator.engine._relevance import TEST_FILE, Focus, PackItem, identifiers, named_in_text, order
from orchestrator.engine._repomap import RepoIndex
from orchestrator.engine.context import RunContext
from orchestrator.models import BoundModel
from orchestrator.policy import CLASSES
from orchestrator.spec import PLANNER, Role
from orchestrator.workspace import SourceFile

Build = Callable[[Route, BoundModel], list[BaseMessage]]
PROMPT_MARGIN = 64  # tokens kept free beyond the estimate of the prompt
MAP_SHARE = 4  # the map takes at most 1/MAP_SHARE of what a prompt has for the repository


@dataclass(frozen=True)
class Viewer:
    """Who reads the prompt, for the policy: the role, and the graph node whose own models serve it."""

    role: str
    node: str | None = None


def index_of(ctx: RunContext) -> RepoIndex:
    """The run's repository index (the symbols of every file), built on first use."""
    if ctx.repo is None:
        ctx.repo = RepoIndex(ctx.files.files)
    return ctx.repo


def focus_for(ctx: RunContext, role: Role, instruction: str, named: Sequence[str]) -> Focus:
    """What a role's call is about: the goal and its instruction, its task's files, its kind."""
    debug = role.output == "diagnosis"
    return Focus(f"{ctx.goal}\n{instruction}", tuple(named), debug, tuple(ctx.priority))


def task_files(ctx: RunContext, named: Sequence[str], role: Role | None) -> list[SourceFile]:
    """The files a task is given: those it names (when it names none, every file under review:
    the workspace's, or a diff-scoped run's changed ones); a debug task also gets the modules its
    named test files import."""
    by_path = ctx.files.by_path()
    files = [by_path[p] for p in named if p in by_path]
    if not files:
        return review_files(ctx)
    if role is not None and role.output == "diagnosis":
        index = index_of(ctx)
        for test in [f.path for f in files if TEST_FILE.search(f.path)]:
            files += [by_path[p] for p in index.imported_by(test) if by_path[p] not in files]
    return files


def map_outline(
    ctx: RunContext,
    route: Route,
    viewer: Viewer,
    top_class: str,
    focus: Focus,
    exclude: set[str],
    budget: int,
    count: Callable[[str], int],
    seeds: Sequence[str] = (),
) -> tuple[str, list[str]]:
    """The outline of the files this model may see (of `top_class` at most, `exclude` left out),
    ranked from the files `focus` is about (and `seeds`), within `budget` tokens; and the files
    it shows."""
    if budget <= 0:
        return "", []
    index = index_of(ctx)
    highest = CLASSES.index(top_class)
    visible = [
        f.path
        for f in ctx.files.files
        if f.path not in exclude
        and CLASSES.index(ctx.file_classes.get(f.path, ctx.base_class)) <= highest
        and ctx.may_read(route, viewer.role, f.path, viewer.node)
    ]
    paths = [f.path for f in ctx.files.files]
    named = [path for path, _ in named_in_text(focus.text, paths)]
    restart = dict.fromkeys([*focus.named, *named, *(p.path for p in focus.priority), *seeds], 1.0)
    ranked = index.rank(visible, restart, set(identifiers(focus.text, index)))
    return index.outline([path for path, _ in ranked], budget, count)


def packed_messages(
    ctx: RunContext,
    files: list[SourceFile],
    user: str,
    context: dict[str, Any],
    reserve: int = 0,
    *,
    viewer: Viewer,
    focus: Focus | None = None,
) -> Build:
    """Messages with the files packed to fit each model's window, most relevant first, and the
    map of the rest; `context` records the packing. `reserve` tokens are kept free (for a tool
    loop's transcript)."""
    about = focus or Focus(ctx.goal, priority=tuple(ctx.priority))
    data_class = ctx.data_class_of([f.path for f in files])
    ordered: list[PackItem] = []
    maps: dict[tuple[str, int, tuple[str, ...]], tuple[str, list[str]]] = {}

    def build(route: Route, bound: BoundModel) -> list[BaseMessage]:
        if not ordered:
            ordered.extend(order(files, about, index_of(ctx)))
        count = bound.count_tokens
        fixed = count(system_message("") + user) + PROMPT_MARGIN
        budget = max(route.context_window - ctx.max_output_tokens - fixed - reserve, 0)
        share = min(ctx.map_tokens, budget // MAP_SHARE)
        packed = pack_files(ordered, budget - share, count)
        whole = tuple(entry["path"] for entry in packed.packed if entry["how"] == "whole")
        room = min(ctx.map_tokens, budget - packed.tokens - count(MAP_HEADING) - 16)
        key = (route.ref, room, whole)
        if key not in maps:
            seeds = [item.source.path for item in ordered if item.focus]
            maps[key] = map_outline(ctx, route, viewer, data_class, about, set(whole), room, count, seeds)
        outline, shown = maps[key]
        context.clear()
        context.update(packed.as_dict(), budget=budget, model=route.ref)
        context["map"] = {"files": len(shown), "tokens": count(outline) if outline else 0, "budget": max(room, 0)}
        return [SystemMessage(system_message(packed.text, outline)), HumanMessage(user)]

    return build


def planner_messages(ctx: RunContext, user: str, visible: Sequence[str]) -> Build:
    """The planner's messages: its task, and the map of the files it may see."""
    about = Focus(ctx.goal, priority=tuple(ctx.priority))
    maps: dict[str, str] = {}
    named = set(visible)

    def build(route: Route, bound: BoundModel) -> list[BaseMessage]:
        if route.ref not in maps:
            count = bound.count_tokens
            budget = route.context_window - ctx.max_output_tokens - count(system_message("") + user) - PROMPT_MARGIN
            room = min(ctx.map_tokens, budget // MAP_SHARE)
            hidden = {f.path for f in ctx.files.files if f.path not in named}
            top = CLASSES[-1]  # the planner's rule is the names it may see, checked per model below
            maps[route.ref] = map_outline(ctx, route, Viewer(PLANNER), top, about, hidden, room, count)[0]
        return [SystemMessage(system_message("", maps[route.ref])), HumanMessage(user)]

    return build
