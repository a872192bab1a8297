"""What calls cost: a route's token price (from the catalog or the spec's `prices`), or, for a
self-hosted model without one, its model time at the provider's `usd_per_hour`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.models.pool import BoundModel


def cost_basis(bound: BoundModel) -> str | None:
    """How a call is costed: "tokens" (a price), "time" (self-hosted, by the hour), or None."""
    if bound.route.price is not None:
        return "tokens"
    return "time" if bound.config.costed_by_time else None


def price_call(bound: BoundModel, tokens_in: int, tokens_out: int, seconds: float) -> float | None:
    """USD for one call: the route's token price (catalog or spec `prices`); for a self-hosted
    model without one, its model time at the provider's `usd_per_hour` (default 0); None when
    an API route has no known price."""
    price = bound.route.price
    if price is not None:
        return (tokens_in * price.input + tokens_out * price.output) / 1_000_000
    if bound.config.costed_by_time:
        return seconds / 3600 * bound.config.usd_per_hour
    return None
