"""The one exception tree of the orchestrator, and the one table of exit codes.

Every error a user can cause or meet carries its exit status and a hint that says what to do
next. Only the CLI prints and exits; library code raises these and returns ExitStatus values.

    OrchestratorError                 (never raised bare)
    ├── SpecError                     2    a spec, graph, plugin or --set value is wrong
    │   ├── NoCheckpoint              2    `resume` of a run that left no checkpoint
    │   └── PluginError               2    a provider plugin failed to load
    ├── ProviderError                 3    a model call failed
    │   ├── ProviderUnavailable       3    connection refused, timeout, 5xx, 429
    │   │   └── ProviderTimeout       3    a call ran past timeout_s, stalled, or waited too long
    │   ├── ProviderCooledDown        3    skipped: kept failing earlier in the run
    │   ├── ProviderConfigError       3    401/403, unknown model, missing API key
    │   ├── StructuredOutputError     3    the model's output did not validate
    │   ├── ResponseTooLarge          3    the answer was larger than limits.max_response_bytes
    │   ├── ResidencyRefused          5    the answer reports it was served where the policy forbids
    │   └── NotRecorded               3    a replayed call is not in the recording
    ├── CheckpointError               3    the checkpoint database cannot be opened
    ├── PublishError                  3    `publish`: the forge's API refused or failed a request
    ├── StateError                    3    its own state cannot be written (disk full, read-only)
    ├── BudgetExceeded                4    max_cost_usd or max_tokens reached
    ├── PolicyError                   5    the policy leaves a role without a model
    └── Interrupted                   130 (SIGINT) or 143 (SIGTERM); what finished is kept
"""

from __future__ import annotations

import errno
import re
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Literal

RunStatus = Literal["ok", "quality_gate", "provider_failure", "policy_refused", "budget_exceeded", "interrupted"]


class ExitStatus(IntEnum):
    """Exit codes, the CI contract (README, PRODUCT.md). When several apply, `precedence` wins."""

    OK = 0  # the workflow finished; no finding at or above fail_on
    QUALITY_GATE = 1  # the workflow finished; a finding at or above fail_on
    USAGE = 2  # usage or spec error: nothing was sent to any model
    # a subtask failed on every model of its chain (or the checkpoint store is down, or the
    # orchestrator's own state cannot be written)
    PROVIDER_FAILURE = 3
    BUDGET_EXCEEDED = 4  # the budget would have been overrun; the run is paused and resumable
    POLICY = 5  # the policy leaves no allowed model for a role, or refused every answer of a call
    INTERRUPTED = 130  # Ctrl-C (SIGINT); the run is checkpointed
    TERMINATED = 143  # SIGTERM (128 + 15, as shells report it); the run is checkpointed

    @classmethod
    def of_run(cls, status: RunStatus, signal_name: str | None = None) -> ExitStatus:
        """The exit status of a finished (or stopped) run, from its result status."""
        if status == "interrupted":
            return cls.TERMINATED if signal_name == "SIGTERM" else cls.INTERRUPTED
        return _BY_STATUS[status]

    @classmethod
    def precedence(cls) -> tuple[ExitStatus, ...]:
        """The order in which codes win when several apply (first wins)."""
        return (
            cls.USAGE,
            cls.POLICY,
            cls.INTERRUPTED,
            cls.TERMINATED,
            cls.BUDGET_EXCEEDED,
            cls.PROVIDER_FAILURE,
            cls.QUALITY_GATE,
            cls.OK,
        )


_BY_STATUS: dict[str, ExitStatus] = {
    "ok": ExitStatus.OK,
    "quality_gate": ExitStatus.QUALITY_GATE,
    "provider_failure": ExitStatus.PROVIDER_FAILURE,
    "policy_refused": ExitStatus.POLICY,
    "budget_exceeded": ExitStatus.BUDGET_EXCEEDED,
}


class OrchestratorError(Exception):
    """Base of every error the orchestrator raises on purpose."""

    exit_code: ExitStatus = ExitStatus.QUALITY_GATE
    hint = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint

    def __str__(self) -> str:
        return self.message


