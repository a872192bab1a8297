"""The typed records of a diff scope: each changed file with its hunks (their shape, never their
text), and the report result.json keeps (`RunResult.diff`) so that a review can be rebuilt from
the result alone. Line numbers on the new side ("RIGHT") are those of the file at HEAD."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FileStatus = Literal["added", "modified", "renamed", "copied", "deleted", "type_changed"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Hunk(_Record):
    """One `@@ -a,b +c,d @@` hunk: where it is on each side, and one character per line of it."""

    old_start: int = Field(ge=0)
    old_count: int = Field(ge=0)
    new_start: int = Field(ge=0)
    new_count: int = Field(ge=0)
    ops: str = Field(pattern=r"^[ +\-]*$", description="' ' context, '+' added, '-' removed: one per line")

    def right_lines(self) -> range:
        """The lines of the new file this hunk shows (added and context lines)."""
        return range(self.new_start, self.new_start + self.new_count) if self.new_count else range(0)

    def added(self) -> list[int]:
        """The new file's lines this hunk adds."""
        found, line = [], self.new_start
        for op in self.ops:
            if op == "+":
                found.append(line)
            if op != "-":
                line += 1
        return found

    def old_line_of(self, new_line: int) -> int | None:
        """The old file's number of a context line (None for an added line or one not shown)."""
        old, new = self.old_start, self.new_start
        for op in self.ops:
            if op == " " and new == new_line:
                return old
            if op != "+":
                old += 1
            if op != "-":
                new += 1
        return None


class ChangedFile(_Record):
    """A file the diff touches, and whether its changes went to the models."""

    path: str = Field(description="relative to the workspace (a deleted file's old path)")
    old_path: str | None = Field(default=None, description="where a renamed or copied file came from")
    status: FileStatus
    binary: bool = False
    reviewed: bool = Field(description="its changed hunks were given to the models")
    reason: str = Field(default="", description="why it was not reviewed")
    hunks: list[Hunk] = Field(default_factory=list)

    def right_lines(self) -> set[int]:
        """Every line of the new file a comment may be made on (the diff shows it)."""
        return {line for hunk in self.hunks for line in hunk.right_lines()}

    def added(self) -> set[int]:
        return {line for hunk in self.hunks for line in hunk.added()}

    def hunk_of(self, line: int) -> Hunk | None:
        return next((h for h in self.hunks if line in h.right_lines()), None)


class FindingPlace(_Record):
    """Where a finding of the run falls: on a line of the diff, or not."""

    subtask: str
    index: int = Field(ge=0, description="the finding's position in its subtask's answer")
    file: str
    line: int | None = None
    in_diff: bool = Field(description="the file and line are part of the diff (a review comment may go there)")


class Span(_Record):
    """Lines of a file at HEAD (1-based, inclusive) a patch replaces, and their replacement."""

    path: str
    start_line: int = Field(ge=1)
    line: int = Field(ge=1)
    replacement: list[str] = Field(default_factory=list, description="the new lines (none: the lines are removed)")


class PatchPlace(_Record):
    """Where a proposed patch of the run falls: on lines of the diff (a suggestion may be made of
    it there), or not, and why."""

    patch: str = Field(description="the patch's id (SUBTASK-N, as its verdict names it)")
    subtask: str
    spans: list[Span] = Field(default_factory=list)
    in_diff: bool = Field(description="every span is within one hunk of the diff, on its new side")
    reason: str = Field(default="", description="why it is not on the diff's lines")


class DiffReport(_Record):
    """What was reviewed: the revisions compared and every changed file (result.json `diff`)."""

    base_ref: str = Field(description="the revision asked for (--diff-base, diff_base, or the CI's base branch)")
    source: str = Field(default="", description="where the base came from: --diff-base, the spec, a CI variable")
    base_sha: str = Field(description="the merge base of base_ref and HEAD: the diff's old side")
    start_sha: str = Field(description="base_ref itself")
    head_sha: str = Field(description="HEAD: the diff's new side, the commit a review is made on")
    prefix: str = Field(default="", description="the workspace's folder inside its repository ('' at the root)")
    files: list[ChangedFile] = Field(default_factory=list)
    diff_bytes: int = Field(default=0, description="bytes of the diff that were read")
    max_diff_bytes: int
    truncated: bool = Field(default=False, description="the diff was larger than limits.max_diff_bytes")
    findings: list[FindingPlace] = Field(default_factory=list)
    patches: list[PatchPlace] = Field(default_factory=list)

    def file(self, path: str) -> ChangedFile | None:
        """The changed file at this workspace path (its new path)."""
        return next((f for f in self.files if f.path == path and f.status != "deleted"), None)

    def reviewed(self) -> list[ChangedFile]:
        return [f for f in self.files if f.reviewed]

    def span_in_diff(self, span: Span) -> bool:
        """Whether every line of a span is shown by one hunk of a reviewed file (a comment's
        start line must be in the same hunk as its line)."""
        changed = self.file(span.path)
        hunk = changed.hunk_of(span.line) if changed is not None and changed.reviewed else None
        return hunk is not None and span.start_line in hunk.right_lines()

    def in_diff(self, path: str, line: int | None) -> bool:
        """Whether a comment may go on this line: a reviewed file's line that the diff shows."""
        changed = self.file(path)
        return changed is not None and changed.reviewed and line is not None and line in changed.right_lines()
