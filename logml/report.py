"""Report of a run: a PNG plot per service (lines, errors, anomaly score, incidents shaded)
and an HTML page around it. Reads the JSONL outputs, so it works on any ``logml run``."""
from __future__ import annotations

import html
from collections import defaultdict
from pathlib import Path

import orjson

from .evaluate import _epoch, _get


def _load(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def plot(out_dir: Path, labels: dict | None, png: Path) -> Path:
    fig = figure(out_dir, labels)  # sets the non-interactive backend before pyplot
    import matplotlib.pyplot as plt
    fig.savefig(png, dpi=90)
    plt.close(fig)
    return png


def figure(out_dir: Path, labels: dict | None):
    """The report's figure: a panel per service."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from datetime import datetime, timezone

    windows = _load(out_dir / "windows.jsonl")
    anomalies = _load(out_dir / "anomalies.jsonl")
    series: dict[str, list] = defaultdict(list)
    for w in windows:
        series[_get(w, "service.name")].append(
            (_epoch(w["@timestamp"]), _get(w, "logml.lines"), _get(w, "logml.errors"),
             _get(w, "logml.anomaly_score"), _get(w, "logml.expected_lines")))
    services = sorted(series)
    fig, axes = plt.subplots(len(services) or 1, 1, figsize=(12, 2.6 * max(len(services), 1)),
                             sharex=True, squeeze=False)
    when = lambda t: datetime.fromtimestamp(t, tz=timezone.utc)  # noqa: E731
    for ax, svc in zip(axes[:, 0], services):
        pts = sorted(series[svc])
        t = [when(p[0]) for p in pts]
        ax.plot(t, [p[1] for p in pts], color="#4477aa", lw=1, label="lines / window")
        if any(p[4] is not None for p in pts):  # older outputs lack it
            ax.plot(t, [float("nan") if p[4] is None else p[4] for p in pts], color="#222222",
                    lw=0.8, ls="--", label="expected lines")
        ax.plot(t, [p[2] for p in pts], color="#cc3311", lw=1, label="errors / window")
        ax.set_ylabel(svc)
        ax2 = ax.twinx()
        ax2.fill_between(t, [p[3] for p in pts], color="#ee7733", alpha=0.35, step="post",
                         label="anomaly score")
        ax2.set_ylim(0, 105)
        ax2.set_ylabel("score")
        for inc in (labels or {}).get("incidents", []):
            if inc["service"] == svc:
                ax.axvspan(when(inc["start"]), when(inc["end"]), color="#999999", alpha=0.3)
                ax.text(when(inc["start"]), ax.get_ylim()[1] * 0.9, inc["type"], fontsize=8)
        crit = [when(_epoch(a["@timestamp"])) for a in anomalies
                if _get(a, "service.name") == svc and _get(a, "logml.severity") == "critical"]
        ax.plot(crit, [0] * len(crit), "v", color="#cc3311", ms=5, label="critical anomaly")
    handles = axes[0, 0].get_legend_handles_labels()
    axes[0, 0].legend(*handles, loc="upper left", fontsize=8, ncol=4)
    axes[-1, 0].xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=timezone.utc))
    axes[-1, 0].set_xlabel("time (UTC); grey = labelled incident")
    fig.tight_layout()
    return fig


def write_html(report: Path, png_name: str, summary: str, out_dir: Path) -> Path:
    anomalies = _load(out_dir / "anomalies.jsonl")
    rows = []
    for a in sorted(anomalies, key=lambda a: -(_get(a, "logml.anomaly_score") or 0))[:200]:
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
            a["@timestamp"], _get(a, "service.name"), _get(a, "logml.anomaly.type"),
            _get(a, "logml.severity"), _get(a, "logml.actual"),
            round(_get(a, "logml.expected") or 0, 2), _get(a, "logml.zscore"),
            _get(a, "logml.template") or "", _get(a, "logml.incident_id"))) + "</tr>")
    report.write_text(f"""<!doctype html>
<html><head><meta charset="utf-8"><title>logml report</title>
<style>body{{font-family:sans-serif;margin:2em}} pre{{background:#f6f6f6;padding:1em}}
table{{border-collapse:collapse;font-size:13px}} td,th{{border:1px solid #ccc;padding:2px 6px}}
</style></head><body>
<h1>logml report</h1>
<p>Per service: lines and errors per window, the lines logml expected (dashed), anomaly
score (orange, right axis), labelled incidents shaded grey, critical anomalies marked at
the bottom.</p>
<img src="{png_name}" alt="lines, errors and anomaly score per service">
<h2>Found versus truth</h2><pre>{html.escape(summary)}</pre>
<h2>Anomalies (top 200 by score)</h2>
<table><tr><th>window</th><th>service</th><th>type</th><th>severity</th><th>actual</th>
<th>expected</th><th>z</th><th>template</th><th>incident</th></tr>
{"".join(rows)}</table></body></html>
""")
    return report
