"""What users write: spec files, graph files and roles (pydantic + YAML only; calls nothing).

Every problem in a file is reported as `file:line: field: message` (a SpecError, exit 2).
"""

from orchestrator.spec._agentic import (
    READ_ONLY_TOOLS,
    TOOLS,
    CheckSpec,
    EditFormat,
    SandboxMode,
    ToolName,
    VerifySpec,
)
from orchestrator.spec._document import Document, Loc, Strict, close_match, load_yaml, validate_document
from orchestrator.spec._resources import read_data
from orchestrator.spec._spec import (
    DATA_CLASSES,
    DataClass,
    LimitsSpec,
    LoadedSpec,
    PolicySpec,
    PriceSpec,
    ProviderSpec,
    RulesSpec,
    Spec,
    TaskSpec,
    load_spec,
    spec_json_schema,
)
from orchestrator.spec.roles import AGGREGATE, PLANNER, Role, RoleSpec, builtin_roles, worker_roles

__all__ = [
    "AGGREGATE",
    "DATA_CLASSES",
    "PLANNER",
    "READ_ONLY_TOOLS",
    "TOOLS",
    "CheckSpec",
    "DataClass",
    "Document",
    "EditFormat",
    "LimitsSpec",
    "LoadedSpec",
    "Loc",
    "PolicySpec",
    "PriceSpec",
    "ProviderSpec",
    "Role",
    "RoleSpec",
    "RulesSpec",
    "SandboxMode",
    "Spec",
    "Strict",
    "TaskSpec",
    "ToolName",
    "VerifySpec",
    "builtin_roles",
    "close_match",
    "load_spec",
    "load_yaml",
    "read_data",
    "spec_json_schema",
    "validate_document",
    "worker_roles",
]
