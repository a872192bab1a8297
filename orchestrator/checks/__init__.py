"""Checks: the project's own commands judging proposed patches. Scratch copies of the workspace
(the workspace itself is only read; in the sandbox the copy stands at its path, with the ignored
files the project needs), the sandbox that fails closed (bubblewrap: writes only in the copy and
a private /tmp, no network), the project's interpreter and the probe of where its packages import
from, the verifier (baseline once per run, before/after per check, per test and patch, the judge's
files put back, every verified patch together) and search/replace edits turned into unified
diffs. Imports no LangChain: `orchestrator verify` runs without any model library."""

from orchestrator.checks._edits import Edit, EditError, EditProblem, apply_edits, edits_to_diffs, unified_diff
from orchestrator.checks._interpreter import Interpreter, find_interpreter
from orchestrator.checks._junit import matching, named_tests, normalized
from orchestrator.checks._patch import apply_patch, escapes, git, header_paths, rejection, unsafe_path
from orchestrator.checks._protect import DEFAULT_PROTECT, Protection, command_files
from orchestrator.checks._records import (
    CheckOutcome,
    CheckRun,
    CheckStatus,
    Combined,
    Conflict,
    Environment,
    ImportedFrom,
    PatchVerdict,
    PerTestChanges,
    SandboxInfo,
    Verdict,
    VerificationReport,
)
from orchestrator.checks._sandbox import Sandbox, bubblewrap_problem, find_sandbox, sandbox_mode
from orchestrator.checks._scratch import copied_paths, leftovers, remove_leftovers, shared_paths
from orchestrator.checks._verifier import ChecksRefused, Memo, Verifier

__all__ = [
    "DEFAULT_PROTECT",
    "CheckOutcome",
    "CheckRun",
    "CheckStatus",
    "ChecksRefused",
    "Combined",
    "Conflict",
    "Edit",
    "EditError",
    "EditProblem",
    "Environment",
    "ImportedFrom",
    "Interpreter",
    "Memo",
    "PatchVerdict",
    "PerTestChanges",
    "Protection",
    "Sandbox",
    "SandboxInfo",
    "Verdict",
    "VerificationReport",
    "Verifier",
    "apply_edits",
    "apply_patch",
    "bubblewrap_problem",
    "command_files",
    "copied_paths",
    "edits_to_diffs",
    "escapes",
    "find_interpreter",
    "find_sandbox",
    "git",
    "header_paths",
    "leftovers",
    "matching",
    "named_tests",
    "normalized",
    "rejection",
    "remove_leftovers",
    "sandbox_mode",
    "shared_paths",
    "unified_diff",
    "unsafe_path",
]
