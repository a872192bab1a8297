"""The model catalog (sovereign model families: lab, country, license, routes, prices) and the
providers a run may use."""

from orchestrator.catalog._catalog import (
    DEFAULT_CONTEXT_WINDOW,
    Catalog,
    ModelEntry,
    Price,
    ProviderEntry,
    Route,
    UnknownModel,
    load_catalog,
)
from orchestrator.catalog.provider import ProviderConfig, is_loopback

__all__ = [
    "DEFAULT_CONTEXT_WINDOW",
    "Catalog",
    "ModelEntry",
    "Price",
    "ProviderConfig",
    "ProviderEntry",
    "Route",
    "UnknownModel",
    "is_loopback",
    "load_catalog",
]
