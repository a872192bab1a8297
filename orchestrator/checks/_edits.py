"""Search/replace edits (file, the exact old text, the new text), as aider's "replace" edit
format: models that cannot write hunk headers copy text well. Edits become a unified diff
against the file as the model was shown it, so everything after this (git apply --check, the
verifier, `orchestrator apply`) sees diffs only. An edit whose old text is missing or not unique
is refused with a reason the model can act on (its answer is repaired once, like invalid JSON)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from orchestrator.models import ContractError


class EditError(ContractError):
    """Edits that cannot be applied; one line per problem."""


@dataclass(frozen=True)
class Edit:
    file: str
    old: str
    new: str


@dataclass(frozen=True)
class EditProblem:
    """Why one edit does not apply (its text names the edit, for the model)."""

    file: str
    text: str

    def __str__(self) -> str:
        return self.text


def apply_edits(edits: Sequence[Edit], files: Mapping[str, str]) -> tuple[dict[str, str], list[EditProblem]]:
    """One unified diff per file, from the edits that apply (in order), and why the others do
    not. An empty `old` creates a file that does not exist yet (or fills an empty one)."""
    problems: list[EditProblem] = []
    changed: dict[str, str] = {}
    for index, edit in enumerate(edits):
        where = f"edit {index + 1} ({edit.file})"

        def problem(text: str, edit: Edit = edit, where: str = where) -> None:
            problems.append(EditProblem(edit.file, f"{where}: {text}"))

        if edit.file not in files and edit.old:
            problem("no such file among the files you were given")
            continue
        text = changed.get(edit.file, files.get(edit.file, ""))
        if not edit.old:
            if text:
                problem("`old` is empty but the file is not; copy the exact lines to replace")
            else:
                changed[edit.file] = edit.new
            continue
        count = text.count(edit.old)
        if count == 0:
            problem("the old text is not in the file; copy it exactly, whitespace included")
        elif count > 1:
            problem(f"the old text appears {count} times; include more lines to make it unique")
        elif edit.old == edit.new:
            problem("old and new are the same")
        else:
            changed[edit.file] = text.replace(edit.old, edit.new, 1)
    diffs = {path: unified_diff(path, files.get(path), new) for path, new in changed.items()}
    return {path: diff for path, diff in diffs.items() if diff}, problems


def edits_to_diffs(edits: Sequence[Edit], files: Mapping[str, str]) -> dict[str, str]:
    """Like `apply_edits`, but every edit must apply (EditError otherwise)."""
    diffs, problems = apply_edits(edits, files)
    if problems:
        raise EditError([str(p) for p in problems])
    return diffs


def unified_diff(path: str, before: str | None, after: str) -> str:
    """A git-style unified diff of one file (`--- /dev/null` when it is new)."""
    old_lines = (before or "").splitlines(keepends=True)
    new_lines = after.splitlines(keepends=True)
    source = f"a/{path}" if before is not None else "/dev/null"
    lines = list(difflib.unified_diff(old_lines, new_lines, fromfile=source, tofile=f"b/{path}", n=3))
    out = []
    for line in lines:
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)
