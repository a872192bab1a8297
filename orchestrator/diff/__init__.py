"""Review what changed: the files a diff touches between the merge base of a revision and HEAD,
their hunks, and which of them the models review (`diff_base`, `--diff-base`, or the base branch
of a CI pull request). Imports nothing of the orchestrator above the workspace; calls only git."""

from orchestrator.diff._ci import ci_base
from orchestrator.diff._git import resolve
from orchestrator.diff._place import Unplaceable, place_patch
from orchestrator.diff._records import ChangedFile, DiffReport, FileStatus, FindingPlace, Hunk, PatchPlace, Span
from orchestrator.diff._scope import DiffScope, diff_scope

__all__ = [
    "ChangedFile",
    "DiffReport",
    "DiffScope",
    "FileStatus",
    "FindingPlace",
    "Hunk",
    "PatchPlace",
    "Span",
    "Unplaceable",
    "ci_base",
    "diff_scope",
    "place_patch",
    "resolve",
]
