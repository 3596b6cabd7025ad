"""Detection A/B on the hard scenarios: the detector at a git revision (default HEAD)
against the working tree, scenario by scenario, through the real commands (``logml run``,
``logml eval``), and what changed: incidents in time, false alarms by severity, NAB, every
incident whose delay or highest severity moved and every false alarm only one side raised.

    python -m benchmarks.detector_ab [--base REV] [--set tuning|held-out] [--only NAME ...]
                                     [--jobs N] [--keep DIR]

A change is tuned on ``--set tuning`` (the default here); held-out scenarios check a
finished one, with a rule written down first (docs/heldout-checks.md), and the fresh pair
runs only when named with --only. The revision is checked out with ``git worktree`` into a
temporary directory (its numba kernels compile on first use); generated streams are cached
in ~/.cache/logml/hard (the working tree's generator), outputs go to --keep (default: a
temporary directory, removed). Prints; writes nothing into the repository.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from logml.hardgen import FRESH_SCENARIOS, HELDOUT_SCENARIOS, TUNING_SCENARIOS

from .hard_eval import generate, logml

REPO = Path(__file__).resolve().parents[1]
CACHE = Path.home() / ".cache" / "logml" / "hard"


def generated(sc: dict) -> Path:
    """The scenario's stream and labels, generated once and cached."""
    d = CACHE / f"{sc['name']}-{sc['seed']}-{sc['hours']}-{sc['services']}-{sc['rate']}"
    if not (d / "labels.json").exists():
        generate(sc, d)
    return d


def run_one(tree: Path, sc: dict, out: Path) -> dict:
    gen = generated(sc)
    logml("run", "--input", gen / "events.jsonl", "--output", out, cwd=tree)
    return json.loads(logml("eval", out / "anomalies.jsonl", gen / "labels.json", "--json",
                            cwd=tree))


def _false(r: dict, severity: str) -> int:
    return sum(1 for g in r["false_alarms"] if g["severity"] == severity)


def summary(r: dict) -> dict:
    """One side of one scenario: what the comparison table shows."""
    return {"in_time": r["totals"]["detected_in_time"], "incidents": r["totals"]["incidents"],
            "critical": _false(r, "critical"), "warning": _false(r, "warning"),
            "nab": r["nab"]["standard"]["score"]}


def compare(a: dict, b: dict) -> dict:
    """Two ``logml eval --json`` results of one scenario (base, change): the summaries, the
    incidents whose delay or highest severity differ, and the false alarm groups (key,
    severity) only one side raised."""
    inc_b = {i["id"]: i for i in b["incidents"]}
    moved = [{"id": i["id"], "type": i["type"], "service": i["service"],
              "delay": [i["delay_windows"], inc_b[i["id"]]["delay_windows"]],
              "severity": [i["max_severity"], inc_b[i["id"]]["max_severity"]]}
             for i in a["incidents"] if i["id"] in inc_b
             and (i["delay_windows"], i["max_severity"])
             != (inc_b[i["id"]]["delay_windows"], inc_b[i["id"]]["max_severity"])]

    def groups(r):
        return {(g["key"], g["severity"]) for g in r["false_alarms"]}
    ga, gb = groups(a), groups(b)
    return {"base": summary(a), "change": summary(b), "incidents_moved": moved,
            "false_alarms_only_base": sorted(ga - gb),
            "false_alarms_only_change": sorted(gb - ga)}


def _line(name: str, a: dict, b: dict) -> str:
    return (f"{name:14s} {a['in_time']:>3d} -> {b['in_time']:>3d}/{b['incidents']:<4d} "
            f"{a['critical']:>7d} -> {b['critical']:<4d} {a['warning']:>6d} -> "
            f"{b['warning']:<4d} {a['nab']:>6.1f} -> {b['nab']:<6.1f}")


def report(rows: dict[str, dict]) -> str:
    out = [f"{'scenario':14s} {'in time':>15s} {'false critical':>16s} "
           f"{'false warning':>15s} {'NAB':>15s}"]
    tot = {side: {"in_time": 0, "incidents": 0, "critical": 0, "warning": 0, "nab": 0.0}
           for side in ("base", "change")}
    for name, c in rows.items():
        out.append(_line(name, c["base"], c["change"]))
        for side in tot:
            for k in tot[side]:
                tot[side][k] += c[side][k]
    out.append(_line("total", tot["base"], tot["change"]))
    for name, c in rows.items():
        for m in c["incidents_moved"]:
            out.append(f"{name}: {m['id']} {m['type']} {m['service']}: delay "
                       f"{m['delay'][0]} -> {m['delay'][1]}, highest severity "
                       f"{m['severity'][0]} -> {m['severity'][1]}")
        for side in ("base", "change"):
            for key, sev in c[f"false_alarms_only_{side}"]:
                out.append(f"{name}: false {sev} only on the {side}: {key}")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default="HEAD", help="git revision to compare against")
    ap.add_argument("--set", choices=("tuning", "held-out"), default="tuning")
    ap.add_argument("--only", nargs="*", help="scenario names (the fresh pair only so)")
    ap.add_argument("--jobs", type=int, default=2, help="runs at once")
    ap.add_argument("--keep", type=Path, help="keep the runs' outputs in this directory")
    args = ap.parse_args(argv)
    every = TUNING_SCENARIOS + HELDOUT_SCENARIOS + FRESH_SCENARIOS
    if args.only:
        picked = [sc for sc in every if sc["name"] in args.only]
        unknown = set(args.only) - {sc["name"] for sc in picked}
        if unknown:
            ap.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    else:
        picked = TUNING_SCENARIOS if args.set == "tuning" else HELDOUT_SCENARIOS
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base_tree = tmp / "base"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(base_tree), args.base],
                       cwd=REPO, check=True)
        try:
            outs = args.keep or tmp / "out"
            for sc in picked:  # generate first, once, before the runs race for it
                generated(sc)
            jobs = [(side, tree, sc) for sc in picked
                    for side, tree in (("base", base_tree), ("change", REPO))]
            with ThreadPoolExecutor(max(args.jobs, 1)) as pool:
                results = list(pool.map(
                    lambda j: run_one(j[1], j[2], outs / j[0] / j[2]["name"]), jobs))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base_tree)],
                           cwd=REPO, check=False)
    rows = {sc["name"]: compare(results[2 * k], results[2 * k + 1])
            for k, sc in enumerate(picked)}
    print(report(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
