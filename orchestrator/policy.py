"""Data-sovereignty policy, applied when a role's chain of models is resolved.

A model the policy does not allow is removed from the chain with the reason, so a fallback can
never route around the policy. `confidential` data goes only to models served from this machine
(the embedded model or a loopback host).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.catalog import ModelEntry, Route
    from orchestrator.registry import ProviderConfig
    from orchestrator.spec import PolicySpec


def refusal(route: Route, entry: ModelEntry | None, provider: ProviderConfig, policy: PolicySpec) -> str | None:
    """Why the policy refuses this route, or None when it is allowed."""
    if policy.data_class == "confidential" and not provider.is_local:
        return f"data_class confidential allows only local models; {provider.name} is served from {provider.host}"
    if policy.allow_countries is not None:
        allowed = {c.upper() for c in policy.allow_countries}
        if entry is None:
            return "country unknown (model not in the catalog) and allow_countries is set"
        if entry.country not in allowed:
            return f"country {entry.country} not in allow_countries"
    if entry is not None and entry.country in {c.upper() for c in policy.deny_countries}:
        return f"country {entry.country} is in deny_countries"
    if policy.open_weights_only:
        if entry is None:
            return "open weights unknown (model not in the catalog) and open_weights_only is set"
        if not entry.open_weights:
            return "weights are not open and open_weights_only is set"
    return None
