"""How detectable are the hard scenarios' slow drops in time, for any detector?

For every drop-like incident (``drop``, ``seasonal``, ``gradual`` of kind drop) of the
tuning and held-out scenarios, this measures the evidence its service's line counts hold
by its deadline (the window starting at most ``max_delay_windows`` after its labelled
start), against an *oracle* expectation: the generator's own noiseless rate (rhythm,
trend, schedules; ``hardgen.expected_lines``), which no real detector knows. The evidence
is the best of trailing sums over 1-32 windows, z = sum(x - oracle) / sqrt(sum oracle),
each scale ranked against the same statistic on the service's ordinary windows (after the
probation day, away from incidents) and the smallest rank-probability taken.

The threshold that would catch an incident in time is its own evidence; the ordinary
windows at least as extreme, grouped as ``logml eval`` groups alarms, are the false alarms
per service-day that any detector of this kind, with a perfect baseline, would raise to
catch it. Where that exceeds the warning budget (2 per service-day), catching the
incident in time and keeping the budget conflict on this data. The same evidence against
logml's own expectation (``logml.expected_lines`` of a real ``logml run``'s window
documents, ranked the same way) shows how much of it logml's baseline keeps; logml's
in-time result comes from ``logml eval`` of that run. Oracle column to baseline column:
what the baseline loses; baseline column to in-time result: what the tests lose.

The ranks are each service's own (its ordinary windows of the whole stream, looking
ahead), so "within the budget" is one threshold per service, set where that service's
ordinary windows would raise the budget's false alarms: a test that spends the whole
warning budget on slow drops. ``caught_by_budget`` counts the incidents caught in time
when such a test gets only part of it (0.5, 1 or 2 false alarms a service-day), against
the oracle and against logml's expectation, by type.

Each service also gets the spread of those sums on its ordinary windows (``noise``: a
robust sd of z, 1 for Poisson counts around an exact rate) against the oracle and against
logml's expectation, on ramps (the oracle's rate changes by more than RAMP in the hour
around the window) and off them: what logml's baseline adds to the noise a test must
tolerate, and where.

    python -m benchmarks.detectability [--only NAME ...] [--set tuning|held-out]

Writes benchmarks/results/detectability.json (detectability.partial.json, untracked, for part
of the scenarios).
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import orjson

from logml import cli
from logml.evaluate import evaluate, load_anomalies
from logml.hardgen import expected_lines

from . import scenarios

W = 60.0
DEADLINE_WINDOWS = 2
SCALES = (1, 2, 4, 8, 16, 32)
WARNING_BUDGET = 2.0  # false warnings per service-day (issue 11)
GROUP_GAP = 2         # windows: alarms closer than this are one false alarm (logml eval)
DROP_TYPES = ("drop", "seasonal", "gradual")
NOISE_SCALES = (1, 4, 16)  # windows: the spreads reported
RAMP = 0.5                 # relative change of the oracle's rate over an hour
MAD_TO_SD = 1.4826
BUDGETS = (0.5, 1.0, 2.0)  # false alarms a service-day a slow-drop test may spend


def per_window(path: Path, names: list[str], t0: float, n_windows: int,
               value) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(service index, window index, value(document)) of every JSON line of path: events
    or window documents, binned by their @timestamp."""
    index = {n: i for i, n in enumerate(names)}
    svc, ts, vals = [], [], []
    with open(path, "rb") as f:
        for line in f:
            d = orjson.loads(line)
            svc.append(index[d["service"]["name"]])
            ts.append(d["@timestamp"].rstrip("Z"))
            vals.append(value(d))
    sec = np.array(ts, dtype="datetime64[ms]").astype(np.int64) / 1000.0
    w = np.clip(((sec - t0) // W).astype(np.int64), 0, n_windows - 1)
    return np.array(svc, np.int64), w, np.array(vals, np.float64)


def counts(events: Path, names: list[str], t0: float, n_windows: int) -> np.ndarray:
    """Lines per service and window of a generated stream."""
    svc, w, one = per_window(events, names, t0, n_windows, lambda d: 1.0)
    out = np.zeros((len(names), n_windows))
    np.add.at(out, (svc, w), one)
    return out


def trailing(a: np.ndarray, k: int) -> np.ndarray:
    """Sums over the last k windows (NaN before k windows exist)."""
    c = np.concatenate([[0.0], np.cumsum(a)])
    out = np.full(len(a), np.nan)
    out[k - 1:] = c[k:] - c[:-k]
    return out


def episodes(hit: np.ndarray) -> int:
    """Alarms grouped: windows that fire less than GROUP_GAP apart are one alarm."""
    idx = np.flatnonzero(hit)
    if not len(idx):
        return 0
    return int(1 + np.sum(np.diff(idx) > GROUP_GAP))


def logml_run(events: Path, labels: dict, names: list[str], t0: float, n_windows: int,
              tmp: Path) -> tuple[dict[str, bool], np.ndarray]:
    """``logml run`` (defaults) on the stream: (incident id -> found in time, each service's
    expected lines per window, ``logml.expected_lines`` of its window documents; NaN
    where it has none)."""
    out = tmp / "out"
    cli.main(["run", "--input", str(events), "--output", str(out)])
    result = evaluate(load_anomalies(out / "anomalies.jsonl"), labels, int(W), DEADLINE_WINDOWS)
    mu = np.full((len(names), n_windows), np.nan)
    svc, w, expected = per_window(out / "windows.jsonl", names, t0, n_windows,
                                  lambda d: d["logml"]["expected_lines"])
    mu[svc, w] = expected
    return {r["id"]: r["detected_in_time"] for r in result["incidents"]}, mu


def evidence(x: np.ndarray, base: np.ndarray, null: np.ndarray) -> tuple:
    """(z of the trailing sums at every scale, their ranks among the ordinary windows
    (lower tail), the smallest rank of each window): ``x`` against ``base``."""
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.array([trailing(x - base, k) / np.sqrt(trailing(base, k)) for k in SCALES])
    ranks = np.ones(z.shape)
    for j in range(len(SCALES)):
        ok = np.isfinite(z[j])
        ref = np.sort(z[j][null & ok])
        ranks[j][ok] = (np.searchsorted(ref, z[j][ok], side="right") + 1) / (len(ref) + 1)
    return z, ranks, ranks.min(axis=0)


def robust_sd(z: np.ndarray) -> float | None:
    """MAD-based sd of the finite values of z (None for fewer than 30)."""
    z = z[np.isfinite(z)]
    if len(z) < 30:
        return None
    return round(float(MAD_TO_SD * np.median(np.abs(z - np.median(z)))), 3)


def ramps(lam: np.ndarray, half: int = 30) -> np.ndarray:
    """Windows where the oracle's rate changes by more than RAMP over the hour around."""
    ahead = np.concatenate([lam[half:], np.repeat(lam[-1:], half)])
    behind = np.concatenate([np.repeat(lam[:1], half), lam[:-half]])
    return np.abs(ahead - behind) > RAMP * np.maximum(lam, 1e-9)


def noise(z_oracle: np.ndarray, z_logml: np.ndarray, null: np.ndarray,
          ramp: np.ndarray) -> dict:
    """Spread of the trailing sums' z on ordinary windows, per scale, off ramps and on."""
    out = {}
    for k in NOISE_SCALES:
        j = SCALES.index(k)
        for where, mask in (("flat", null & ~ramp), ("ramp", null & ramp)):
            out[f"{where}_{k}"] = {"windows": int(mask.sum()),
                                   "oracle": robust_sd(z_oracle[j][mask]),
                                   "logml": robust_sd(z_logml[j][mask])}
    return out


def at_deadline(p: np.ndarray, allowed: np.ndarray, null: np.ndarray,
                service_days: float) -> tuple[int, float]:
    """(the allowed window with the strongest evidence, the false alarms a service-day
    that ordinary windows as extreme would raise)."""
    best = int(allowed[np.argmin(p[allowed])])
    return best, episodes(null & (p <= p[best])) / service_days


def caught_by_budget(rows: list[dict]) -> dict:
    """Per budget of BUDGETS, per type: the incidents whose evidence a threshold that
    raises at most that many false alarms a service-day on their service would catch, on
    the oracle and on logml's expectation (the rows' own false-alarm measures)."""
    out = {}
    for budget in BUDGETS:
        for who, key in (("oracle", "false_alarms_per_service_day"),
                         ("logml", "logml_baseline_false_alarms_per_service_day")):
            entry = out.setdefault(f"{budget:g}", {}).setdefault(who, {})
            for row in rows:
                entry[row["type"]] = entry.get(row["type"], 0) + int(row[key] <= budget)
    return out


def analyse(sc: dict, tmp: Path) -> dict:
    gen = tmp / sc["name"]
    cli.main(["generate", "--hard", "--seed", str(sc["seed"]), "--hours", str(sc["hours"]),
              "--services", str(sc["services"]), "--rate", str(sc["rate"]), "--out", str(gen)])
    labels = json.loads((gen / "labels.json").read_text())
    names, starts, lam = expected_lines(sc["seed"], sc["hours"], sc["services"], None,
                                        sc["rate"], W)
    x = counts(gen / "events.jsonl", names, starts[0], len(starts))
    found, mu = logml_run(gen / "events.jsonl", labels, names, starts[0], len(starts), tmp)
    t_null = labels["start"] + labels["probation_seconds"]
    rows, spreads = [], {}
    for si, name in enumerate(names):
        mine = [c for c in labels["incidents"] if c["service"] == name]
        null = starts >= t_null
        for c in mine:  # trailing sums must not reach into an incident
            null &= ~((starts >= c.get("onset", c["start"]) - W)
                      & (starts <= c["end"] + max(SCALES) * W))
        service_days = null.sum() * W / 86400.0
        z, ranks, p = evidence(x[si], lam[si], null)
        z_logml, _, p_logml = evidence(x[si], mu[si], null)
        spreads[name] = noise(z, z_logml, null, ramps(lam[si]))
        for c in mine:
            if c["type"] not in DROP_TYPES or c.get("kind", "drop") != "drop":
                continue
            lo, hi = c.get("onset", c["start"]) - W, c["start"] + DEADLINE_WINDOWS * W
            allowed = np.flatnonzero((starts >= lo) & (starts <= hi))
            best, fa = at_deadline(p, allowed, null, service_days)
            best_logml, fa_logml = at_deadline(p_logml, allowed, null, service_days)
            j = int(np.argmin(ranks[:, best]))
            k = SCALES[j]
            seen = x[si][best - k + 1:best + 1].sum()
            expected = lam[si][best - k + 1:best + 1].sum()
            rows.append({
                "scenario": sc["name"], "id": c["id"], "type": c["type"], "service": name,
                "expected_per_window": round(float(lam[si][best]), 1),
                "best_scale_windows": k, "shortfall": round(1.0 - seen / expected, 3),
                "z": round(float(z[j][best]), 2), "p": float(p[best]),
                "p_logml": float(p_logml[best_logml]),
                "false_alarms_per_service_day": round(fa, 2),
                "within_warning_budget": bool(fa <= WARNING_BUDGET),
                "logml_baseline_false_alarms_per_service_day": round(fa_logml, 2),
                "within_warning_budget_on_logml_baseline": bool(fa_logml <= WARNING_BUDGET),
                "logml_in_time": found.get(c["id"])})
    return {"name": sc["name"], "seed": sc["seed"], "incidents": rows, "noise": spreads}


def main(argv=None) -> int:
    out = []
    picked, partial = scenarios.chosen(argv, __doc__)
    for kind, sc in picked:
        with tempfile.TemporaryDirectory() as tmp:  # one stream on disk at a time (~1 GB)
            r = {"set": kind, **analyse(sc, Path(tmp) / sc["name"])}
        out.append(r)
        for row in r["incidents"]:
            print(json.dumps(row), flush=True)
    summary = {}
    for r in out:
        for row in r["incidents"]:
            s = summary.setdefault(row["type"], dict.fromkeys(
                ("incidents", "within_warning_budget", "within_warning_budget_on_logml_baseline",
                 "logml_in_time"), 0))
            s["incidents"] += 1
            for key in ("within_warning_budget", "within_warning_budget_on_logml_baseline",
                        "logml_in_time"):
                s[key] += bool(row[key])
    noise_summary = {}
    for key in (f"{where}_{k}" for k in NOISE_SCALES for where in ("flat", "ramp")):
        for who in ("oracle", "logml"):
            v = [s[key][who] for r in out for s in r["noise"].values() if s[key][who]]
            noise_summary.setdefault(key, {})[who] = round(float(np.median(v)), 2) if v else None
    by_budget = caught_by_budget([row for r in out for row in r["incidents"]])
    scenarios.write("detectability.json", {
        "window_seconds": W, "max_delay_windows": DEADLINE_WINDOWS,
        "scales_windows": list(SCALES), "warning_budget_per_service_day": WARNING_BUDGET,
        "summary_by_type": summary, "noise_median_over_services": noise_summary,
        "caught_by_budget": by_budget,
        "scenarios": out}, partial)
    print(json.dumps(summary))
    print(json.dumps(noise_summary))
    print(json.dumps(by_budget))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
