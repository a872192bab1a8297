"""The tools of a role's loop: `list_files`, `read_file` (offset, limit), `grep` (pattern, glob) and
`run_check` (a declared check on the workspace as it is, or with a patch applied), and the tools of
MCP servers a spec grants (`SERVER.TOOL`, called by the model as `SERVER__TOOL`).

Every result obeys the run. The files are the run's selection, with secrets already masked; a
file whose data class the policy does not let this model see does not exist for it: it is not
listed, not among `read_file`'s paths, not searched, and asking for it by name gets the answer an
unknown path gets (the refusal is recorded in the run's result, not shown to the model); a check's
output may show any file of its copy, so it is withheld from a model that may not see the highest
class of that copy; results are fenced as data (`_fence`) and bounded; and with `--record` they
are written down, with `--replay` served back (no check runs)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from orchestrator.catalog import Route
from orchestrator.checks import ChecksRefused, Edit, EditError, edits_to_diffs
from orchestrator.engine._fence import fence
from orchestrator.engine._grep import grep_lines
from orchestrator.engine._packing import render_file
from orchestrator.engine.context import RunContext
from orchestrator.policy import CLASSES, redact
from orchestrator.spec import mcp_server_of
from orchestrator.workspace import SourceFile, glob_match

COMPACT_TOOLS = 6  # the most tools a model on a compact_output provider (a very small one) is offered
RESULT_CHARS = 6000  # the most of one tool result a model is shown
READ_LINES, MAX_READ_LINES = 200, 400
GREP_MATCHES, GREP_LINE_CHARS, GREP_TIMEOUT_S = 100, 300, 2.0
TOOL_TEXT = {
    "list_files": "the workspace's files with their line counts (glob: a filter such as src/**/*.py)",
    "read_file": f"lines of a file, numbered (offset: the first line, 1-based; limit: lines, at most {MAX_READ_LINES})",
    "grep": "lines matching a regular expression (pattern), in files matching glob",
    "run_check": "run a declared check on the workspace as it is, or with your change applied (diff or edits)",
}


@dataclass
class ToolResult:
    text: str  # what the model is shown (fenced)
    status: str  # ok | error | refused
    detail: str  # a few words for the record
    seen: str | None = None  # the data class of what the model was shown


@dataclass
class Toolbox:
    """The tools one model has in one subtask: what they may touch and for whom."""

    ctx: RunContext
    owner: str  # the subtask's label: recordings are keyed by it
    role: str
    node: str | None
    route: Route
    tools: tuple[str, ...]
    edit_format: str = "diff"

    def __post_init__(self) -> None:
        """The tools this model is offered: the role's first ones, as many as the model takes."""
        cap = self.ctx.agent.max_tools
        if self.ctx.pool.providers[self.route.provider].compact_output:  # very small models: few tools
            cap = min(cap, COMPACT_TOOLS)
        hub = self.ctx.mcp
        offered = [t for t in self.tools if not mcp_server_of(t) or (hub is not None and hub.tool(t) is not None)]
        self.tools = tuple(offered[:cap])
        self.mcp = {hub.tools[t].exposed: hub.tools[t] for t in self.tools if mcp_server_of(t)} if hub else {}
        # the files this model may see: the only ones it is told of, in any way
        self.files: list[SourceFile] = [f for f in self.ctx.files.files if self._visible(f)]
        self._by_path = {f.path: f for f in self.files}

    def parameters(self) -> dict[str, dict[str, Any]]:
        """Each tool's arguments as a JSON Schema object (the real files and checks as enums)."""
        paths = [f.path for f in self.files] or [""]
        text = {"type": "string", "minLength": 1, "maxLength": 200}
        schemas: dict[str, dict[str, Any]] = {
            "list_files": _object({"glob": {"type": "string", "maxLength": 200}}, []),
            "read_file": _object(
                {  # numbers are clamped by the tool: grammars do not all enforce numeric bounds
                    "path": {"type": "string", "enum": paths},
                    "offset": {"type": "integer"},
                    "limit": {"type": "integer"},
                },
                ["path"],
            ),
            "grep": _object({"pattern": text, "glob": {"type": "string", "maxLength": 200}}, ["pattern"]),
        }
        if self.ctx.checks:
            change: dict[str, Any] = {"diff": {"type": "string", "maxLength": 20000}}
            if self.edit_format == "replace":
                edit = _object(
                    {"file": {"type": "string", "enum": paths}, "old": {"type": "string"}, "new": {"type": "string"}},
                    ["file", "old", "new"],
                )
                change = {"edits": {"type": "array", "items": edit, "maxItems": 10}}
            schemas["run_check"] = _object(
                {"check": {"type": "string", "enum": sorted(self.ctx.checks)}, **change}, ["check"]
            )
        schemas.update({name: tool.schema for name, tool in self.mcp.items()})
        order = [t for t in self.tools if not mcp_server_of(t)] + list(self.mcp)
        return {name: schemas[name] for name in order if name in schemas}

    def texts(self) -> dict[str, str]:
        """Each offered tool's description (an MCP server's, bounded, as the server wrote it)."""
        return {**TOOL_TEXT, **{name: tool.description or tool.granted for name, tool in self.mcp.items()}}

    def label(self, name: str) -> str:
        """A tool as the spec and the report name it (SERVER.TOOL for an MCP server's)."""
        return self.mcp[name].granted if name in self.mcp else name

    def describe(self) -> str:
        """The tools as the prompt lists them, with the declared checks."""
        lines = []
        for name, schema in self.parameters().items():
            args = ", ".join(p + ("" if p in schema["required"] else "?") for p in schema["properties"])
            lines.append(f"- {name}({args}): {self.texts()[name]}")
        if "run_check" in self.parameters():
            for check, spec in self.ctx.checks.items():
                command = spec.run if isinstance(spec.run, str) else " ".join(spec.run)
                lines.append(f"  - check `{check}`: `{command}`")
        return "\n".join(lines)

    async def call(self, name: str, args: dict[str, Any]) -> ToolResult:
        """Run one tool (through the recorder when there is one)."""
        recorder = self.ctx.pool.recorder
        if recorder is None:
            return await self._call(name, args)
        request = {"tool": name, "args": args, "owner": self.owner, "model": self.route.ref}

        async def compute() -> dict[str, Any]:
            return vars(await self._call(name, args))

        return ToolResult(**await recorder.tool(request, compute))

    async def _call(self, name: str, args: dict[str, Any]) -> ToolResult:
        if name == "list_files":
            return self._list(args.get("glob"))
        if name == "read_file":
            return self._read(str(args.get("path", "")), args.get("offset"), args.get("limit"))
        if name == "grep":
            return self._grep(str(args.get("pattern", "")), args.get("glob"))
        if name == "run_check":
            return await self._check(args)
        if name in self.mcp and self.ctx.mcp is not None:
            tool = self.mcp[name]
            text, status = await self.ctx.mcp.call(tool.granted, args)
            text = redact(text, self.ctx.pool.secrets)
            return ToolResult(self._fence(name, _cut(text)), status, f"{tool.granted}: {text[:120]}")
        return ToolResult(f"unknown tool {name}", "error", "unknown tool")

    def _fence(self, tool: str, text: str) -> str:
        return fence("tool_result", "tool", tool, text, self.ctx.fence_key)

    # ---- the tools
    def _visible(self, source: SourceFile) -> bool:
        return self.ctx.may_read(self.route, self.role, source.path, self.node)

    def _list(self, glob: str | None) -> ToolResult:
        chosen = [f for f in self.files if not glob or glob_match(f.path, glob)]
        body = "\n".join(f"{f.path} ({f.lines} lines)" for f in chosen[:500])
        more = f"\n... and {len(chosen) - 500} more" if len(chosen) > 500 else ""
        return ToolResult(self._fence("list_files", (body or "(no file matches)") + more), "ok", f"{len(chosen)} files")

    def _read(self, path: str, offset: Any, limit: Any) -> ToolResult:
        source = self._by_path.get(path)
        unknown = self._fence("read_file", f"no such file: {path}")
        if source is None and path in self.ctx.files.by_path():
            # a file this model may not see: answered as an unknown path, refused in the record
            data_class = self.ctx.file_classes.get(path, self.ctx.base_class)
            why = f"refused by the policy: {path} is {data_class} and {self.route.ref} may not see {data_class} data"
            return ToolResult(unknown, "refused", why)
        if source is None:
            return ToolResult(unknown, "error", "no such file")
        data_class = self.ctx.file_classes.get(path, self.ctx.base_class)
        lines = source.text.splitlines()
        first = max(1, int(offset or 1))
        count = min(MAX_READ_LINES, max(1, int(limit or READ_LINES)))
        shown = lines[first - 1 : first - 1 + count]
        listing = render_file(path, "\n".join(shown), first)
        last = first + len(shown) - 1
        note = f"(lines {first}-{last} of {len(lines)})" if shown else f"(the file has {len(lines)} lines)"
        text = self._fence("read_file", _cut(f"{note}\n{listing}"))
        return ToolResult(text, "ok", f"lines {first}-{last} of {len(lines)}", data_class)

    def _grep(self, pattern: str, glob: str | None) -> ToolResult:
        import regex  # backtracking bounded by a timeout: a model's pattern cannot hang the run

        try:
            compiled = regex.compile(pattern)
        except (regex.error, ValueError) as exc:
            return ToolResult(self._fence("grep", f"invalid pattern: {exc}"), "error", "invalid pattern")
        deadline = time.perf_counter() + GREP_TIMEOUT_S
        # only the files this model may see are searched: of the others it learns nothing, not even a count
        searched = [source for source in self.files if not glob or glob_match(source.path, glob)]
        try:
            found = grep_lines(searched, compiled, deadline, GREP_MATCHES)
        except TimeoutError:
            return ToolResult(
                self._fence("grep", "the search took too long: use a simpler pattern"), "error", "timeout"
            )
        matches = [f"{source.path}:{number}: {line[:GREP_LINE_CHARS]}" for source, number, line in found]
        classes = [self.ctx.file_classes.get(source.path, self.ctx.base_class) for source, _, _ in found]
        seen = max([self.ctx.base_class, *classes], key=CLASSES.index)
        body = "\n".join(matches) or "(no match)"
        return ToolResult(self._fence("grep", _cut(body)), "ok", f"{len(matches)} matches", seen)

    async def _check(self, args: dict[str, Any]) -> ToolResult:
        verifier = self.ctx.verifier
        name = str(args.get("check", ""))
        if verifier is None or name not in self.ctx.checks:
            return ToolResult(self._fence("run_check", f"no such check: {name}"), "error", "no such check")
        diff = args.get("diff") or None
        if args.get("edits"):
            try:
                edits = [Edit(str(e["file"]), str(e["old"]), str(e["new"])) for e in args["edits"]]
                texts = {f.path: f.text for f in self.files}
                diff = "".join(edits_to_diffs(edits, texts).values())
            except (EditError, KeyError, TypeError) as exc:
                return ToolResult(self._fence("run_check", f"the edits cannot be applied: {exc}"), "error", "bad edits")
        try:
            run = await verifier.run(name, diff, self.owner)
        except ChecksRefused as exc:
            return ToolResult(self._fence("run_check", str(exc)), "refused", str(exc))
        where = "with your change" if diff else "on the workspace as it is"
        head = f"check {name} {where}: {run.status} (exit {run.exit_code}, {run.duration_ms / 1000:.1f}s)"
        top = self.ctx.workspace_class
        if not self.ctx.may_see(self.route, self.role, top, self.node):
            why = f"output withheld: it may show {top} files, which {self.route.ref} may not see"
            return ToolResult(self._fence("run_check", f"{head}\n{why}"), "ok", f"{run.status}; {why}")
        output = run.output[-RESULT_CHARS:]
        detail = f"{run.status} (exit {run.exit_code})"
        return ToolResult(self._fence("run_check", f"{head}\n{output}"), "ok", detail, top)


def _object(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _cut(text: str) -> str:
    if len(text) <= RESULT_CHARS:
        return text
    return text[:RESULT_CHARS] + f"\n... ({len(text) - RESULT_CHARS} characters not shown; narrow the request)"


def args_key(name: str, args: dict[str, Any]) -> str:
    """A tool call as a comparable string (for the identical-calls bound)."""
    return name + json.dumps(args, sort_keys=True, ensure_ascii=False)
