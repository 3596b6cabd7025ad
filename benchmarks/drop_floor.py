"""How far a service's lines must fall below what logml expects before a drop can be told
from ordinary wander, measured on the TUNING scenarios of ``logml.hardgen`` (held-out
scenarios stay unseen), and where each labelled seasonal incident and gradual volume loss
stands against that floor at the last window that still counts as in time (the window
holding its start + 2 windows, as ``logml eval`` counts).

Per service total, off incidents and after the probation day: the relative deviation
d = (lines - expected) / expected of every window, its lower semi-deviation (the spread a
drop test has to beat), its lag-1 autocorrelation and the variance ratio of k-window sums
(1 = independent windows). Per incident: d at each window from its onset to the deadline,
and z = d / (lower semi-deviation of the service), the most negative z up to the deadline.
A single window needs about z = -3.7 for p = 1e-4 (critical) before any correction.
Writes benchmarks/results/drop_floor.json.

    python -m benchmarks.drop_floor [--only NAME ...]
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from logml.config import Config
from logml.pipeline import Pipeline
from logml.sinks.jsonl import JsonlSink

from . import scenarios

BLOCK = 8 << 20
AFTER_S = 1800.0  # an incident's aftermath (baselines settling) is not "ordinary"


def windows_of(events: Path, out: Path) -> tuple[list[str], np.ndarray]:
    """Run the default pipeline over events (documents to out); every scored service
    window as (start, service index, lines, expected lines)."""
    sink = JsonlSink(out)
    pipe = Pipeline(Config(), sink)
    rows: list[tuple] = []
    score = pipe.detector.score

    def recording(*args, **kw):
        det = score(*args, **kw)
        rows.extend((w.start, w.service, w.lines, w.expected_lines) for w in det.windows)
        return det

    pipe.detector.score = recording
    line = offset = 0
    with open(events, "rb") as f:
        rest = b""
        while True:
            chunk = f.read(BLOCK)
            data = rest + chunk
            if not chunk:
                if data:
                    pipe.process_block(data, line, "input", offset + len(data))
                break
            cut = data.rfind(b"\n") + 1
            block, rest = data[:cut], data[cut:]
            if block:
                offset += len(block)
                pipe.process_block(block, line, "input", offset)
                line += block.count(b"\n")
    pipe.finish()
    sink.close()
    return [s.name for s in pipe.engine.services], np.array(rows, dtype=np.float64)


def _var_ratio(d: np.ndarray, k: int) -> float:
    if len(d) < 10 * k:
        return float("nan")
    c = np.concatenate([[0.0], np.cumsum(d - d.mean())])
    sums = c[k:] - c[:-k]
    return float(np.var(sums) / (k * np.var(d)))


def analyse(sc: dict, tmp: Path) -> dict:
    gen = tmp / sc["name"]
    subprocess.run([sys.executable, "-m", "logml.cli", "generate", "--hard", "--seed",
                    str(sc["seed"]), "--hours", str(sc["hours"]), "--services",
                    str(sc["services"]), "--rate", str(sc["rate"]), "--out", str(gen)],
                   check=True, capture_output=True)
    labels = json.loads((gen / "labels.json").read_text())
    names, rows = windows_of(gen / "events.jsonl", tmp / (sc["name"] + "-out"))
    W = float(labels.get("window_seconds_hint", 60))
    t0 = float(labels["start"]) + float(labels.get("probation_seconds", 0))
    services, incidents = {}, []
    for si, name in enumerate(names):
        r = rows[rows[:, 1] == si]
        r = r[np.argsort(r[:, 0], kind="stable")]
        t, x, mu = r[:, 0], r[:, 2], np.maximum(r[:, 3], 1e-3)
        d = (x - mu) / mu
        off = t >= t0
        mine = [i for i in labels["incidents"] if i["service"] == name]
        for i in mine:
            on = float(i.get("onset", i["start"]))
            off &= ~((t >= on - W) & (t <= float(i["end"]) + AFTER_S))
        if off.sum() < 100:  # too little ordinary traffic to say what ordinary is
            continue
        do = np.clip(d[off], -1.0, 1.0)  # a burst must not decide the spread of drops
        lo = math.sqrt(2.0 * float(np.mean(np.minimum(do, 0.0) ** 2)))
        services[name] = {
            "windows_off_incident": int(off.sum()),
            "median_expected": round(float(np.median(mu[off])), 1),
            "poisson_sd_rel": round(float(np.median(1.0 / np.sqrt(mu[off]))), 4),
            "lower_semi_sd_rel": round(lo, 4),
            "quantile_1e-3_rel": round(float(np.quantile(do, 1e-3)), 4),
            "lag1_autocorrelation": round(float(np.corrcoef(do[1:], do[:-1])[0, 1]), 3),
            "variance_ratio_k_sums": {str(k): round(_var_ratio(do, k), 2) for k in (2, 3, 4, 8)}}
        for i in mine:
            kind = i["type"] + (f"-{i['kind']}" if "kind" in i else "")
            if kind not in ("seasonal", "gradual-drop"):
                continue
            on, start = float(i.get("onset", i["start"])), float(i["start"])
            # windows from the one before the onset to the last one in time
            w = (t >= on - W) & (np.ceil((t - start) / W - 1e-9) <= 2)
            if not w.any():
                continue
            z = d[w] / lo
            last = np.flatnonzero(w)[-1]
            incidents.append({
                "id": i["id"], "service": name, "type": kind,
                "windows_onset_to_deadline": int(w.sum()),
                "expected_at_deadline": round(float(mu[last]), 1),
                "deficit_at_deadline_rel": round(float(d[last]), 3),
                "z_at_deadline": round(float(z[-1]), 2),
                "z_most_negative": round(float(z.min()), 2)})
    return {**sc, "services": services, "incidents": incidents}


def main(argv=None) -> int:
    out = []
    picked, partial = scenarios.chosen(argv, __doc__, scenarios.SETS[:1])  # tuning only
    with tempfile.TemporaryDirectory() as tmp:
        for _, sc in picked:
            row = analyse(sc, Path(tmp))
            out.append(row)
            print(sc["name"], json.dumps(row["incidents"]), flush=True)
    inc = [i for row in out for i in row["incidents"]]
    summary = {}
    for kind in ("seasonal", "gradual-drop"):
        zs = [i["z_most_negative"] for i in inc if i["type"] == kind]
        summary[kind] = {"incidents": len(zs),
                         "z_most_negative_median": float(np.median(zs)) if zs else None,
                         "beyond_z_3.7": sum(z <= -3.7 for z in zs),
                         "beyond_z_3.0": sum(z <= -3.0 for z in zs)}
    lo = [s["lower_semi_sd_rel"] for row in out for s in row["services"].values()]
    lag = [s["lag1_autocorrelation"] for row in out for s in row["services"].values()]
    scenarios.write("drop_floor.json", {
        "what": __doc__.split("\n\n")[0].replace("\n", " "),
        "summary": {**summary,
                    "lower_semi_sd_rel_median": float(np.median(lo)) if lo else None,
                    "lag1_autocorrelation_median": float(np.median(lag)) if lag else None},
        "scenarios": out}, partial)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
