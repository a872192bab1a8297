"""Budgets: `limits.max_cost_usd` and `limits.max_tokens`.

Before each model call its worst case (the prompt, counted or estimated, plus the whole
`max_output_tokens`; its cost at the route's price, or for a self-hosted model the whole timeout
at the provider's hourly rate) is reserved; after the call the reservation is settled with what
the call really used. A call whose worst case would overrun the budget is not made: the budget is
then exhausted for the rest of the run, calls already running finish, no new call starts, and the
node pauses so that `orchestrator resume` with a larger budget can go on (exit 4).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from orchestrator.errors import BudgetExceeded


@dataclass
class Reservation:
    tokens: int
    cost: float


@dataclass
class Budget:
    max_cost_usd: float | None = None
    max_tokens: int | None = None
    spent_tokens: int = 0
    spent_cost: float = 0.0
    reserved_tokens: int = 0
    reserved_cost: float = 0.0
    exhausted: str | None = None  # why no further call may start
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def active(self) -> bool:
        return self.max_tokens is not None or self.max_cost_usd is not None

    def reserve(self, label: str, tokens: int, cost: float) -> Reservation:
        """Reserve a call's worst case, or raise BudgetExceeded (and stay exhausted)."""
        with self.lock:
            if self.exhausted:
                raise BudgetExceeded(f"budget exhausted: {self.exhausted}")
            if self.max_tokens is not None and self.spent_tokens + self.reserved_tokens + tokens > self.max_tokens:
                self.exhausted = (
                    f"a call to {label} could use {tokens} tokens; {self.spent_tokens} of limits.max_tokens "
                    f"{self.max_tokens} are spent and {self.reserved_tokens} reserved"
                )
                raise BudgetExceeded(f"budget exhausted: {self.exhausted}")
            if self.max_cost_usd is not None and self.spent_cost + self.reserved_cost + cost > self.max_cost_usd:
                self.exhausted = (
                    f"a call to {label} could cost ${cost:.4f}; ${self.spent_cost:.4f} of limits.max_cost_usd "
                    f"${self.max_cost_usd:.2f} is spent and ${self.reserved_cost:.4f} reserved"
                )
                raise BudgetExceeded(f"budget exhausted: {self.exhausted}")
            self.reserved_tokens += tokens
            self.reserved_cost += cost
        return Reservation(tokens, cost)

    def settle(self, reservation: Reservation, tokens: int, cost: float) -> None:
        with self.lock:
            self.reserved_tokens -= reservation.tokens
            self.reserved_cost -= reservation.cost
            self.spent_tokens += tokens
            self.spent_cost += cost
