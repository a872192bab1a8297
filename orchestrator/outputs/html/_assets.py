"""The report's only style sheet and only script, inlined; the page's Content-Security-Policy
allows exactly these two (by hash) and nothing else: no fetch of any kind, no other script."""

from __future__ import annotations

import base64
import hashlib

CSS = """
:root{--fg:#212121;--muted:#616161;--line:#e0e0e0;--bg:#fff;--code:#f5f5f5}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","DejaVu Sans",Arial,sans-serif;
color:var(--fg);background:var(--bg)}
header,main,nav{max-width:1100px;margin:0 auto;padding:0 20px}
header{padding-top:18px}
h1{font-size:1.6em;margin:.2em 0}
h2{font-size:1.25em;border-bottom:2px solid var(--line);padding-bottom:4px;margin-top:1.8em}
h3{font-size:1.05em;margin:1.2em 0 .4em}
nav{position:sticky;top:0;background:var(--bg);border-bottom:1px solid var(--line);padding:6px 20px;z-index:2}
nav a{margin-right:12px;white-space:nowrap}
a{color:#1565c0}
code,pre{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:.88em}
pre{background:var(--code);padding:8px;overflow-x:auto;white-space:pre-wrap;word-break:break-word}
code{unicode-bidi:isolate}
table{border-collapse:collapse;width:100%;margin:.4em 0}
th,td{border-bottom:1px solid var(--line);padding:4px 6px;text-align:start;vertical-align:top}
th button{font:inherit;font-weight:600;background:none;border:0;padding:0;cursor:pointer;color:inherit}
th button::after{content:" \\2195";color:var(--muted)}
.muted{color:var(--muted)}
.facts span{margin-right:14px;white-space:nowrap}
.badge{display:inline-block;padding:0 7px;border-radius:9px;font-size:.8em;font-weight:600;color:#fff;
background:#616161;print-color-adjust:exact;-webkit-print-color-adjust:exact}
.b-ok,.b-good{background:#2e7d32}.b-failed,.b-bad,.b-critical{background:#b71c1c}.b-high{background:#e53935}
.b-medium{background:#ef6c00}.b-low{background:#f9a825;color:#212121}.b-info{background:#546e7a}
.b-partial{background:#ef6c00}.b-muted{background:#9e9e9e}
.findings p{margin:.2em 0}.suggest{color:#33691e}
.controls{margin:.5em 0}.controls label{margin-right:14px}
figure{margin:.6em 0}figcaption{font-weight:600;font-size:.9em}
table.code td,table.diff td{border:0;padding:0 6px;font-family:ui-monospace,"DejaVu Sans Mono",monospace;
font-size:.85em;white-space:pre-wrap;word-break:break-all}
table.code,table.diff{background:var(--code)}
td.ln{color:var(--muted);text-align:end;width:3.5em;user-select:none}
tr.hit{background:#fff59d}
.d-add{background:#e8f5e9}.d-del{background:#ffebee}.d-hunk{background:#e3f2fd;color:#0d47a1}.d-meta{color:var(--muted)}
.d-add code::before{content:""}
article{border:1px solid var(--line);border-radius:6px;padding:8px 12px;margin:.8em 0}
.doc[dir=rtl]{text-align:right}
.doc pre,.doc code{direction:ltr;text-align:left}
svg{max-width:100%;height:auto;font-family:system-ui,"DejaVu Sans",sans-serif}
svg text{font-size:12px}svg .nname{font-weight:600;font-size:13px}svg .nfacts{font-size:11px}
svg .elabel,svg .tick,svg .cvalue{fill:#455a64;font-size:11px}svg .rlabel,svg .mlabel,svg .clabel{fill:#212121}
svg .rlabel,svg .mlabel{font-family:"DejaVu Sans Mono",ui-monospace,Menlo,Consolas,monospace;font-size:11px}
.scroll{overflow-x:auto}
.legend{font-size:.85em;color:var(--muted)}
.sw{display:inline-block;width:12px;height:12px;border-radius:2px;vertical-align:-1px;margin:0 3px 0 8px;
print-color-adjust:exact;-webkit-print-color-adjust:exact}
.s-ok{background:#2e7d32}.s-failed{background:#c62828}.s-partial{background:#ef6c00}
.s-not_run{background:#fff;border:2px solid #9e9e9e}
.k-model{background:#1e88e5}.k-failed{background:#e53935}.k-retried{background:#fb8c00}.k-check{background:#8e24aa}.k-tool{background:#00897b}
.k-wait{background:repeating-linear-gradient(45deg,#78909c 0 3px,#eceff1 3px 6px)}
.charts{display:flex;flex-wrap:wrap;gap:0 24px}.charts h3{width:100%}
@media print{nav,.controls{display:none!important}body{font-size:11pt}
a{color:inherit;text-decoration:none}h2{break-after:avoid}article,figure,tr{break-inside:avoid}
pre,table.code td,table.diff td{white-space:pre-wrap}.scroll{overflow:visible}}
"""

SCRIPT = """
(function () {
  var table = document.getElementById("findings-table");
  if (!table) return;
  var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
  var sev = document.getElementById("f-sev"), file = document.getElementById("f-file");
  var count = document.getElementById("f-count");
  document.getElementById("findings-controls").hidden = false;
  function filter() {
    var shown = 0;
    rows.forEach(function (row) {
      var hide = Number(row.dataset.rank) < Number(sev.value) || (file.value && row.dataset.file !== file.value);
      row.hidden = !!hide;
      if (!hide) shown++;
    });
    count.textContent = shown + " of " + rows.length + " findings";
  }
  var order = {};
  table.querySelectorAll("th button").forEach(function (button) {
    button.addEventListener("click", function () {
      var key = button.dataset.sort, up = order[key] = !order[key];
      rows.sort(function (a, b) {
        var x = a.dataset[key], y = b.dataset[key];
        var c = key === "rank" ? Number(y) - Number(x) : x < y ? -1 : x > y ? 1 : 0;
        if (key === "file" && c === 0) c = Number(a.dataset.line) - Number(b.dataset.line);
        return (up ? c : -c) || Number(a.dataset.order) - Number(b.dataset.order);
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
  sev.addEventListener("change", filter);
  file.addEventListener("change", filter);
  filter();
})();
"""


def digest(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


def content_security_policy() -> str:
    """Nothing may be fetched, framed, submitted or run but this style sheet and this script."""
    return (
        f"default-src 'none'; style-src '{digest(CSS)}'; script-src '{digest(SCRIPT)}'; img-src data:; "
        "base-uri 'none'; form-action 'none'"
    )
