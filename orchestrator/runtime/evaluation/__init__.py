"""`orchestrator eval`: measure which model does each role best on your own code, under your
policy. Instances (tasks with a known answer: a commit, a goal, the tests that judge) from an eval
file or SWE-bench-style JSONL, arms (model assignments) run on each as ordinary runs, each run's
patch judged by the instance's tests; and `eval make`, instances built from fix commits."""

from orchestrator.runtime.evaluation._eval import (
    EvalOptions,
    EvalProgress,
    SilentEvalProgress,
    run_eval,
    run_eval_async,
    write_eval,
)
from orchestrator.runtime.evaluation._summary import models_block, wilson

__all__ = [
    "EvalOptions",
    "EvalProgress",
    "SilentEvalProgress",
    "models_block",
    "run_eval",
    "run_eval_async",
    "wilson",
    "write_eval",
]