# Control characters (a newline that starts a forged `::error` line in a CI log, an ANSI escape
# that rewrites a terminal) and bidirectional overrides (text that reads otherwise than it is).
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: object) -> str:
    """Text from a spec, a repository or a model made safe for one line of a terminal or a CI log:
    every control character and bidirectional override shown as an escape (`\\n`, `\\x1b`)."""
    return _UNPRINTABLE.sub(_escape, str(text))


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char) or (
        f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"
    )


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file: where it is and what is wrong."""

    file: str
    line: int | None
    field: str
    message: str

    def render(self) -> str:
        """One line (whatever the file put in its keys and values)."""
        where = printable(self.file if self.line is None else f"{self.file}:{self.line}")
        message = printable(self.message)
        return f"{where}: {printable(self.field)}: {message}" if self.field else f"{where}: {message}"


class SpecError(OrchestratorError):
    """The spec, a graph file or a command-line override is invalid. Nothing was sent."""

    exit_code = ExitStatus.USAGE
    hint = "fix the spec and run `orchestrator validate SPEC` again"

    def __init__(self, problems: list[Problem] | str, *, hint: str | None = None) -> None:
        if isinstance(problems, str):
            problems = [Problem(file="", line=None, field="", message=problems)]
        self.problems: list[Problem] = problems
        lines = [p.render().lstrip(": ") for p in problems]
        super().__init__("\n".join(lines), hint=hint)


class NoCheckpoint(SpecError):
    hint = "list the runs with `orchestrator runs`"


class PluginError(SpecError):
    hint = "fix or uninstall the plugin, or switch it off with ORCHESTRATOR_DISABLE_PLUGINS=NAME"


class ProviderError(OrchestratorError):
    """A model provider failed. `kind` is the classification used for fallback decisions."""

    exit_code = ExitStatus.PROVIDER_FAILURE
    kind = "provider"
    retryable = False
    # the error says the model is broken (not merely slow): it counts towards a cooldown
    breaks = True

    def __init__(
        self,
        message: str,
        *,
        model: str = "",
        hint: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.model = model
        self.status = status
        self.retry_after = retry_after


class ProviderUnavailable(ProviderError):
    kind = "unavailable"
    retryable = True
    hint = "is the provider running and reachable? check base_url and the network"


class ProviderTimeout(ProviderUnavailable):
    """A call that took too long: served past `timeout_s`, no new token for `stall_s`, or queued
    past `queue_wait_s` behind other calls of a model on this machine. It carries where the time
    went. A timeout of a model on this machine (`local`) says the machine is busy, not that the
    model is broken: it never cools the model down; a remote model's still does."""

    kind = "timeout"
    hint = "the model took too long; on a busy machine raise limits.timeout_s (it counts from when the model starts)"

    def __init__(
        self,
        message: str,
        *,
        model: str = "",
        local: bool = False,
        phase: str = "serving",
        queued_s: float = 0.0,
        served_s: float = 0.0,
        tokens: int = 0,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, model=model, status=status, retry_after=retry_after)
        self.local = local
        # queued | prompt | generating | serving (a model that does not say which)
        self.phase = phase
        self.queued_s = queued_s
        self.served_s = served_s
        self.tokens = tokens
        self.breaks = not local


class ProviderCooledDown(ProviderError):
    kind = "cooldown"
    hint = "the provider kept failing earlier in this run and was cooled down"


class ProviderConfigError(ProviderError):
    kind = "config"
    hint = "check the model name, the provider's base_url and the API key environment variable"


class StructuredOutputError(ProviderError):
    kind = "invalid_output"
    hint = "the model could not produce the required structure; try a larger model"


class ResponseTooLarge(ProviderError):
    kind = "too_large"
    hint = "the provider answered more than limits.max_response_bytes; another model is tried"


