"""report.html: one self-contained page built from the typed result. Hostile model output is shown
as text, never run or fetched; a real headless Chromium renders the quickstart's report (a
screenshot that shows something, the DOM with every subtask, an SVG node per graph node and the
right-to-left docs) and, behind a recording proxy that must see nothing, proves the page makes
no network request; `orchestrator report RUN_ID` rebuilds it from the stored result."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from orchestrator import RunOptions, run_workflow
from orchestrator.outputs.html import render_html
from orchestrator.outputs.result import RunResult
from orchestrator.spec import load_spec
from orchestrator.testing import Call, FakeProvider, valid_answer
from orchestrator.workflow import prepare_workflow
from tests.browser import browse, evaluate, page_requests
from tests.png import ink
from tests.process import orchestrator
from tests.servers.proxy import RecordingProxy

REPO = Path(__file__).resolve().parent.parent
QUICKSTART = REPO / "examples" / "quickstart" / "spec.yaml"
REPLAY = REPO / "tests" / "data" / "quickstart-replay" / "rec"
EVIL = '<script>alert("pwned")</script><img src="http://evil.example/track.png" onerror="alert(1)">'
SPEC = """
version: 1
name: hostile
goal: "Review <b>everything</b> and document it."
workspace: ws
providers: {fake: {kind: fake}}
tasks:
  - {role: architecture_review, instruction: review, files: [app.py]}
  - {role: refactor, instruction: refactor, files: [app.py]}
  - {role: debug, instruction: "debug </td><script>x()</script>", files: [app.py]}
  - {role: arabic_docs, instruction: document, files: [app.py]}
models: {planner: fake/m, architecture_review: fake/m, refactor: fake/m, debug: fake/m, arabic_docs: fake/m}
output: {formats: [markdown, html, json]}
fail_on: none
"""
DIFF = "--- a/app.py\n+++ b/app.py\n@@ -1,2 +1,2 @@\n def add(a, b):\n-    return a - b\n+    return a + b\n"


def hostile(call: Call) -> str:
    """Valid answers whose every string is an attempt to inject markup or fetch something."""
    kind = call.kind
    if kind == "findings":
        finding = {"severity": "high", "file": "app.py", "line": 2, "title": EVIL, "detail": "</td></tr>" + EVIL}
        return json.dumps({"findings": [{**finding, "suggestion": "url(http://evil.example/css)"}]})
    if kind == "patches":
        return json.dumps({"patches": [{"file": "app.py", "diff": DIFF + "+" + EVIL + "\n", "rationale": EVIL}]})
    if kind == "diagnosis":
        return json.dumps(
            {"root_cause": EVIL, "evidence": [EVIL], "fix": {"file": "app.py", "diff": DIFF, "rationale": "r"}}
        )
    if kind == "docs":
        markdown = (
            "## الواجهة\n\nاستدعِ `Store.add(sku)` ثم " + EVIL + "\n\n![x](http://evil.example/i.png) "  # noqa: RUF001
            "[link](javascript:alert(1)) <http://evil.example/auto>\n\n```python\nstore = Store()\n```\n"
        )
        return json.dumps({"title": "توثيق " + EVIL, "markdown": markdown})
    if kind == "aggregate":
        return json.dumps({"summary": EVIL, "decisions": [EVIL], "disagreements": [], "next_steps": ["n"]})
    return valid_answer(call)


class Page(HTMLParser):
    """The elements of a page: tag, attributes, and the text directly inside."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [
            a for t, a in self.elements if t == tag and all(a.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]


def hostile_result(fake: FakeProvider, write_spec: Any, tmp_path: Path) -> tuple[RunResult, str]:
    fake.script("m", hostile)
    workflow = prepare_workflow(load_spec(write_spec(SPEC)))
    outcome = run_workflow(workflow, RunOptions(output_dir=tmp_path / "out"))
    return outcome.result, (tmp_path / "out" / "report.html").read_text()


