"""``report.html``: one self-contained page (plots inlined as PNG data, no network needed to view it)."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

_SORT_JS = """
document.querySelectorAll('table.sortable th').forEach(function (th, col) {
  th.addEventListener('click', function () {
    var table = th.closest('table'), body = table.tBodies[0];
    var asc = th.dataset.dir !== 'asc'; th.dataset.dir = asc ? 'asc' : 'desc';
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col].dataset.v || a.cells[col].textContent, y = b.cells[col].dataset.v || b.cells[col].textContent;
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;color:#222;padding:0 1rem}
h1{margin-bottom:.2rem} .sub{color:#666;margin-top:0}
.badge{display:inline-block;padding:.15rem .5rem;border-radius:.6rem;font-size:.85rem;font-weight:600}
.measured{background:#d4f4dd;color:#135d27} .estimate{background:#fff1c2;color:#7a5a00}
.pass{color:#135d27;font-weight:600} .fail{color:#a31515;font-weight:600}
table{border-collapse:collapse;width:100%;font-size:.88rem;margin:.5rem 0 1.5rem}
th,td{border-bottom:1px solid #e4e4e4;padding:.3rem .5rem;text-align:right} th{background:#f5f5f5;cursor:pointer;position:sticky;top:0}
td.l,th.l{text-align:left} tr.pick td{background:#fff8e6}
img{max-width:100%;border:1px solid #eee} pre{background:#f7f7f7;padding:1rem;overflow:auto;font-size:.8rem}
.cards{display:flex;gap:1rem;flex-wrap:wrap} .card{border:1px solid #ddd;border-radius:.5rem;padding:.8rem 1rem;min-width:300px;flex:1;overflow:hidden}
.card table{font-size:.78rem;table-layout:fixed} .card td,.card th{padding:.2rem .3rem;word-break:break-word}
"""


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _cell(v: Any, left: bool = False) -> str:
    cls = ' class="l"' if left else ""
    return f"<td{cls}>{html.escape(str(v))}</td>"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return "" if v is None else str(v)


def _check_rows(verify: Mapping[str, Any]) -> str:
    rows = []
    for check in verify.get("checks", []):
        op = check.get("op", "")
        if op == "info":
            mark, limit = "recorded", "(estimate: not judged)"
        else:
            mark = (
                '<span class="pass">pass</span>' if check.get("passed") else '<span class="fail">FAIL</span>'
            )
            limit = f"{op} {_fmt(check.get('limit'))}"
        rows.append(
            f"<tr><td class='l'>{html.escape(str(check.get('name')))}</td>"
            f"<td>{html.escape(_fmt(check.get('value')))}</td><td>{html.escape(limit)}</td><td>{mark}</td></tr>"
        )
    return "".join(rows)


def render_report(
    *,
    title: str,
    target: Mapping[str, Any],
    latency_source: str,
    front_rows: Sequence[Mapping[str, str]],
    picks: Mapping[str, Mapping[str, Any]],
    front_png: bytes,
    history_png: bytes,
    config_yaml: str,
    extra_sections: Sequence[tuple[str, str]] = (),
) -> str:
    """The report page. ``picks`` maps a pick name to its summary (metrics, finalize, verify)."""
    badge = f'<span class="badge {html.escape(latency_source)}">latency {html.escape(latency_source)}</span>'
    tdesc = ", ".join(f"{k}: {v}" for k, v in target.items())
    cols = [
        ("rank", False),
        ("error", False),
        ("latency_ms", False),
        ("params", False),
        ("macs", False),
        ("robust_error", False),
        ("pick", True),
        ("genome", True),
    ]
    if any(r.get("latency_fp32_ms") for r in front_rows):  # searched at another precision: FP32 beside
        cols.insert(3, ("latency_fp32_ms", False))
    head = "".join(f"<th class='{'l' if left else ''}'>{c}</th>" for c, left in cols)
    body = []
    for r in front_rows:
        pick = ",".join(n for n in ("accurate", "knee", "fast") if r.get(n) == "1")
        vals = {**r, "pick": pick}
        cls = ' class="pick"' if pick else ""
        body.append(f"<tr{cls}>" + "".join(_cell(vals.get(c, ""), left) for c, left in cols) + "</tr>")
    cards = []
    for name, info in picks.items():
        verify = info.get("verify", {})
        status = verify.get("passed")
        status_html = (
            '<span class="pass">verified</span>'
            if status
            else ('<span class="fail">verification FAILED</span>' if status is False else "not verified")
        )
        metrics = info.get("metrics", {})
        fin = info.get("finalize", {})
        lines = [
            f"error (search, approx.): {metrics.get('error', float('nan')):.2%}",
            f"test accuracy after fine-tuning: {fin.get('test_accuracy', float('nan')):.2%}",
            f"params: {int(metrics.get('params', 0)):,}",
            f"predicted latency: {metrics.get('latency_ms', float('nan')):.4f} ms ({html.escape(latency_source)}"
            f"{', ' + html.escape(str(target['precision'])) if 'precision' in target else ''})",
        ]
        if "latency_fp32_ms" in metrics:
            lines.append(f"predicted latency in FP32: {metrics['latency_fp32_ms']:.4f} ms (same table)")
        if "measured_latency_ms" in info:
            lines.append(
                f"measured latency: {info['measured_latency_ms']:.4f} ms ({html.escape(str(info.get('measured_on', '')))})"
            )
        checks = _check_rows(verify)
        table = (
            f"<table><tr><th class='l'>check</th><th>value</th><th>limit</th><th>result</th></tr>{checks}</table>"
            if checks
            else ""
        )
        cards.append(
            f"<div class='card'><h3>{html.escape(name)} — {status_html}</h3><ul>"
            + "".join(f"<li>{line}</li>" for line in lines)
            + f"</ul>{table}</div>"
        )
    extras = "".join(f"<h2>{html.escape(t)}</h2>{content}" for t, content in extra_sections)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{_CSS}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p class="sub">target {html.escape(tdesc)} {badge}</p>
<h2>Pareto front</h2>
{_img(front_png, "Pareto front plots")}
<h2>Picks</h2>
<div class="cards">{"".join(cards)}</div>
<h2>Front members ({len(front_rows)})</h2>
<p class="sub">click a column to sort; latency figures are <b>{html.escape(latency_source)}</b></p>
<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>
<h2>Search progress</h2>
{_img(history_png, "hypervolume per generation")}
{extras}
<h2>Resolved config</h2>
<pre>{html.escape(config_yaml)}</pre>
<script>{_SORT_JS}</script>
</body></html>
"""


def json_block(data: Any) -> str:
    """Pretty JSON inside a <pre> (for extra sections)."""
    return f"<pre>{html.escape(json.dumps(data, indent=1, sort_keys=True))}</pre>"
