"""Pure renderers of a finished, typed result (`RunResult`): result.json, report.md, SARIF,
JUnit, the GitHub step summary and annotations, patches and docs."""

from orchestrator.outputs._write import REPORT, REVIEW_FILES, WRITERS, Writer, write_outputs
from orchestrator.outputs.markdown import render_markdown
from orchestrator.outputs.result import RESULT_SCHEMA_VERSION, RoleInfo, RunResult, result_json_schema

__all__ = [
    "REPORT",
    "RESULT_SCHEMA_VERSION",
    "REVIEW_FILES",
    "WRITERS",
    "RoleInfo",
    "RunResult",
    "Writer",
    "render_markdown",
    "result_json_schema",
    "write_outputs",
]
