"""The model catalog: sovereign model families, where they come from, and how to reach them.

The data lives in `catalog.yaml` beside this module. A model reference in a spec is either a
route (`provider/model`, e.g. `ollama/qwen3:8b`) or a catalog id (`deepseek-r1`) that resolves
to the entry's first route.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.catalog.serving import Gateway, Pinning, Serving, serving_of
from orchestrator.spec import close_match
from orchestrator.spec._serving import ServingFacts, ServingSpec

BuiltinKind = Literal["local", "ollama", "openai", "anthropic"]  # the kinds the catalog's own providers use
DEFAULT_CONTEXT_WINDOW = 8192  # assumed for models the catalog does not know


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Price(_Strict):
    """USD per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)


class RouteEntry(_Strict):
    provider: str
    model: str
    price: Price | None = None
    serving: ServingFacts | None = None  # where this route serves, when it differs from its provider's


class ModelEntry(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.\-]*$")
    name: str
    lab: str
    country: str = Field(pattern=r"^[A-Z]{2}$")
    license: str
    open_weights: bool
    strengths: tuple[str, ...] = ()
    context_window: int | None = None
    routes: tuple[RouteEntry, ...] = ()
    notes: str | None = None
    edit_format: Literal["diff", "replace"] | None = None  # how it writes patches best (default: diff)


class GatewayEntry(_Strict):
    """A provider that routes requests on (to upstream providers, or to regions), with the hook
    that pins a request where a rule allows and the page that documents it."""

    hook: str
    source: str
    upstreams: dict[str, ServingFacts] = Field(default_factory=dict)
    regional: dict[str, str] = Field(default_factory=dict)  # region -> base URL that stays in it
    models: tuple[str, ...] = ()  # globs of the models that accept the pin (empty: every model)

    def record(self) -> Gateway:
        return Gateway(
            hook=self.hook,
            source=self.source,
            upstreams=tuple((name, serving_of(facts, "catalog")) for name, facts in sorted(self.upstreams.items())),
            regional=tuple(sorted(self.regional.items())),
            models=self.models,
        )


class ProviderEntry(_Strict):
    kind: BuiltinKind
    base_url: str | None = None
    api_key_env: str | None = None
    hosts: tuple[str, ...] = ()
    max_concurrency: int | None = Field(default=None, ge=1)
    compact_output: bool = False
    structured_output: Literal["json_schema", "grammar", "json_object"] | None = None  # an endpoint's one mode
    serving: ServingSpec | None = None  # where it serves inference, as the vendor documents it
    gateway: GatewayEntry | None = None  # it routes on: a hook may pin each request


class CatalogFile(_Strict):
    version: Literal[1]
    providers: dict[str, ProviderEntry]
    models: tuple[ModelEntry, ...]


@dataclass(frozen=True)
class Route:
    """A concrete way to reach one model: provider name and the provider's model name."""

    provider: str
    model: str
    catalog_id: str | None = None
    context_window: int = DEFAULT_CONTEXT_WINDOW
    price: Price | None = None
    edit_format: str | None = None  # the catalog's edit format for this model (roles may override it)
    serving: Serving | None = None  # the catalog's serving facts of this route, when not its provider's
    pin: Pinning | None = None  # what its requests carry to be served where the policy allows

    @property
    def ref(self) -> str:
        return f"{self.provider}/{self.model}"


class UnknownModel(ValueError):
    """A model reference that is neither a route of a known provider nor a catalog id."""


class Catalog:
    def __init__(self, data: CatalogFile) -> None:
        self.providers = data.providers
        self.models = data.models
        self._by_id = {entry.id: entry for entry in data.models}
        self._by_route = {
            (route.provider, route.model): (entry, route) for entry in data.models for route in entry.routes
        }

    def get(self, model_id: str) -> ModelEntry | None:
        return self._by_id.get(model_id)

    def entry_for(self, route: Route) -> ModelEntry | None:
        if route.catalog_id:
            return self._by_id.get(route.catalog_id)
        found = self._by_route.get((route.provider, route.model))
        return found[0] if found else None

    def resolve(self, ref: str, providers: set[str] | None = None) -> Route:
        """Turn `provider/model` or a catalog id into a Route.

        `providers` is the set of provider names known to the run (catalog defaults plus the
        spec's own); a prefix that names one of them makes the reference a route.
        """
        known = set(self.providers) | (providers or set())
        ref = ref.strip()
        prefix, sep, rest = ref.partition("/")
        if sep and prefix in known:
            if not rest:
                raise UnknownModel(f"'{ref}' names provider '{prefix}' but no model")
            found = self._by_route.get((prefix, rest))
            if found:
                entry, route_entry = found
                return self._route(entry, route_entry)
            return Route(provider=prefix, model=rest)
        found_entry = self._by_id.get(ref)
        if found_entry is not None:
            usable = [route for route in found_entry.routes if route.provider in known]
            if not usable:
                raise UnknownModel(f"catalog model '{ref}' has no route to a configured provider")
            return self._route(found_entry, usable[0])
        if sep:
            hint = close_match(prefix, known)
            raise UnknownModel(f"unknown provider '{prefix}' in model '{ref}'{hint}")
        hint = close_match(ref, list(self._by_id))
        raise UnknownModel(f"unknown model '{ref}'{hint}; use a catalog id or provider/model")

    @staticmethod
    def _route(entry: ModelEntry, route: RouteEntry) -> Route:
        return Route(
            provider=route.provider,
            model=route.model,
            catalog_id=entry.id,
            context_window=entry.context_window or DEFAULT_CONTEXT_WINDOW,
            price=route.price,
            edit_format=entry.edit_format,
            serving=serving_of(route.serving, "catalog") if route.serving is not None else None,
        )

    def filter(
        self,
        *,
        country: str | None = None,
        strength: str | None = None,
        open_weights: bool | None = None,
        provider: str | None = None,
    ) -> list[ModelEntry]:
        out = []
        for entry in self.models:
            if country and entry.country != country.upper():
                continue
            if strength and strength.lower() not in entry.strengths:
                continue
            if open_weights is not None and entry.open_weights != open_weights:
                continue
            if provider and all(route.provider != provider for route in entry.routes):
                continue
            out.append(entry)
        return out


@cache
def load_catalog() -> Catalog:
    """The catalog shipped in the package (read once per process)."""
    from ruamel.yaml import YAML

    text = resources.files("orchestrator.catalog").joinpath("catalog.yaml").read_text(encoding="utf-8")
    return Catalog(CatalogFile.model_validate(YAML(typ="safe").load(text)))