def test_hostile_model_output_is_text_and_nothing_can_be_fetched(
    fake: FakeProvider, write_spec: Any, tmp_path: Path
) -> None:
    result, page = hostile_result(fake, write_spec, tmp_path)
    assert page == render_html(result)  # the file is a pure rendering of the typed result
    parsed = Page(page)
    assert len(parsed.find("script")) == 1 and "pwned" not in "".join(parsed.scripts)  # only our own script
    assert not parsed.find("img") and not [a for _, a in parsed.elements if "onerror" in a]
    assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;" in page  # shown, escaped
    assert not re.search(r"(src|href)=\"(?!#)", page)  # every link stays on the page
    carriers = {name for _, attrs in parsed.elements for name, value in attrs.items() if "evil" in (value or "")}
    assert "evil.example" in page and carriers == {"data-title"}  # only ever as text (a sort key)
    (csp,) = [a["content"] or "" for a in parsed.find("meta", http_equiv="Content-Security-Policy")]
    assert "default-src 'none'" in csp and "'unsafe-inline'" not in csp and "form-action 'none'" in csp
    # the quickstart's shape: every subtask, an SVG node per graph node, the RTL docs with code kept LTR
    assert {a["data-subtask"] for a in parsed.find("tr", **{"class": "subtask"})} == {
        "t1", "t2", "t3", "t4", "aggregate"
    }  # fmt: skip
    assert result.graph is not None
    assert len(parsed.find("g", **{"class": "node"})) == len(result.graph.nodes) == 8
    (rtl,) = parsed.find("div", **{"class": "doc", "dir": "rtl"})
    assert rtl["lang"] == "ar" and parsed.find("code", dir="ltr") and parsed.find("pre", dir="ltr")
    # findings link to the source lines they are about; patches are diffs with their verdicts
    assert parsed.find("a", href="#src-0") and parsed.find("figure", id="src-0")
    assert len(parsed.find("article", **{"class": "patch"})) == 2 and len(parsed.find("tr", **{"class": "d-add"})) == 3
    verdicts = {"applies" if c.valid else "does not apply" for s in result.subtasks for c in s.checks}
    assert verdicts and all(f">{word}</span>" in page for word in verdicts)


def test_the_html_report_shows_timing_fallbacks_and_egress(fake: FakeProvider, write_spec: Any, tmp_path: Path) -> None:
    fake.script("m", valid_answer)
    fake.script("down", lambda c: (_ for _ in ()).throw(ConnectionRefusedError("refused")))
    spec = write_spec(SPEC.replace("architecture_review: fake/m,", "architecture_review: [fake/down, fake/m],"))
    outcome = run_workflow(prepare_workflow(load_spec(spec)), RunOptions(output_dir=tmp_path / "out"))
    result = outcome.result
    review = next(s for s in result.subtasks if s.role == "architecture_review")
    assert review.timing is not None
    kinds = [(s.kind, s.name, s.status) for s in review.timing.spans]
    assert ("model", "fake/down", "unavailable") in kinds and ("model", "fake/m", "ok") in kinds
    page = Page((tmp_path / "out" / "report.html").read_text())
    rows = page.find("g", **{"class": "trow"})
    assert {r["data-call"] for r in rows} == {"t1", "t2", "t3", "t4", "aggregate"}  # one timeline row per call
    attempts = [a["data-status"] for a in page.find("rect", **{"class": "ev ev-model"})]
    # 5 answers, and fake/down's three attempts, each drawn: two retried, the last failed for good
    assert sorted(attempts) == ["ok"] * 5 + ["retried"] * 2 + ["unavailable"]
    assert page.find("rect", **{"class": "ev ev-check"})  # the refactor's patch check
    (node,) = [a for a in page.find("g", **{"class": "node"}) if a["data-node"] == "architecture_review"]
    assert node["data-status"] == "ok"


