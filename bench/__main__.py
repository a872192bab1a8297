"""`python -m bench [--quick] [--only NAME ...]`: every benchmark (or the named ones), a table on
stdout, bench/results.json (`--only` updates just those benchmarks' entries in it).

Figures are ratios against a baseline measured in the same run, absolute numbers beside them,
medians of several runs. `--quick` uses tiny sizes (the test suite runs it so it never rots)."""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

from bench import bare, busy, cli, embedded, executor, fanout, model, overhead_table, packing, swap, verify

TARGETS = {
    "overhead": "<= 1.5x bare LangGraph per subtask without checkpointer, flat in N",
    "fanout": "within 15% of ideal",
    "swap": "loads == distinct models",
    "startup": "validate < 0.5x import langchain_openai",
    "real_model": ">= 95% of wall time in model calls, >= 0.95x direct tokens/s, quickstart <= 0.5x the old path",
    "embedded": "constrained >= 0.8x free tokens/s; timeout to stop <= 1 s; batching used if > 1.2x",
    "memory": "< 2x bare LangGraph peak RSS at the largest N",
    "verify": "reported (no target): sandbox start and per-patch verification as ratios to unsandboxed runs",
    "fanout_http": "reported (no target): the fan-out over real HTTP; the 15% target is the in-process fanout row's",
    "executor": "reported (no target): local vs Ray per subtask, Ray start cost, growth to N=1000",
    "bare": "ours / bare LangGraph + langchain-openai over HTTP: CPU per call <= 1.1 at N=200 in memory,"
    " <= 1.2 durable, <= 1.3 at N=10; event loop blocked <= 0.5 ms per node durable",
    "busy": "the quickstart passes with both cores loaded; waiting is reported, not failed",
    "packing": "reported (no target): relevance packing and the repository map per 1,000 files",
}
SECTIONS = (
    "bare",
    "overhead",
    "fanout",
    "swap",
    "startup",
    "verify",
    "packing",
    "real_model",
    "embedded",
    "busy",
    "executor",
)
PARTS = {"overhead": ["memory"], "executor": ["fanout_http"]}  # figures another benchmark measures
ORDER = (
    "bare",
    "overhead",
    "fanout",
    "fanout_http",
    "swap",
    "startup",
    "real_model",
    "embedded",
    "busy",
    "packing",
    "memory",
    "verify",
    "executor",
)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repetition (for tests)")
    parser.add_argument("--skip-model", action="store_true", help="skip the embedded-model benchmark")
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results.json")
    only = f"run only this benchmark (repeatable): {', '.join(SECTIONS)}"
    parser.add_argument("--only", action="append", choices=SECTIONS, metavar="NAME", help=only)
    args = parser.parse_args()
    quick = args.quick
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))  # warnings and errors only
    started = time.perf_counter()
    results: dict[str, Any] = {
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(), "quick": quick},
    }
    sections = [
        ("bare", lambda: bare.run(quick)),
        ("overhead", lambda: overhead_table.run(quick)),
        ("fanout", lambda: fanout.run(quick)),
        ("swap", lambda: swap.run(quick)),
        ("startup", lambda: cli.run(quick)),
        ("verify", lambda: verify.run(quick)),
        ("packing", lambda: packing.run(quick)),
    ]
    if not args.skip_model:
        sections.append(("real_model", lambda: model.run(quick)))
        sections.append(("embedded", lambda: embedded.run(quick)))
        sections.append(("busy", lambda: busy.run(quick)))
    sections.append(("executor", lambda: executor.run(quick)))
    if args.only:
        sections = [(name, run) for name, run in sections if name in args.only]
        if args.output.exists():  # the other benchmarks' figures stay as the last run left them
            results = {**json.loads(args.output.read_text(encoding="utf-8")), **results}
    for name, run in sections:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        section_started = time.perf_counter()
        results[name] = run()
        results[name]["target"] = TARGETS[name]
        results[name]["seconds"] = round(time.perf_counter() - section_started, 1)
        for part in PARTS.get(name, []):
            results[part] = results[name].pop(part)
            results[part]["target"] = TARGETS[part]
        # after each benchmark: one that fails later loses no figure measured before it
        args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if not args.only:
        results["seconds"] = round(time.perf_counter() - started, 1)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    shown = {part for name, _ in sections for part in (name, *PARTS.get(name, []))}
    print(render(results, [name for name in ORDER if name in shown]))


def render(results: dict[str, Any], names: list[str] | tuple[str, ...] = ORDER) -> str:
    lines = ["| benchmark | figure | ratio | absolute | target | met |", "| --- | --- | --- | --- | --- | --- |"]
    for name in names:
        section = results.get(name)
        if not section:
            continue
        for row in section["rows"]:
            met = {True: "yes", False: "no", None: ""}[row.get("met")]
            ratio = "n/a" if row["ratio"] is None else row["ratio"]
            target = row.get("target") or section["target"]
            lines.append(f"| {name} | {row['figure']} | {ratio} | {row['absolute']} | {target} | {met} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
