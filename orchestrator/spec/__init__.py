"""What users write: spec files, graph files and roles (pydantic + YAML only; calls nothing).

Every problem in a file is reported as `file:line: field: message` (a SpecError, exit 2).
"""

from orchestrator.spec._agentic import (
    READ_ONLY_TOOLS,
    TOOLS,
    CheckSpec,
    EditFormat,
    McpServerSpec,
    SandboxMode,
    ToolName,
    VerifySpec,
    mcp_server_of,
    unknown_server,
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
    "McpServerSpec",
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
    "mcp_server_of",
    "read_data",
    "spec_json_schema",
    "unknown_server",
    "validate_document",
    "worker_roles",
]