class ResidencyRefused(ProviderError):
    """The answer reports a provider or geography outside the serving rules it was pinned to: it
    is discarded (never used, never retried elsewhere in silence), and `served` says what it reported."""

    kind = "policy"
    exit_code = ExitStatus.POLICY
    hint = "the answer was served outside the serving rules and discarded; another model of the chain may answer"
    served: dict[str, Any] | None = None


class NotRecorded(ProviderError):
    kind = "not_recorded"
    hint = "the workflow asked for a call that is not in the recording: record it again with --record"


class CheckpointError(OrchestratorError):
    """The checkpoint database cannot be opened (down, refused, wrong password, unwritable)."""

    exit_code = ExitStatus.PROVIDER_FAILURE
    hint = "check the --checkpoint location; a Postgres password comes from the URL, PGPASSWORD or ~/.pgpass"


class PublishError(OrchestratorError):
    """`orchestrator publish`: the forge (GitHub, GitLab) refused or failed a request."""

    exit_code = ExitStatus.PROVIDER_FAILURE
    hint = "check the token's permissions (pull-requests: write; GitLab: api scope) and the API URL"

    def __init__(self, message: str, *, status: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


# the errors of a storage that cannot take a write: full, over quota, over a file-size limit, read-only
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})
# what SQLite says for the same (its errors are not OSErrors)
_SQLITE_STORAGE = ("full", "disk i/o", "readonly", "read-only", "unable to open database file")


class StateError(OrchestratorError):
    """The orchestrator could not write its own state (the run ledger, a checkpoint, the result
    cache, a recording, a scratch copy, the outputs): a full disk, a quota, a read-only folder.
    What finished is kept (checkpointed, or the run's result stored)."""

    exit_code = ExitStatus.PROVIDER_FAILURE
    hint = (
        "free space on that disk (or make it writable), or point ORCHESTRATOR_DATA_DIR, XDG_STATE_HOME "
        "or --output-dir elsewhere"
    )

    def __init__(self, message: str, *, hint: str | None = None, outcome: Any = None) -> None:
        super().__init__(message, hint=hint)
        self.outcome = outcome  # a run that finished but whose outputs could not be written

    @classmethod
    def of(cls, exc: BaseException, doing: str, *, hint: str | None = None, outcome: Any = None) -> StateError:
        """The error for `exc`, met while doing something (`doing`: "write the run's checkpoint")."""
        return cls(f"could not {doing}: {storage_message(exc)}", hint=hint, outcome=outcome)


def storage_failure(exc: BaseException) -> bool:
    """Whether `exc` says a storage cannot take a write (an OSError of STORAGE_ERRNOS, or SQLite's
    "database or disk is full", "disk I/O error", "attempt to write a readonly database", ...).
    Such an error is never a model's: it stops the run rather than count as a failed call."""
    if isinstance(exc, OSError):
        return exc.errno in STORAGE_ERRNOS
    if type(exc).__module__ == "sqlite3":
        text = str(exc).lower()
        return any(words in text for words in _SQLITE_STORAGE)
    return False


def storage_message(exc: BaseException) -> str:
    """`exc` in a few words: what went wrong, and on which file when it is known."""
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or type(exc).__name__}{where}"
    return f"{type(exc).__name__}: {exc}"


class BudgetExceeded(OrchestratorError):
    exit_code = ExitStatus.BUDGET_EXCEEDED
    hint = "raise limits.max_cost_usd or limits.max_tokens and resume the run"


class PolicyError(OrchestratorError):
    exit_code = ExitStatus.POLICY
    hint = "allow another model for the role or relax the policy"


class Interrupted(OrchestratorError):
    """The run was stopped by a signal; `outcome` holds what finished (outputs are written)."""

    exit_code = ExitStatus.INTERRUPTED
    hint = "the outputs hold the subtasks that finished"

    def __init__(self, message: str, *, outcome: Any = None, signal_name: str = "SIGINT") -> None:
        super().__init__(message)
        self.outcome = outcome
        self.signal_name = signal_name
        self.exit_code = ExitStatus.of_run("interrupted", signal_name)
