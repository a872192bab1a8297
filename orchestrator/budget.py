"""Budgets: `limits.max_cost_usd` and `limits.max_tokens`.

Before each model call its worst case (the prompt, counted or estimated, plus the whole
`max_output_tokens`, at the route's price) is reserved; after the call the reservation is
settled with what the call really used. A call whose worst case would overrun the budget is not
made: the budget is then exhausted for the rest of the run, calls already running finish, no new
call starts, the partial report is written and the run exits 4.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from orchestrator.errors import BudgetExceeded

if TYPE_CHECKING:
    from orchestrator.catalog import Route


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

    def reserve(self, route: Route, prompt_tokens: int, max_output_tokens: int, self_hosted: bool) -> Reservation:
        # a priced route costs its price; an unpriced one is self-hosted (validation made sure)
        cost = 0.0 if route.price is None else self._cost(route, prompt_tokens, max_output_tokens)
        tokens = prompt_tokens + max_output_tokens
        with self.lock:
            if self.exhausted:
                raise BudgetExceeded(f"budget exhausted: {self.exhausted}")
            if self.max_tokens is not None and self.spent_tokens + self.reserved_tokens + tokens > self.max_tokens:
                self.exhausted = (
                    f"a call to {route.ref} could use {tokens} tokens; {self.spent_tokens} of limits.max_tokens "
                    f"{self.max_tokens} are spent and {self.reserved_tokens} reserved"
                )
                raise BudgetExceeded(f"budget exhausted: {self.exhausted}")
            if self.max_cost_usd is not None and self.spent_cost + self.reserved_cost + cost > self.max_cost_usd:
                self.exhausted = (
                    f"a call to {route.ref} could cost ${cost:.4f}; ${self.spent_cost:.4f} of limits.max_cost_usd "
                    f"${self.max_cost_usd:.2f} is spent and ${self.reserved_cost:.4f} reserved"
                )
                raise BudgetExceeded(f"budget exhausted: {self.exhausted}")
            self.reserved_tokens += tokens
            self.reserved_cost += cost
        return Reservation(tokens, cost)

    def settle(
        self, reservation: Reservation, route: Route, tokens_in: int, tokens_out: int, self_hosted: bool
    ) -> None:
        cost = 0.0 if route.price is None else self._cost(route, tokens_in, tokens_out)
        with self.lock:
            self.reserved_tokens -= reservation.tokens
            self.reserved_cost -= reservation.cost
            self.spent_tokens += tokens_in + tokens_out
            self.spent_cost += cost

    @staticmethod
    def _cost(route: Route, tokens_in: int, tokens_out: int) -> float:
        assert route.price is not None
        return (tokens_in * route.price.input + tokens_out * route.price.output) / 1_000_000