def test_diagnoses_have_their_own_section_and_every_chart_says_something(
    fake: FakeProvider, write_spec: Any, tmp_path: Path
) -> None:
    result, page = hostile_result(fake, write_spec, tmp_path)
    bodies = dict(re.findall(r'<section id="([a-z]+)">(.*?)</section>', page, re.S))
    assert list(bodies).index("diagnoses") < list(bodies).index("patches")
    assert 'class="diagnosis"' in bodies["diagnoses"] and 'class="diagnosis"' not in bodies["patches"]
    usage = bodies["usage"]
    # nothing cost anything: no cost chart; each node ran one role: no second set of the same charts
    assert "<figcaption>cost</figcaption>" not in usage and "No call cost anything" in usage
    assert result.totals.by_node == result.totals.by_role
    assert "<h3>Per role</h3>" in usage and "<h3>Per graph node</h3>" not in usage
    priced = result.model_copy(deep=True)
    for group in (priced.totals.by_model, priced.totals.by_role, priced.totals.by_node):
        for usage_totals in group.values():
            usage_totals.cost_usd = 0.002
    nodes = priced.totals.by_node
    priced.totals.by_node = {"review_node": nodes.pop("architecture_review"), **nodes}  # a node named otherwise
    shown = dict(re.findall(r'<section id="([a-z]+)">(.*?)</section>', render_html(priced), re.S))["usage"]
    assert shown.count("<figcaption>cost</figcaption>") == 3 and "<h3>Per graph node</h3>" in shown


def test_tool_calls_and_checks_of_a_record_reach_the_timeline(
    fake: FakeProvider, write_spec: Any, tmp_path: Path
) -> None:
    """Any record a call carries that says when it started and how long it took (the agentic
    roles' tool calls, their checks) is drawn on the timeline without the renderer knowing it."""
    from orchestrator.engine.state import ToolCall
    from orchestrator.outputs.events import timed_events
    from orchestrator.outputs.html._timeline import render_timeline

    result, _ = hostile_result(fake, write_spec, tmp_path)
    first = result.subtasks[0]
    assert first.timing is not None
    tool = ToolCall(
        turn=1, model="fake/m", tool="grep", status="error", started_ms=first.timing.started_ms, duration_ms=3
    )
    richer = first.model_copy(update={"tool_calls": [tool]})
    assert ("tool", "grep", "error") in [(e.kind, e.name, e.status) for e in timed_events(richer)]
    svg = render_timeline(result.model_copy(update={"subtasks": [richer, *result.subtasks[1:]]}))
    assert 'class="ev ev-tool"' in svg and "tool: grep" in svg


# ---------------------------------------------------------------- a real browser


@pytest.fixture(scope="module")
def quickstart_report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The quickstart's report, from a replay of its recording (the real pipeline, no model)."""
    out = tmp_path_factory.mktemp("quickstart") / "out"
    done = orchestrator("run", QUICKSTART, "--replay", REPLAY, "--output-dir", out)
    assert done.returncode == 0, done.stderr
    yield out


