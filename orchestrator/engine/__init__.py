"""LangGraph: the graph state and the one typed call record, the run context nodes receive, the
node factories, and the compilation of YAML and Python graphs."""

from orchestrator.engine._compile import compile_graph
from orchestrator.engine._nodes import role_work, subtask_files
from orchestrator.engine._relevance import Priority
from orchestrator.engine.context import Executor, Progress, RunContext, SilentProgress
from orchestrator.engine.python_graph import GraphKit, build_python_graph, load_python_graph
from orchestrator.engine.state import (
    CHECKPOINT_TYPES,
    CallError,
    CallRecord,
    Hop,
    PatchCheck,
    PlanRecord,
    Record,
    RunState,
    Subtask,
)

__all__ = [
    "CHECKPOINT_TYPES",
    "CallError",
    "CallRecord",
    "Executor",
    "GraphKit",
    "Hop",
    "PatchCheck",
    "PlanRecord",
    "Priority",
    "Progress",
    "Record",
    "RunContext",
    "RunState",
    "SilentProgress",
    "Subtask",
    "build_python_graph",
    "compile_graph",
    "load_python_graph",
    "role_work",
    "subtask_files",
]
