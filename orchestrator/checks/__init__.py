"""Checks: the project's own commands judging proposed patches. Scratch copies of the workspace
(the workspace itself is only read), the sandbox that fails closed (bubblewrap: writes only in the
copy and a private /tmp, no network), the verifier (baseline once per run, before/after per check
and patch, every verified patch together) and search/replace edits turned into unified diffs.
Imports no LangChain: `orchestrator verify` runs without any model library."""

from orchestrator.checks._edits import Edit, EditError, EditProblem, apply_edits, edits_to_diffs, unified_diff
from orchestrator.checks._patch import apply_patch, escapes, git, header_paths, rejection, unsafe_path
from orchestrator.checks._records import (
    CheckOutcome,
    CheckRun,
    CheckStatus,
    Combined,
    Conflict,
    PatchVerdict,
    SandboxInfo,
    Verdict,
    VerificationReport,
)
from orchestrator.checks._sandbox import Sandbox, bubblewrap_problem, find_sandbox, sandbox_mode
from orchestrator.checks._scratch import copied_paths, leftovers, remove_leftovers, shared_paths
from orchestrator.checks._verifier import ChecksRefused, Memo, Verifier

__all__ = [
    "CheckOutcome",
    "CheckRun",
    "CheckStatus",
    "ChecksRefused",
    "Combined",
    "Conflict",
    "Edit",
    "EditError",
    "EditProblem",
    "Memo",
    "PatchVerdict",
    "Sandbox",
    "SandboxInfo",
    "Verdict",
    "VerificationReport",
    "Verifier",
    "apply_edits",
    "apply_patch",
    "bubblewrap_problem",
    "copied_paths",
    "edits_to_diffs",
    "escapes",
    "find_sandbox",
    "git",
    "header_paths",
    "leftovers",
    "rejection",
    "remove_leftovers",
    "sandbox_mode",
    "shared_paths",
    "unified_diff",
    "unsafe_path",
]
