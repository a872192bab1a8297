"""A cost budget needs a price for every API model that may be called."""

from __future__ import annotations

from orchestrator.catalog import ProviderConfig, Route
from orchestrator.errors import Problem
from orchestrator.spec import LoadedSpec


def check_prices(
    loaded: LoadedSpec, chains: list[list[Route]], providers: dict[str, ProviderConfig], problems: list[Problem]
) -> None:
    if loaded.spec.limits.max_cost_usd is None:
        return
    unpriced = sorted(
        {r.ref for chain in chains for r in chain if r.price is None and not providers[r.provider].costed_by_time}
    )
    for ref in unpriced:
        message = f"no known price for {ref}, so max_cost_usd cannot be enforced; add prices.{ref}: {{input, output}}"
        problems.append(loaded.problem(("limits", "max_cost_usd"), message))
