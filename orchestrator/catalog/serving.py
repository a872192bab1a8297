"""Serving facts as a run holds them (where a route runs inference, who runs it, retention,
training), a gateway's upstream providers and regional endpoints, and the pinning a request
carries. Plain frozen records: the policy decides with them, the providers send them.

Regions: a country of the EU or the EEA is in `eu` and `europe`; GB and CH are in `europe` only
(as OpenRouter's European endpoint counts them); US is in `us`. A region declared without
countries satisfies a rule naming it or its parent (`eu` is inside `europe`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from orchestrator.spec._serving import ServingFacts, ServingSpec

EU_EEA = frozenset(
    [
        "AT",
        "BE",
        "BG",
        "CY",
        "CZ",
        "DE",
        "DK",
        "EE",
        "ES",
        "FI",
        "FR",
        "GR",
        "HR",
        "HU",
        "IE",
        "IT",
        "LT",
        "LU",
        "LV",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SE",
        "SI",
        "SK",
        "IS",
        "LI",
        "NO",
    ]
)
REGION_PARENT = {"eu": "europe"}


def country_regions(country: str) -> frozenset[str]:
    """The regions a country is in (none for a country this table does not place)."""
    if country in EU_EEA:
        return frozenset({"eu", "europe"})
    if country in ("GB", "CH"):
        return frozenset({"europe"})
    if country == "US":
        return frozenset({"us"})
    return frozenset()


@dataclass(frozen=True)
class Serving:
    """Where one endpoint serves inference; empty or None means unknown."""

    countries: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()
    provider: str | None = None
    retention_days: int | None = None  # 0: none kept; None: unknown
    trains_on_data: bool | None = None
    source: str | None = None  # the page that documents it
    origin: str = "catalog"  # catalog | spec | operator | this machine

    def in_regions(self, allowed: frozenset[str]) -> bool:
        """Every place it serves from is in one of the allowed regions (unknown: no)."""
        if self.countries:
            return all(country_regions(c) & allowed for c in self.countries)
        if self.regions:
            return all(r in allowed or REGION_PARENT.get(r) in allowed for r in self.regions)
        return False

    def where(self) -> str:
        """The place in words, for reports: `DE, FR`, `europe`, `this machine`, `unknown`."""
        if self.origin == "this machine":
            return "this machine"
        if self.countries:
            return ", ".join(sorted(self.countries))
        return ", ".join(sorted(self.regions)) or "unknown"

    def as_dict(self) -> dict[str, Any]:
        return {
            "countries": sorted(self.countries),
            "regions": sorted(self.regions),
            "provider": self.provider,
            "retention_days": self.retention_days,
            "trains_on_data": self.trains_on_data,
            "source": self.source,
            "origin": self.origin,
        }


THIS_MACHINE = Serving(provider="this machine", retention_days=0, trains_on_data=False, origin="this machine")


def serving_of(facts: ServingFacts, origin: str) -> Serving:
    """The record of facts as a file wrote them."""
    retention = facts.retention
    return Serving(
        countries=frozenset(facts.countries or ()),
        regions=frozenset(facts.regions or ()),
        provider=facts.provider,
        retention_days=0 if retention == "none" else (retention if isinstance(retention, int) else None),
        trains_on_data=facts.trains_on_data if isinstance(facts.trains_on_data, bool) else None,
        source=facts.source,
        origin=origin,
    )


def host_servings(spec: ServingSpec, origin: str) -> tuple[tuple[str, Serving], ...]:
    return tuple((host.lower(), serving_of(facts, origin)) for host, facts in sorted(spec.hosts.items()))


@dataclass(frozen=True)
class Gateway:
    """A provider that routes one model to several upstream providers (OpenRouter) or regions
    (Anthropic's inference geography), and the hook that pins a request to those a rule admits."""

    hook: str
    source: str
    upstreams: tuple[tuple[str, Serving], ...] = ()  # upstream provider name -> where it serves
    regional: tuple[tuple[str, str], ...] = ()  # region -> base URL that keeps requests in it
    models: tuple[str, ...] = ()  # glob patterns of the models that accept the pin (empty: all)


@dataclass(frozen=True)
class Pinning:
    """What a request carries so that it is served where the rule allows, and what its answer
    must report. `expect` is (field of the answer's serving report, values it may take); an empty
    tuple of values means the field must only be present."""

    hook: str
    rule: str  # the rule it satisfies, in words
    body: str = "{}"  # JSON: fields added to the request body
    base_url: str | None = None  # a regional endpoint that replaces the provider's
    expect: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def fields(self) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self.body)
        return found

    def as_dict(self) -> dict[str, Any]:
        return {
            "hook": self.hook,
            "rule": self.rule,
            "request": self.fields,
            "base_url": self.base_url,
            "expect": {key: list(values) for key, values in self.expect},
        }


def normal_name(name: str) -> str:
    """A provider name as slugs and display names compare (`Google Vertex` ~ `google-vertex`)."""
    return "".join(c for c in name.lower() if c.isalnum())
