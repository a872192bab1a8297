"""A diff scope: the files changed between the merge base of a revision and HEAD, as git sees
them in the workspace's repository, each with its hunks; which of them the models review (text
files of the run's selection whose diff was read within `limits.max_diff_bytes`) and why the
others are not (deleted, binary, renamed without a changed line, outside include, too large)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.diff._git import git_text, resolve, run_git
from orchestrator.diff._parse import Entry, Section, name_status, read_section, split_patch
from orchestrator.diff._records import ChangedFile, DiffReport
from orchestrator.errors import SpecError

NAMES_LIMIT = 8_000_000


@dataclass
class DiffScope:
    """The report (kept in result.json) and the reviewed files' diffs (given to the models)."""

    report: DiffReport
    patches: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def paths(self) -> list[str]:
        """The reviewed files, as workspace paths."""
        return [f.path for f in self.report.reviewed()]


def diff_scope(
    workspace: Path,
    base: str,
    *,
    max_bytes: int,
    unreadable: Callable[[str], str | None],
    source: str = "",
) -> DiffScope:
    """The scope of `base...HEAD` in the repository of `workspace`. `unreadable(path)` says why a
    changed file is not one of the run's files (None when it is). Raises SpecError (exit 2) when
    the workspace is not in git, or the revision or a merge base cannot be found."""
    try:
        prefix = git_text(workspace, ["rev-parse", "--show-prefix"])
    except SpecError:
        raise SpecError(f"diff_base: {workspace} is not in a git repository") from None
    start = resolve(workspace, base)
    if start is None:
        raise SpecError(
            f"diff_base: no revision '{base}' in the repository of {workspace}",
            hint="in CI, fetch the base branch too (actions/checkout with fetch-depth: 0; GIT_DEPTH: 0 on GitLab)",
        )
    head = resolve(workspace, "HEAD")
    if head is None:
        raise SpecError(f"diff_base: the repository of {workspace} has no commit at HEAD")
    try:
        merge_base = git_text(workspace, ["merge-base", start, head])
    except SpecError:
        raise SpecError(f"diff_base: '{base}' and HEAD have no common ancestor (a shallow clone?)") from None
    names = run_git(workspace, ["diff", "--name-status", "-z", "-M", "--relative", merge_base, head], NAMES_LIMIT)
    entries = name_status(names.data)
    patch = run_git(
        workspace,
        ["diff", "--no-ext-diff", "--no-textconv", "--no-color", "-M", "-U3", "--relative", merge_base, head],
        max_bytes,
    )
    sections = split_patch(patch.data.decode("utf-8", "replace"))
    if patch.truncated and sections:  # the last part was cut off: its file is not reviewed
        sections.pop()
    scope = DiffScope(
        DiffReport(
            base_ref=base,
            source=source,
            base_sha=merge_base,
            start_sha=start,
            head_sha=head,
            prefix=prefix,
            diff_bytes=len(patch.data),
            max_diff_bytes=max_bytes,
            truncated=patch.truncated or names.truncated,
        )
    )
    for index, entry in enumerate(entries):
        section = sections[index] if index < len(sections) else None
        scope.report.files.append(_changed(scope, entry, section, unreadable, max_bytes))
    scope.warnings += _uncommitted(workspace, scope.paths)
    return scope


def _changed(
    scope: DiffScope, entry: Entry, text: str | None, unreadable: Callable[[str], str | None], max_bytes: int
) -> ChangedFile:
    changed = ChangedFile(path=entry.path, old_path=entry.old_path, status=entry.status, reviewed=False)
    if entry.status == "deleted":
        changed.reason = "deleted"
        return changed
    if text is None:
        changed.reason = f"not reviewed: the diff is larger than limits.max_diff_bytes ({max_bytes} bytes)"
        return changed
    if not _names(text, entry.path):
        changed.reason = "not reviewed: git's diff of it could not be read"
        return changed
    section: Section = read_section(text)
    changed.binary, changed.hunks = section.binary, section.hunks
    why = "binary" if section.binary else unreadable(entry.path)
    if why is None and not section.hunks:
        why = f"{entry.status.replace('_', ' ')} without a changed line"
    if why is not None:
        changed.reason = why
        return changed
    changed.reviewed = True
    scope.patches[entry.path] = text
    return changed


def _names(text: str, path: str) -> bool:
    """Whether a part of the patch is the one of `path` (git lists files in the same order)."""
    header = text.split("\n", 1)[0]
    return header.endswith(f" b/{path}") or header.endswith('"')


def _uncommitted(workspace: Path, paths: list[str]) -> list[str]:
    """Reviewed files the working tree changed since HEAD: their lines are reviewed as at HEAD."""
    if not paths:
        return []
    try:
        raw = run_git(workspace, ["diff", "--name-only", "-z", "--relative", "HEAD"], NAMES_LIMIT).data
    except SpecError:
        return []
    dirty = sorted(set(raw.decode("utf-8", "replace").split("\0")) & set(paths))
    if not dirty:
        return []
    shown = ", ".join(dirty[:5]) + (f" and {len(dirty) - 5} more" if len(dirty) > 5 else "")
    return [f"uncommitted changes in {shown}: the review's line numbers follow HEAD, the models read the files"]
