"""Detection quality on the hard scenarios (``logml generate --hard``): every tuning and
held-out scenario of ``logml.hardgen`` through the real commands (generate, run, eval),
one after another. Writes benchmarks/results/hard_scenarios.json (the README table).

    python -m benchmarks.hard_eval [--only NAME ...] [--set tuning|held-out]

A run of part of the scenarios writes hard_scenarios.partial.json (untracked) instead.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from . import scenarios


def logml(*args, cwd=None) -> str:
    """A ``logml`` command's output; ``cwd``: the checkout whose code runs (this one)."""
    p = subprocess.run([sys.executable, "-m", "logml.cli", *map(str, args)], cwd=cwd,
                       capture_output=True, text=True, timeout=3600)
    if p.returncode != 0:
        raise SystemExit(f"logml {args[0]} failed: {p.stderr[-2000:]}")
    return p.stdout


def generate(sc: dict, out: Path) -> None:
    logml("generate", "--hard", "--seed", sc["seed"], "--hours", sc["hours"], "--services",
          sc["services"], "--rate", sc["rate"], "--out", out)


def _by_type(false_alarms: list[dict]) -> dict:
    """False alarm groups by severity, then by their anomalies' types ("drop+spike" for a
    group of both): what the budget is spent on."""
    out: dict = {}
    for g in false_alarms:
        out.setdefault(g["severity"], Counter())["+".join(g["types"])] += 1
    return {sev: dict(sorted(c.items())) for sev, c in sorted(out.items())}


def evaluate(sc: dict, tmp: Path) -> dict:
    gen, out = tmp / sc["name"], tmp / (sc["name"] + "-out")
    generate(sc, gen)
    t = time.time()
    logml("run", "--input", gen / "events.jsonl", "--output", out)
    run_s = time.time() - t
    r = json.loads(logml("eval", out / "anomalies.jsonl", gen / "labels.json", "--json"))
    tot, per_sd = r["totals"], r["false_alarms_per_service_day"]
    return {**sc, "incidents": tot["incidents"], "in_time": tot["detected_in_time"],
            "in_time_through_earlier_alarm": tot["in_time_through_earlier_alarm"],
            "recall": r["recall"], "recall_any_delay": r["recall_any_delay"],
            "recall_by_type": {k: f"{v['detected_in_time']}/{v['incidents']}"
                               for k, v in r["recall_by_type"].items()},
            "false_critical_per_service_day": round(per_sd["critical"], 3),
            "false_warning_per_service_day": round(per_sd["warning"], 3),
            "false_alarms_by_type": _by_type(r["false_alarms"]),
            "service_days": round(r["service_days"], 3),
            "nab": {k: round(v["score"], 1) for k, v in r["nab"].items()},
            "run_seconds": round(run_s, 1)}


def main(argv=None) -> int:
    rows = []
    picked, partial = scenarios.chosen(argv, __doc__)
    for kind, sc in picked:
        with tempfile.TemporaryDirectory() as tmp:  # one stream on disk at a time (~1 GB)
            row = {"set": kind, **evaluate(sc, Path(tmp))}
        rows.append(row)
        print(json.dumps(row), flush=True)
    scenarios.write("hard_scenarios.json", {
        "window_seconds": 60, "max_delay_windows": 2,
        "budget": {"false_critical_per_service_day": 1.0,
                   "false_warning_per_service_day": 2.0, "recall": 1.0},
        "scenarios": rows}, partial)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
