"""The policy's one entry point for a run. Preparation builds one `RunPolicy` from the spec, the
operator and the catalog, and asks it, in this order, everything that decides what the run may do,
for whom and where:

1. `confine`: what the spec points at stays inside its repository (before any file is read);
2. `refusals`: pull-request mode and the operator's rules (hosts the spec introduces, Python
   graphs, checks and MCP servers the operator's patterns do not admit): exit 5;
3. `settle`: the operator's floor (their policy file and `--set policy.*`) and budget ceilings;
4. `file_class` and `resolver`: each file's data class, and the chain table under the rules of each;
5. `egress_refusals`: MCP servers' hosts at the highest class a role granted them may see;
6. `lines`, `sandboxed_servers`, `check_needs`: the effective rules and their sources, the servers
   run in the sandbox, and every role and node keeping a model at each class it may see.

Tracing (`--trace`, asked of a run, not of a spec) is judged by `orchestrator.policy.tracing`, the
keys and hosts of providers by `orchestrator.policy.trust`, an eval file's trust by
`orchestrator.policy.evaluation`, and what a call sends at run time by `_rules` and `egress`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrator.errors import PolicyError, Problem
from orchestrator.policy._rules import file_class
from orchestrator.policy.chains import ChainTable, Need, Resolver, check_needs
from orchestrator.policy.confine import confine
from orchestrator.policy.floor import PolicyLine, apply_ceilings, describe_policy, operator_floor, refusals
from orchestrator.policy.mcp import mcp_egress_refusals, sandboxed_servers

if TYPE_CHECKING:
    from orchestrator.catalog import Catalog, ProviderConfig
    from orchestrator.spec import LoadedSpec, Role
    from orchestrator.spec.graphfile import GraphDefinition
    from orchestrator.spec.operator import Operator, OperatorPolicy


@dataclass
class RunPolicy:
    loaded: LoadedSpec
    operator: Operator
    catalog: Catalog
    floor: OperatorPolicy | None = None  # the rules the spec cannot relax (set by `settle`)

    def confine(self, graph: GraphDefinition | None, problems: list[Problem]) -> None:
        """Problems (exit 2) for everything of the spec that points outside its repository."""
        confine(self.loaded, self.operator, graph, problems)

    def refusals(self, providers: dict[str, ProviderConfig]) -> list[str]:
        """What pull-request mode and the operator's rules refuse (exit 5), each naming its rule."""
        return refusals(self.loaded, self.operator, providers, self.catalog)

    def settle(self) -> OperatorPolicy | None:
        """The operator's floor, and their ceilings applied to the spec's limits and sandbox."""
        self.floor = operator_floor(self.loaded, self.operator)
        apply_ceilings(self.loaded, self.operator)
        return self.floor

    def file_class(self, path: str) -> str:
        return file_class(self.loaded.spec.policy, path, self.floor)

    def resolver(self, providers: dict[str, ProviderConfig], classes: list[str]) -> Resolver:
        """What turns the run's model references into its chain table, at every class in `classes`."""
        spec = self.loaded.spec
        return Resolver(self.catalog, providers, spec.policy, spec.prices, classes, self.floor)

    def egress_refusals(self, roles: dict[str, Role], file_classes: dict[str, str], base: str) -> list[str]:
        return mcp_egress_refusals(self.loaded, roles, file_classes, base, self.floor)

    def sandboxed_servers(self) -> list[str]:
        return sandboxed_servers(self.loaded, self.operator)

    def lines(self) -> list[PolicyLine]:
        """The run-level rules that hold, each with its source."""
        return describe_policy(self.loaded, self.floor, self.operator)

    def check_needs(self, table: ChainTable, needs: list[Need], lines: list[PolicyLine]) -> None:
        """PolicyError (exit 5) naming every role or node left without a model at a class it may
        see, and where the rules that refused came from."""
        try:
            check_needs(table, needs)
        except PolicyError as exc:
            sources = "; ".join(f"{line.field}: {json.dumps(line.value)} ({line.source})" for line in lines)
            raise PolicyError(f"{exc.message}\nthe rules: {sources}" if sources else exc.message) from None
