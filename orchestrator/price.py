"""What calls cost: a route's token price (from the catalog or the spec's `prices`), or, for a
self-hosted model without one, its model time at the provider's `usd_per_hour`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.catalog import Route
    from orchestrator.errors import Problem
    from orchestrator.pool import BoundModel
    from orchestrator.registry import ProviderConfig
    from orchestrator.spec import LoadedSpec


def cost_basis(bound: BoundModel) -> str | None:
    """How a call is costed: "tokens" (a price), "time" (self-hosted, by the hour), or None."""
    if bound.route.price is not None:
        return "tokens"
    return "time" if bound.self_hosted else None


def price_call(bound: BoundModel, tokens_in: int, tokens_out: int, seconds: float) -> float | None:
    """USD for one call: the route's token price (catalog or spec `prices`); for a self-hosted
    model without one, its model time at the provider's `usd_per_hour` (default 0); None when
    an API route has no known price."""
    price = bound.route.price
    if price is not None:
        return (tokens_in * price.input + tokens_out * price.output) / 1_000_000
    if bound.self_hosted:
        return seconds / 3600 * bound.config.usd_per_hour
    return None


def check_prices(
    loaded: LoadedSpec, chains: list[list[Route]], providers: dict[str, ProviderConfig], problems: list[Problem]
) -> None:
    """A cost budget needs a price for every API model that may be called."""
    if loaded.spec.limits.max_cost_usd is None:
        return
    unpriced = sorted(
        {
            r.ref
            for chain in chains
            for r in chain
            if r.price is None
            and not (providers[r.provider].kind in ("local", "ollama") or providers[r.provider].is_local)
        }
    )
    for ref in unpriced:
        message = f"no known price for {ref}, so max_cost_usd cannot be enforced; add prices.{ref}: {{input, output}}"
        problems.append(loaded.problem(("limits", "max_cost_usd"), message))
