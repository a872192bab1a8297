"""Everything between a node and a provider SDK: the provider registry, the run's model pool
(built on first use, limited, cooled down), answer contracts, budgets and costs.

Modules that import LangChain are public by their path and imported only when a run needs them
(validate must stay light): `chain` (the one retry layer and fallback chains), `cache` (the
result cache), `recording` (record and replay), `failure` (the classification table), `probe`
(`models --check`).
"""

from orchestrator.models.budget import Budget
from orchestrator.models.contract import Contract, ContractError, contract_for, merged_contract, restrict_files
from orchestrator.models.pool import BoundModel, ModelPool
from orchestrator.models.registry import (
    CallSettings,
    ProviderKind,
    ProviderTraits,
    RealModelsForbidden,
    ToolOffer,
    estimate_tokens,
    forbid_real_models,
    register_provider,
    registry,
)

__all__ = [
    "BoundModel",
    "Budget",
    "CallSettings",
    "Contract",
    "ContractError",
    "ModelPool",
    "ProviderKind",
    "ProviderTraits",
    "RealModelsForbidden",
    "ToolOffer",
    "contract_for",
    "estimate_tokens",
    "forbid_real_models",
    "merged_contract",
    "register_provider",
    "registry",
    "restrict_files",
]
