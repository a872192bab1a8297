"""Where a route serves inference, as a file declares it (the catalog, a spec's or the operator's
`providers.X.serving`): countries and regions, who serves it, how long prompts are kept and
whether they train models. Separate from the lab's country (`allow_countries`): Qwen's weights
served in Frankfurt are served in DE whatever the lab's country is.

Unknown is the default of every fact, and an unknown fact never satisfies a rule that asks for it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field

from orchestrator.spec._document import Strict

CountryCode = Annotated[
    str, BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v), Field(pattern=r"^[A-Z]{2}$")
]
RegionName = Annotated[
    str, BeforeValidator(lambda v: v.lower() if isinstance(v, str) else v), Field(pattern=r"^[a-z][a-z0-9-]{1,31}$")
]
# days prompts are kept: "none" (zero retention), a number of days, or "unknown"
Retention = Literal["none", "unknown"] | Annotated[int, Field(ge=0, le=36_500)]


class ServingFacts(Strict):
    """Where one endpoint (a route, a host, a gateway's upstream provider) serves inference."""

    countries: list[CountryCode] | None = Field(
        default=None, max_length=64, description="ISO 3166 codes of where inference runs (unknown when absent)"
    )
    regions: list[RegionName] | None = Field(
        default=None, max_length=16, description="regions of where inference runs: eu, europe, us, ..."
    )
    provider: str | None = Field(default=None, max_length=64, description="who runs the servers")
    retention: Retention = Field(default="unknown", description="how long prompts are kept: none, days, unknown")
    trains_on_data: bool | Literal["unknown"] = Field(default="unknown", description="whether prompts train models")
    source: str | None = Field(default=None, max_length=512, description="the page that documents these facts")


class ServingSpec(ServingFacts):
    """A provider's serving facts; a pool's hosts may each have their own (`hosts`)."""

    hosts: dict[Annotated[str, Field(max_length=253)], ServingFacts] = Field(
        default_factory=dict, max_length=32, description="host of base_urls -> where that host serves"
    )
    upstreams: dict[Annotated[str, Field(max_length=64)], ServingFacts] = Field(
        default_factory=dict,
        max_length=64,
        description="a gateway (OpenRouter): its upstream provider -> where it serves (your contract with it)",
    )

    @property
    def has_facts(self) -> bool:
        """It says something of the provider itself (not only of its hosts or upstreams)."""
        return (
            bool(self.countries or self.regions or self.provider or self.retention != "unknown")
            or self.trains_on_data != "unknown"
        )
