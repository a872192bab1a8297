"""The one exception tree of the orchestrator.

Every error a user can cause or meet carries its exit code and a hint that says what to do
next. Only the CLI prints and exits; library code raises these.

    OrchestratorError                 exit 1  (never raised bare)
    ├── SpecError                     exit 2  a spec, graph or --set value is wrong
    │   └── ReplayMissError           exit 2  (reserved: a replayed call was not recorded)
    ├── ProviderError                 exit 3  a model call failed
    │   ├── ProviderUnavailable       exit 3  connection refused, timeout, 5xx, 429
    │   ├── ProviderCooledDown        exit 3  skipped: kept failing earlier in the run
    │   ├── ProviderConfigError       exit 3  401/403, unknown model, missing API key
    │   └── StructuredOutputError     exit 3  the model's output did not validate
    ├── BudgetExceeded                exit 4  max_cost_usd or max_tokens reached
    ├── PolicyError                   exit 5  the policy leaves a role without a model
    └── Interrupted                   exit 130 (SIGINT) or 143 (SIGTERM)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class OrchestratorError(Exception):
    """Base of every error the orchestrator raises on purpose."""

    exit_code = 1
    hint = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file: where it is and what is wrong."""

    file: str
    line: int | None
    field: str
    message: str

    def render(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class SpecError(OrchestratorError):
    """The spec, a graph file or a command-line override is invalid. Nothing was sent."""

    exit_code = 2
    hint = "fix the spec and run `orchestrator validate SPEC` again"

    def __init__(self, problems: list[Problem] | str, *, hint: str | None = None) -> None:
        if isinstance(problems, str):
            problems = [Problem(file="", line=None, field="", message=problems)]
        self.problems: list[Problem] = problems
        lines = [p.render().lstrip(": ") for p in problems]
        super().__init__("\n".join(lines), hint=hint)


class ProviderError(OrchestratorError):
    """A model provider failed. `kind` is the classification used for fallback decisions."""

    exit_code = 3
    kind = "provider"
    retryable = False

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


class ProviderCooledDown(ProviderError):
    kind = "cooldown"
    hint = "the provider kept failing earlier in this run and was cooled down"


class ProviderConfigError(ProviderError):
    kind = "config"
    hint = "check the model name, the provider's base_url and the API key environment variable"


class StructuredOutputError(ProviderError):
    kind = "invalid_output"
    hint = "the model could not produce the required structure; try a larger model"


class CheckpointError(OrchestratorError):
    """The checkpoint database cannot be opened (down, refused, wrong password, unwritable)."""

    exit_code = 3
    hint = "check the --checkpoint location; a Postgres password comes from the URL, PGPASSWORD or ~/.pgpass"


class BudgetExceeded(OrchestratorError):
    exit_code = 4
    hint = "raise limits.max_cost_usd or limits.max_tokens and resume the run"


class PolicyError(OrchestratorError):
    exit_code = 5
    hint = "allow another model for the role or relax the policy"


class Interrupted(OrchestratorError):
    """The run was stopped by a signal; `outcome` holds what finished (outputs are written)."""

    exit_code = 130
    hint = "the outputs hold the subtasks that finished"

    def __init__(self, message: str, *, outcome: Any = None, signal_name: str = "SIGINT") -> None:
        super().__init__(message)
        self.outcome = outcome
        if signal_name == "SIGTERM":
            self.exit_code = 143  # 128 + SIGTERM, as shells report it