@pytest.mark.integration
def test_chromium_renders_the_quickstart_report(quickstart_report: Path, tmp_path: Path) -> None:
    result = json.loads((quickstart_report / "result.json").read_text())
    shot = tmp_path / "report.png"
    browse(quickstart_report / "report.html", f"--screenshot={shot}", "--window-size=1200,2200", "--hide-scrollbars")
    inked, colours = ink(shot)
    assert 0.03 < inked < 0.9 and colours > 50, (inked, colours)  # text, graph and colours, not a blank page
    dom = Page(browse(quickstart_report / "report.html", "--dump-dom"))
    subtasks = {a["data-subtask"] for a in dom.find("tr", **{"class": "subtask"})}
    assert subtasks == {s["id"] for s in result["subtasks"]} | {"aggregate"}
    assert len(dom.find("g", **{"class": "node"})) == len(result["graph"]["nodes"])
    assert dom.find("div", **{"class": "doc", "dir": "rtl", "lang": "ar"})
    assert len(dom.find("g", **{"class": "trow"})) == 5 and dom.find("table", id="findings-table")
    tool_calls = [c for s in result["subtasks"] for c in s["tool_calls"]]  # the agentic debug role's
    assert tool_calls and 'class="ev ev-tool"' in (quickstart_report / "report.html").read_text()
    (controls,) = dom.find("div", id="findings-controls")
    assert "hidden" not in controls  # the one script ran: the policy allows it by its hash
    # printed: pages of it (the print style sheet drops the controls and keeps the colours)
    pdf = tmp_path / "report.pdf"
    browse(quickstart_report / "report.html", f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
    assert int(re.findall(rb"/Count (\d+)", pdf.read_bytes())[0]) >= 2


BOXES = """(() => {
  const box = e => { const b = e.getBBox(); return [b.x, b.y, b.x + b.width, b.y + b.height]; };
  const svg = document.querySelector("svg.timeline");
  return {
    labels: [...svg.querySelectorAll("text.rlabel, text.mlabel")].map(e => [e.textContent, ...box(e)]),
    bars: [...svg.querySelectorAll("rect.call, rect.ev")].map(box),
    width: svg.viewBox.baseVal.width,
  };
})()"""


@pytest.mark.integration
def test_timeline_labels_never_touch_the_bars_and_retries_show(
    fake: FakeProvider, write_spec: Any, tmp_path: Path
) -> None:
    """Laid out by Chromium: no label's box meets a bar's (long model names, a fallback, retries);
    a retried attempt is drawn as such, not inside the attempt that answered."""
    long_name = "a-model-name-long-enough-to-run-into-the-bars-of-its-row"
    fake.script(long_name, valid_answer)
    fake.script("down", lambda c: (_ for _ in ()).throw(ConnectionRefusedError("refused")))
    spec = SPEC.replace("fake/m", f"fake/{long_name}").replace(
        f"architecture_review: fake/{long_name},", f"architecture_review: [fake/down, fake/{long_name}],"
    )
    outcome = run_workflow(prepare_workflow(load_spec(write_spec(spec))), RunOptions(output_dir=tmp_path / "out"))
    page = tmp_path / "out" / "report.html"
    statuses = [a["data-status"] for a in Page(page.read_text()).find("rect", **{"class": "ev ev-model"})]
    assert statuses.count("retried") == 2 and statuses.count("unavailable") == 1  # fake/down's three attempts
    laid = evaluate(page, BOXES)
    assert len(laid["labels"]) == 2 * len(outcome.result.subtasks) + 2  # a call and a model label per row
    assert any(long_name[:20] in text for text, *_ in laid["labels"])
    for text, *label in laid["labels"]:
        assert label[0] >= 0 and label[2] <= laid["width"], text  # inside the picture
        for bar in laid["bars"]:
            apart = label[2] <= bar[0] or bar[2] <= label[0] or label[3] <= bar[1] or bar[3] <= label[1]
            assert apart, (text, label, bar)


@pytest.mark.integration
def test_without_its_script_the_report_is_whole(quickstart_report: Path, tmp_path: Path) -> None:
    """The same page with scripts forbidden (its policy's script hash taken away): everything is
    there, only the script-made controls stay hidden. (Headless Chromium cannot dump a page with
    scripting switched off in its settings, so the page's own policy switches it off.)"""
    text = (quickstart_report / "report.html").read_text()
    blocked = re.sub(r"script-src '[^']+'", "script-src 'none'", text)
    assert blocked != text
    page = tmp_path / "no-script.html"
    page.write_text(blocked)
    shot = tmp_path / "no-script.png"
    browse(page, f"--screenshot={shot}", "--window-size=1200,1600", "--hide-scrollbars")
    assert ink(shot)[0] > 0.03
    dom = Page(browse(page, "--dump-dom"))
    assert len(dom.find("tr", **{"class": "subtask"})) == 5 and dom.find("div", **{"class": "doc", "dir": "rtl"})
    assert "hidden" in dom.find("div", id="findings-controls")[0]  # the script did not run


@pytest.mark.integration
def test_the_report_makes_no_network_request(
    fake: FakeProvider, write_spec: Any, quickstart_report: Path, tmp_path: Path
) -> None:
    """Neither the quickstart's report nor one full of hostile text asks the network for anything.
    The DevTools protocol names every request the page, its frames and its workers make; the
    browser's own (its updater, time and account checks: which ones depends on the build) belong
    to no page. A recording proxy is the second witness: no request reached a host the pages name."""
    _, hostile_page = hostile_result(fake, write_spec, tmp_path)
    pages = (quickstart_report / "report.html", tmp_path / "out" / "report.html")
    named = {host for page in pages for host in HOST.findall(page.read_text())}
    assert "evil.example" in named  # the hostile text's image is in the page, as text
    with RecordingProxy({}) as proxy:
        for page in pages:
            assert page_requests(page, proxy=proxy.url) == [], page
        assert not {host_of(e.host) for e in proxy.state.log} & named
        # the witnesses work: a page that leaks five ways is caught by both
        leaky = tmp_path / "leaky.html"
        leaky.write_text(LEAKY)
        caught = {urlsplit(r.url).hostname: r for r in page_requests(leaky, proxy=proxy.url)}
        assert set(caught) == set(LEAKS), caught
        assert caught["worker.example"].target == "worker" and caught["late.example"].kind == "Image"
        assert set(LEAKS) <= {host_of(e.host) for e in proxy.state.log}
    del hostile_page


HOST = re.compile(r"(?:https?|wss?)://([A-Za-z0-9.-]+)")
LEAKS = ("evil.example", "frame.example", "fetch.example", "worker.example", "late.example")
LEAKY = """<!DOCTYPE html><html><body>
<img src="http://evil.example/track.png"><iframe src="https://frame.example/"></iframe>
<script>
fetch("http://fetch.example/x");
new Worker(URL.createObjectURL(new Blob(["fetch('http://worker.example/')"])));
setTimeout(() => { new Image().src = "http://late.example/"; }, 2000);
</script></body></html>"""


def host_of(netloc: str) -> str:
    return netloc.rsplit(":", 1)[0] if ":" in netloc else netloc


def test_report_rebuilds_every_output_of_a_stored_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = orchestrator("run", QUICKSTART, "--replay", REPLAY, "--output-dir", out, "--format", "json")
    assert done.returncode == 0, done.stderr
    run_id = json.loads((out / "result.json").read_text())["run_id"]
    assert not (out / "report.html").exists()
    rebuilt = orchestrator("report", run_id, "--output-dir", tmp_path / "again")
    assert rebuilt.returncode == 0, rebuilt.stderr
    again = tmp_path / "again"
    assert (again / "report.html").is_file() and (again / "result.json").read_text() == (
        out / "result.json"
    ).read_text()
    assert run_id in (again / "report.html").read_text()
    missing = orchestrator("report", "20990101T000000-abcdef")
    assert missing.returncode == 2 and "no such run" in missing.stderr
    stored = list(Path(os.environ["ORCHESTRATOR_DATA_DIR"]).glob(f"results/{run_id}.json"))
    assert len(stored) == 1  # kept in the run data folder, whatever formats the run wrote
    assert orchestrator("runs", "prune", "--older-than", "0m").returncode == 0
    assert not stored[0].exists() and orchestrator("report", run_id).returncode == 2  # forgotten with the run


@pytest.mark.parametrize(
    ("graph", "loops", "kinds"),
    [
        ("debug-loop", {("fix", "diagnose")}, {"diagnose": "role", "fix": "role", "aggregate": "aggregate"}),
        ("ensemble-review", set(), {"review": "ensemble", "merge": "merge", "aggregate": "aggregate"}),
        ("coding-workflow", set(), {"plan": "plan", "debug": "fanout", "aggregate": "aggregate"}),
    ],
)
def test_the_graph_report_knows_kinds_and_loops(
    graph: str, loops: set[tuple[str, str]], kinds: dict[str, str], fake: FakeProvider, write_spec: Any
) -> None:
    from orchestrator.engine import compile_graph
    from orchestrator.engine.state import PlanRecord
    from orchestrator.runtime._shape import graph_report, graph_shape
    from orchestrator.spec import worker_roles

    spec = write_spec(SPEC.replace("workspace: ws", f"workspace: ws\ngraph: {graph}").split("tasks:")[0])
    workflow = prepare_workflow(load_spec(spec, ["models.default=fake/m"]))
    assert workflow.graph is not None
    compiled = compile_graph(workflow.graph, sorted(worker_roles(workflow.roles))).compile()
    report = graph_report(workflow, graph_shape(compiled), PlanRecord(source="graph"), [])
    assert {(e.source, e.target) for e in report.edges if e.loop} == loops
    found = {n.name: n.kind for n in report.nodes}
    assert {name: found[name] for name in kinds} == kinds and found["__start__"] == "start"
    assert {n.status for n in report.nodes if n.kind not in ("start", "end")} == {"not_run"}
    svg = Page(_graph_svg(report))
    assert len(svg.find("g", **{"class": "node"})) == len(report.nodes)
    assert len(svg.find("g", **{"class": "edge loop"})) == len(loops)


def _graph_svg(report: Any) -> str:
    from orchestrator.outputs.html._graph import render_graph

    return render_graph(report)


def test_source_lines_in_the_report_have_secrets_masked(
    fake: FakeProvider, write_spec: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.policy import MASK

    secret = "sk-live-5eCr3t-0123456789abcdef"
    monkeypatch.setenv("FAKE_API_KEY", secret)
    monkeypatch.setenv("ORCHESTRATOR_TRUSTED_KEYS", "FAKE_API_KEY")  # a key variable the catalog does not document
    fake.script("m", hostile)  # its finding is about app.py line 2, where the key was committed
    files = {"app.py": f"def add(a, b):\n    API_KEY = '{secret}'\n    return a - b\n"}
    spec = write_spec(SPEC.replace("{fake: {kind: fake}}", "{fake: {kind: fake, api_key_env: FAKE_API_KEY}}"), files)
    outcome = run_workflow(prepare_workflow(load_spec(spec)), RunOptions(output_dir=tmp_path / "out"))
    page = (tmp_path / "out" / "report.html").read_text()
    (excerpt,) = outcome.result.sources
    assert excerpt.file == "app.py" and any(MASK in line for line in excerpt.lines)
    assert secret not in page and f"API_KEY = &#x27;{MASK}&#x27;" in page


@pytest.mark.parametrize("graph", sorted(p.stem for p in (REPO / "graphs").glob("*.yaml")))
def test_every_shipped_graph_renders_its_run(graph: str, fake: FakeProvider, write_spec: Any, tmp_path: Path) -> None:
    fake.script("m", valid_answer)
    fake.script("n", valid_answer)
    head = SPEC.replace("workspace: ws", f"workspace: ws\ngraph: {graph}").split("tasks:")[0]
    spec = write_spec(head + "models: {default: fake/m, architecture_review: [fake/m, fake/n]}\nfail_on: none\n")
    outcome = run_workflow(prepare_workflow(load_spec(spec)), RunOptions(output_dir=tmp_path / "out"))
    result = outcome.result
    assert result.graph is not None  # (an ensemble's merge fails here: the fake gives no disagreements)
    page = Page((tmp_path / "out" / "report.html").read_text())
    assert len(page.find("g", **{"class": "node"})) == len(result.graph.nodes)
    calls = [c for c in [result.plan.call, *result.subtasks, result.aggregate] if c is not None]
    assert all(c.timing is not None for c in calls)
    assert len(page.find("g", **{"class": "trow"})) == len(calls)
    status = {n.name: n.status for n in result.graph.nodes}
    for call in calls:
        if call.node:
            assert status[call.node] in (("ok", "partial") if call.ok else ("failed", "partial")), call.node
    drawn = {a["data-node"]: a["data-status"] for a in page.find("g", **{"class": "node"})}
    assert drawn == status
