"""junit.xml: one test case per subtask, and one per judged check of each patch kept (a check
that fails with the patch is a `failure`, one that timed out or could not run an `error`), for CI
test-report views. A subtask fails as an
`error` when every model of its chain failed, and as a `failure` when it reported a finding at or
above fail_on (the quality gate)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from orchestrator.outputs.result import RunResult
from orchestrator.outputs.verification import junit_cases
from orchestrator.spec.kinds import at_or_above


def build_junit(result: RunResult) -> str:
    fail_on = result.fail_on
    cases = result.verdicts() + ([result.aggregate] if result.aggregate else [])
    suite = ET.Element("testsuite", name=result.spec.name, timestamp=result.started_at[:19])
    errors = failures = 0
    for sub in cases:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"{result.spec.name}.{sub.role}",
            name=f"{sub.id}: {sub.instruction[:100]}".strip(),
            time=f"{sub.latency_ms / 1000:.3f}",
        )
        if not sub.ok:
            errors += 1
            message = sub.error.message if sub.error else "failed"
            node = ET.SubElement(case, "error", message=message[:500], type="provider_failure")
            node.text = "\n".join(f"{h.model}: {h.error_kind}: {h.message}" for h in sub.fallbacks)
        else:
            gated = [f for f in sub.findings() if at_or_above(f.severity, fail_on)]
            if gated:
                failures += 1
                text = f"{len(gated)} finding(s) at or above {fail_on}"
                node = ET.SubElement(case, "failure", message=text, type="quality_gate")
                node.text = "\n".join(f"{f.severity} {f.file}:{f.line or ''} {f.title}" for f in gated)
        out = ET.SubElement(case, "system-out")
        out.text = (
            f"model: {sub.model}\ntokens: {sub.tokens_in} in, {sub.tokens_out} out\nfallbacks: {len(sub.fallbacks)}"
        )
    verified = junit_cases(result)  # a test case per judged check per patch the run kept
    for classname, name, seconds, kind, text in verified:
        case = ET.SubElement(suite, "testcase", classname=classname, name=name, time=f"{seconds:.3f}")
        if kind is not None:
            failures += kind == "failure"
            errors += kind == "error"
            node = ET.SubElement(case, kind, message=text.splitlines()[0][:500], type=f"check_{kind}")
            node.text = text
    suite.set("tests", str(len(cases) + len(verified)))
    suite.set("errors", str(errors))
    suite.set("failures", str(failures))
    suite.set("skipped", "0")
    suite.set("time", f"{result.duration_ms / 1000:.3f}")
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
