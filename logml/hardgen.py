"""Harder synthetic traffic (``logml generate --hard``): what real services do to a detector.

Per service, on top of ``generate``'s log families:

* **many small templates**: 25-45 extra templates sharing ~6 % of the lines (Zipf), some of
  them seen a few times a day;
* **scheduled templates**: a few of the small ones run only in one hour of the day (a
  nightly job), silent the rest of the time;
* **bursty, heavy-tailed templates**: about a third of the family's templates burst a few
  times an hour for 15-90 s at Pareto-distributed multiples (x3, sometimes x40);
* **daily rhythm**: a business day (night at 10-40 % of the day, ramps of about two hours),
  shifted by the service's time zone; **weekly rhythm**: weekends at 45-85 % of weekdays;
  **holidays**: in streams of 4+ days, one weekday with the weekend's pattern, deeper;
* **trend**: a slow drift of -8 %..+12 % a day; slow multiplicative noise.

Labelled incidents (after the first day of a multi-day stream, else after a quarter):
``spike``, ``drop``, ``new_template``, ``error_rate`` as in ``generate``, and

* ``gradual``: an error share or a volume loss that builds over 10 minutes, then holds;
* ``seasonal``: during the morning ramp the traffic stops rising and stays at its current
  level for 1-2 hours: nothing unusual for a flat baseline, a failure against the rhythm.

Gradual and seasonal incidents have an ``onset`` (the change begins) before their
``start``, the moment the change is material: a third of its full size (gradual) or 30 %
below the usual traffic for the hour (seasonal). ``logml eval`` matches anomalies from
the onset and measures delay from the start.

The stream is built in six-hour chunks (all services, sorted), so days of traffic never
sit in memory at once; one ``numpy.random.Generator(PCG64(seed))`` drives everything.
"""
from __future__ import annotations

import math
import time

import numpy as np

from .generate import (FAMILIES, NOVEL, _compile, _family_of, _Pools, _ts_prefixes,
                       emit_lines, service_names)

HARD_INCIDENT_TYPES = ("spike", "drop", "new_template", "error_rate", "gradual", "seasonal")
CHUNK_S = 6 * 3600

_COMPONENTS = ["billing", "ledger", "audit", "export", "quota", "mailer", "inventory",
               "pricing", "catalog", "shipping", "refund", "report", "token", "webhook",
               "metrics", "backup", "loyalty", "tax", "fraud", "consent", "geo", "media"]
_ACTIONS = ["reconciled", "flushed", "rotated", "compacted", "validated", "synced",
            "expired", "rebuilt", "throttled", "migrated", "sampled", "archived"]
_NOUNS = ["rows", "entries", "keys", "records", "objects", "segments", "batches"]

# scenarios: tune on the first list only; the second is the held-out evaluation
TUNING_SCENARIOS = [
    {"name": "tune-2d", "seed": 11, "hours": 48, "services": 4, "rate": 2.0},
    {"name": "tune-1d", "seed": 12, "hours": 30, "services": 3, "rate": 4.0},
    {"name": "tune-3d", "seed": 13, "hours": 72, "services": 4, "rate": 1.5},
    {"name": "tune-2e", "seed": 14, "hours": 48, "services": 5, "rate": 3.0},
    {"name": "tune-3f", "seed": 15, "hours": 72, "services": 4, "rate": 1.5},
    {"name": "tune-2g", "seed": 16, "hours": 48, "services": 5, "rate": 2.0},
    {"name": "tune-3h", "seed": 17, "hours": 72, "services": 4, "rate": 2.0},
    {"name": "tune-2h", "seed": 18, "hours": 48, "services": 5, "rate": 2.0},
    # added in session 15: three days of five services, as the held-out scenarios with the
    # most false critical drops (the seven above but tune-1d have one in 43 service-days)
    {"name": "tune-3j", "seed": 4243, "hours": 72, "services": 5, "rate": 2.0},
    {"name": "tune-3k", "seed": 5557, "hours": 72, "services": 5, "rate": 2.0},
    # added in session 17, after two changes aimed at bursty templates' false spike
    # warnings moved nothing on their fresh pairs: more of those warnings to tune on
    {"name": "tune-3l", "seed": 7219, "hours": 72, "services": 5, "rate": 2.0},
    {"name": "tune-2m", "seed": 3373, "hours": 48, "services": 4, "rate": 1.5},
    {"name": "tune-3n", "seed": 8629, "hours": 72, "services": 4, "rate": 1.5},
    # added in session 18: the held-out scenarios find 17 of 161 spikes late, the thirteen
    # above 1 of 69; more spikes (and false spike alarms) to tune on
    {"name": "tune-3p", "seed": 1931, "hours": 72, "services": 4, "rate": 1.5},
    {"name": "tune-2q", "seed": 5417, "hours": 48, "services": 5, "rate": 2.0},
    {"name": "tune-3r", "seed": 7753, "hours": 72, "services": 5, "rate": 1.5},
    {"name": "tune-2s", "seed": 3967, "hours": 48, "services": 4, "rate": 2.0},
    {"name": "tune-3t", "seed": 6323, "hours": 72, "services": 4, "rate": 2.0},
    {"name": "tune-2u", "seed": 2579, "hours": 48, "services": 5, "rate": 1.5},
]
HELDOUT_SCENARIOS = [
    {"name": "heldout-3d", "seed": 2718, "hours": 72, "services": 4, "rate": 1.5},
    {"name": "heldout-2d", "seed": 1618, "hours": 40, "services": 5, "rate": 2.0},
    # added in session 6 (the detector unchanged), so a budget verdict rests on 25.3
    # scored service-days, not 11.3
    {"name": "heldout-3e", "seed": 3141, "hours": 72, "services": 5, "rate": 2.0},
    {"name": "heldout-2f", "seed": 5772, "hours": 48, "services": 4, "rate": 1.5},
    # added in session 7 (the detector unchanged since its last held-out check), so a
    # budget verdict rests on 39.3 scored service-days
    {"name": "heldout-3g", "seed": 4669, "hours": 72, "services": 5, "rate": 1.5},
    {"name": "heldout-2h", "seed": 1414, "hours": 48, "services": 4, "rate": 2.0},
    # added in session 8 (the detector unchanged since its last held-out check): 52.3
    # scored service-days
    {"name": "heldout-3i", "seed": 8128, "hours": 72, "services": 4, "rate": 2.0},
    {"name": "heldout-2j", "seed": 2468, "hours": 48, "services": 5, "rate": 1.5},
    # added later in session 8, the detector unchanged (19f1cac), for a second check of
    # one change (docs/heldout-checks.md)
    {"name": "heldout-3k", "seed": 3301, "hours": 72, "services": 5, "rate": 2.0},
    {"name": "heldout-2l", "seed": 7071, "hours": 48, "services": 4, "rate": 1.5},
    # added in session 9, the detector unchanged (6aabeaa), for the check of route masking
    {"name": "heldout-3m", "seed": 6174, "hours": 72, "services": 4, "rate": 1.5},
    {"name": "heldout-2n", "seed": 9973, "hours": 48, "services": 5, "rate": 2.0},
    # added at the end of session 9, the detector unchanged (df8720c): unseen by any change
    {"name": "heldout-3o", "seed": 1123, "hours": 72, "services": 5, "rate": 1.5},
    {"name": "heldout-2p", "seed": 8191, "hours": 48, "services": 4, "rate": 2.0},
    # added at the start of session 10, the detector unchanged (df8720c), before anything
    # was run on them: a second fresh pair, for a second change
    {"name": "heldout-3q", "seed": 2207, "hours": 72, "services": 4, "rate": 2.0},
    {"name": "heldout-2r", "seed": 6029, "hours": 48, "services": 5, "rate": 1.5},
    # added later in session 10, the detector unchanged since its last check (e6bb570),
    # before anything was run on them, for the check of the second change (job hours)
    {"name": "heldout-3s", "seed": 4441, "hours": 72, "services": 5, "rate": 2.0},
    {"name": "heldout-2t", "seed": 7919, "hours": 48, "services": 4, "rate": 1.5},
    # added at the end of session 10, the detector unchanged since its last check
    # (job hours): session 11's fresh pair (the shortfall's slow level)
    {"name": "heldout-3u", "seed": 5381, "hours": 72, "services": 4, "rate": 1.5},
    {"name": "heldout-2v", "seed": 9241, "hours": 48, "services": 5, "rate": 2.0},
    # added in session 11 right after change C's check, the detector unchanged since;
    # session 13's first fresh pair (change D, not merged)
    {"name": "heldout-3w", "seed": 6659, "hours": 72, "services": 5, "rate": 2.0},
    {"name": "heldout-2x", "seed": 3821, "hours": 48, "services": 4, "rate": 1.5},
    # added in session 13 right after change D's check, the detector unchanged since;
    # session 15's fresh pair (change E, merged)
    {"name": "heldout-3y", "seed": 7477, "hours": 72, "services": 4, "rate": 1.5},
    {"name": "heldout-2z", "seed": 2953, "hours": 48, "services": 5, "rate": 2.0},
    # added in session 15 right after change E's merge, the detector unchanged since;
    # session 16's fresh pair (change F, not merged)
    {"name": "heldout-3ab", "seed": 3607, "hours": 72, "services": 5, "rate": 2.0},
    {"name": "heldout-2ac", "seed": 8837, "hours": 48, "services": 4, "rate": 1.5},
    # added in session 16 right after change F's check, the detector unchanged since;
    # session 17's fresh pair (change G, not merged)
    {"name": "heldout-3ad", "seed": 4111, "hours": 72, "services": 4, "rate": 1.5},
    {"name": "heldout-2ae", "seed": 6173, "hours": 48, "services": 5, "rate": 2.0},
    # added in session 17 right after change G's check, the detector unchanged since;
    # session 17's second fresh pair (change H, not merged)
    {"name": "heldout-3af", "seed": 5023, "hours": 72, "services": 5, "rate": 2.0},
    {"name": "heldout-2ag", "seed": 9311, "hours": 48, "services": 4, "rate": 1.5},
    # added in session 17 right after change H's check, the detector unchanged since;
    # session 19's fresh pair (change J3, merged)
    {"name": "heldout-3ah", "seed": 6481, "hours": 72, "services": 4, "rate": 2.0},
    {"name": "heldout-2ai", "seed": 2797, "hours": 48, "services": 5, "rate": 1.5},
    # added in session 19 right after change J3 was merged; session 19's second fresh
    # pair (change J4, not merged)
    {"name": "heldout-3aj", "seed": 7591, "hours": 72, "services": 5, "rate": 1.5},
    {"name": "heldout-2ak", "seed": 1289, "hours": 48, "services": 4, "rate": 2.0},
]
# The next change's fresh pair: held-out scenarios nothing has been run on yet, not even
# main (the benchmarks' full runs leave them out; name them with --only). Added in session
# 19 right after change J4's check, the detector unchanged since J3. Once checked, a pair
# joins HELDOUT_SCENARIOS.
FRESH_SCENARIOS = [
    {"name": "heldout-3al", "seed": 8423, "hours": 72, "services": 4, "rate": 2.0},
    {"name": "heldout-2am", "seed": 5147, "hours": 48, "services": 5, "rate": 1.5},
]
START = 1_764_028_800.0  # 2025-11-25 00:00 UTC, a Tuesday


def _small_templates(rng, n: int) -> list[tuple[str, str]]:
    pairs = [(c, a) for c in _COMPONENTS for a in _ACTIONS]
    pick = rng.permutation(len(pairs))[:n].tolist()
    out = []
    for k in pick:
        comp, act = pairs[k]
        noun = _NOUNS[k % len(_NOUNS)]
        out.append(("info", f"{comp} {act} {{int:1:900}} {noun} in {{ms:40}}ms "
                            f"(shard {{int:0:15}})"))
    return out


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


class _Service:
    """Everything drawn once per service: templates, mix, rhythm, bursts, trend."""

    def __init__(self, rng, si: int, name: str, rate: float, n_days: float):
        fam = FAMILIES[_family_of(si)]
        self.name, self.family = name, _family_of(si)
        self.pools = _Pools(rng)
        normal = [_compile(lv, sp) for lv, sp in fam["normal"]]
        errors = [_compile(lv, sp) for lv, sp in fam["error"]]
        small = [_compile(lv, sp) for lv, sp in _small_templates(rng, int(rng.integers(25, 46)))]
        self.templates = normal + errors + small
        self.n_norm, self.n_err, self.n_small = len(normal), len(errors), len(small)
        n_hosts = int(rng.integers(1, 4))
        self.hosts = [f"{name}-{i + 1:02d}" for i in range(n_hosts)]
        s = rng.uniform(1.0, 1.4)
        p_norm = 1.0 / np.arange(1, len(normal) + 1) ** s
        err_share = rng.uniform(0.005, 0.01)
        small_share = rng.uniform(0.04, 0.08)
        p_err = 1.0 / np.arange(1, len(errors) + 1) ** 1.5
        p_small = 1.0 / np.arange(1, len(small) + 1) ** 1.1
        self.probs = np.concatenate([p_norm / p_norm.sum() * (1 - err_share - small_share),
                                     p_err / p_err.sum() * err_share,
                                     p_small / p_small.sum() * small_share])
        self.rate = rate
        # rhythm
        self.tz = float(rng.uniform(-3.0, 3.0))
        self.night = float(rng.uniform(0.10, 0.40))
        self.up = float(rng.uniform(6.5, 9.0))
        self.down = float(rng.uniform(17.5, 21.0))
        self.weekend = float(rng.uniform(0.45, 0.85))
        self.trend = float(rng.uniform(-0.08, 0.12))  # per day, in log
        # scheduled templates: a few small ones run in one hour of the day only
        k = min(3, len(small))
        self.scheduled = (len(normal) + len(errors)
                          + rng.choice(len(small), k, replace=False)).tolist()
        self.sched_hour = rng.integers(0, 24, k).tolist()
        # bursty templates: about a third of the family's, not the busiest
        cand = np.arange(1, len(normal))
        self.bursty = rng.choice(cand, max(1, len(cand) // 3), replace=False).tolist()
        self.burst_rate = rng.uniform(0.5, 3.0, len(self.bursty)).tolist()  # per hour
        self.noise_state = 0.0
        # normalise the rhythm so the mean rate over a week is `rate`
        t = np.arange(0, 7 * 86400, 600, dtype=np.float64) + START
        self.norm = 1.0
        self.norm = float(np.mean(self.rhythm(t, holidays=())))

    def day_shape(self, hour):
        """Daytime share 0..1 of the business-day curve at local hour."""
        return _smoothstep((hour - self.up) / 2.0) * (1.0 - _smoothstep((hour - self.down) / 3.0))

    def rhythm(self, t_abs, holidays=()):
        local = t_abs + self.tz * 3600.0
        hour = (local % 86400.0) / 3600.0
        day = np.floor(local / 86400.0)
        dow = (day + 3) % 7  # Monday = 0
        f = np.where(dow >= 5, self.weekend, 1.0)
        for h in holidays:
            f = np.where(day == h, self.weekend * 0.7, f)
        return (self.night + (1.0 - self.night) * self.day_shape(hour) * f) / self.norm

    def level(self, t_abs, rh, start: float) -> np.ndarray:
        """Lines a second at t_abs before noise: the rate, its rhythm rh there, the trend."""
        return self.rate * rh * np.exp(self.trend * (t_abs - start) / 86400.0)

    def schedule(self, t_abs):
        """(template column, lines a second) of each scheduled template at t_abs: 30x its
        share in its hour, nothing otherwise."""
        hour = (((t_abs + self.tz * 3600.0) % 86400.0) // 3600.0).astype(np.int64)
        for col, h in zip(self.scheduled, self.sched_hour):
            yield col, np.where(hour == h, 30.0 * self.rate * self.probs[col], 0.0)

    def noise(self, rng, n: int) -> np.ndarray:
        m = n // 60 + 2
        eps = rng.normal(0.0, 0.04, m)
        x = np.empty(m)
        acc = self.noise_state
        for i, e in enumerate(eps.tolist()):
            acc = 0.8 * acc + e
            x[i] = acc
        self.noise_state = acc
        return np.exp(np.interp(np.arange(n) / 60.0, np.arange(m), x))


_OTHERS = [t for t in HARD_INCIDENT_TYPES if t != "seasonal"]
_MIN_SLOT_S = 1500  # the time each incident of the rounds needs


def _slots(n_sec: int, services: int) -> tuple[int, int, int, float]:
    """(warm-up end, last incident end, incidents in rounds, seconds of a slot of each) of
    a stream: the incidents' plan before any draw."""
    warm = 86400 if n_sec / 86400.0 >= 1.5 else int(0.25 * n_sec)
    hi = n_sec - 1800
    n = max(len(_OTHERS), int(round(services * ((hi - warm) / 3600.0) / 6.0)))
    return warm, hi, n, (hi - warm) / n


def _fits(hours: float, services: int) -> bool:
    return _slots(int(round(hours * 3600)), services)[3] >= _MIN_SLOT_S


def hours_problem(hours: float, services: int, max_hours: float = 24 * 366) -> str | None:
    """Why ``hours`` of ``services`` services leave no room for the hard scenario's
    incidents, saying what to give instead; None when they fit."""
    if _fits(hours, services):
        return None
    # hours in steps of 0.05 up to a week (longer streams have no more room per service)
    steps = [k / 20 for k in range(1, int(min(max_hours, 7 * 24) * 20) + 1)]
    more = next((h for h in steps if h > hours and _fits(h, services)), None)
    if more is not None:
        return (f"--hours {hours:g} is too short for the incidents of the hard scenario with "
                f"{services} services: give --hours {more:g} or more")
    fewer = range(min(services - 1, 100), 0, -1)
    fewer = next((k for k in fewer if _fits(hours, k)), None) or \
        next((k for k in fewer if any(_fits(h, k) for h in steps)), None)
    return (f"the hard scenario has no room for the incidents of {services} services"
            + (f": give --services {fewer} or fewer" if fewer else ""))


def _plan(rng, start: float, n_sec: int, n_days: float, services: list[_Service]) -> list[dict]:
    """Incidents after the warm-up, at most one at a time: one ``seasonal`` per day (at a
    service's morning ramp), the other types in rounds over slots between them."""
    warm, hi, n, slot = _slots(n_sec, len(services))
    if slot < _MIN_SLOT_S:
        raise ValueError(hours_problem(n_sec / 3600.0, len(services)))
    out = []
    busy = []  # (a, b) taken
    day = math.floor((start + warm) / 86400.0)
    while True:
        svc_i = int(rng.integers(0, len(services)))
        svc = services[svc_i]
        a = int(day * 86400.0 + (svc.up + 0.4 - svc.tz) * 3600.0 - start)
        d = int(rng.integers(3600, 5401))
        if a + d > hi:
            break
        if a >= warm:
            out.append({"type": "seasonal", "si": svc_i, "a": a, "b": a + d})
            busy.append((a - 900, a + d + 900))
        day += 1
    others = _OTHERS
    types = []
    while len(types) < n:
        types.extend(rng.permutation(len(others)).tolist())
    cursor = warm
    for k in range(n):
        typ = others[types[k]]
        d = int(rng.integers(300, 901)) if typ != "gradual" else int(rng.integers(1200, 1801))
        a = int(cursor + 300 + rng.uniform(0, max(0.0, slot - d - 600)))
        for aa, bb in sorted(busy):  # never during a seasonal incident: after it
            if a < bb and a + d > aa:
                a = int(bb + 300)
        if a + d > hi:
            break
        out.append({"type": typ, "si": int(rng.integers(0, len(services))), "a": a, "b": a + d})
        cursor = a + d + 300
    out.sort(key=lambda x: x["a"])
    return out


def _services(seed: int, hours: float, services: int, start: float | None, rate: float):
    """(start, seconds, days, generator, services, holidays): what every chunk shares, drawn
    first from the seed's generator."""
    if services < 1 or not hours > 0 or not rate > 0:
        raise ValueError("services, hours and rate must be positive")
    start = START if start is None else float(start)
    n_sec = int(round(hours * 3600))
    n_days = n_sec / 86400.0
    rng = np.random.Generator(np.random.PCG64(seed))
    names = service_names(services)
    svcs = [_Service(rng, si, name, rate, n_days) for si, name in enumerate(names)]
    day0 = math.floor(start / 86400.0)
    holidays = ()
    if n_days >= 4:
        for d in range(int(day0) + 1, int(day0 + n_days)):
            if (d + 3) % 7 < 5:
                holidays = (d,)
                break
    return start, n_sec, n_days, rng, svcs, holidays


def expected_lines(seed: int, hours: float, services: int, start: float | None, rate: float,
                   window: float = 60.0) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(service names, window starts, lines a window of each service is expected to hold
    without noise, bursts or incidents): what a detector that knew the rhythm, trend and
    schedules exactly would expect (``benchmarks/detectability.py``)."""
    start, n_sec, _, _, svcs, holidays = _services(seed, hours, services, start, rate)
    t = start + np.arange(0, n_sec, dtype=np.float64)
    out = np.zeros((len(svcs), int(math.ceil(n_sec / window))))
    for i, svc in enumerate(svcs):
        lam = svc.level(t, svc.rhythm(t, holidays), start)
        lam = lam * (1.0 - svc.probs[svc.scheduled].sum())
        for _, per_s in svc.schedule(t):
            lam = lam + per_s
        np.add.at(out[i], ((t - start) // window).astype(np.int64), lam)
    return [svc.name for svc in svcs], start + window * np.arange(out.shape[1]), out


def build_chunks(seed: int, hours: float, services: int, start: float | None, rate: float):
    """Yield (lines, None) per chunk in time order, then (None, labels)."""
    start, n_sec, n_days, rng, svcs, holidays = _services(seed, hours, services, start, rate)
    names = [svc.name for svc in svcs]
    plan = _plan(rng, start, n_sec, n_days, svcs)
    novel_order = rng.permutation(len(NOVEL)).tolist()
    labels_inc = []
    for k, inc in enumerate(plan):
        svc = svcs[inc["si"]]
        typ = inc["type"]
        lab = {"service": svc.name, "type": typ}
        if typ == "spike":
            inc["col"] = int(rng.integers(1, min(5, svc.n_norm)))
            inc["factor"] = float(np.round(rng.uniform(5.0, 20.0), 1))
            t = svc.templates[inc["col"]]
            lab.update(template_hint=t.hint, template_regex=t.regex, level=t.level,
                       factor=inc["factor"], bursty=inc["col"] in svc.bursty)
        elif typ == "drop":
            inc["factor"] = (0.0 if rng.random() < 0.3
                             else float(np.round(rng.uniform(0.02, 0.1), 3)))
            lab.update(template_hint=None, factor=inc["factor"])
        elif typ == "new_template":
            lv, sp = NOVEL[novel_order[k % len(NOVEL)]]
            inc["template"] = _compile(lv, sp)
            inc["lpm"] = float(np.round(rng.uniform(5.0, 30.0), 1))
            t = inc["template"]
            lab.update(template_hint=t.hint, template_regex=t.regex, level=t.level,
                       lines_per_minute=inc["lpm"])
        elif typ == "error_rate":
            inc["share"] = float(np.round(rng.uniform(0.10, 0.40), 3))
            lab.update(template_hint=None, level="error", error_share=inc["share"])
        elif typ == "gradual":
            inc["kind"] = "error_rate" if rng.random() < 0.5 else "drop"
            inc["share"] = float(np.round(rng.uniform(0.15, 0.40), 3))
            inc["factor"] = float(np.round(rng.uniform(0.05, 0.3), 3))
            lab.update(kind=inc["kind"], ramp_seconds=600,
                       **({"error_share": inc["share"]} if inc["kind"] == "error_rate"
                          else {"factor": inc["factor"]}))
        else:  # seasonal: traffic freezes at its level at the onset
            t = start + np.arange(inc["a"], inc["b"], dtype=np.float64)
            r = svc.rhythm(t, holidays)
            short = np.flatnonzero(r[0] / r <= 0.7)
            if len(short) == 0 or short[0] > inc["b"] - inc["a"] - 600:
                inc["type"] = typ = lab["type"] = "drop"
                inc["factor"] = 0.05
                lab.update(template_hint=None, factor=0.05)
            else:
                inc["start_at"] = inc["a"] + int(short[0])
        onset = inc["a"]
        material = inc.get("start_at", onset + (200 if typ == "gradual" else 0))
        lab["onset"] = start + onset
        lab["start"] = start + material
        lab["end"] = start + inc["b"]
        labels_inc.append(lab)
    for k, inc in enumerate(labels_inc, 1):
        inc["id"] = f"inc-{k}"

    extra_cols = {}  # service -> list of (incident index) with a new template column
    for k, inc in enumerate(plan):
        if inc["type"] == "new_template":
            extra_cols.setdefault(inc["si"], []).append(k)

    base_sec = int(start)
    prefixes_cache: dict[int, list[str]] = {}
    for c0 in range(0, n_sec, CHUNK_S):
        c1 = min(n_sec, c0 + CHUNK_S)
        n = c1 - c0
        t_abs = start + np.arange(c0, c1, dtype=np.float64)
        all_ts: list[np.ndarray] = []
        all_msg: list[str] = []
        for si, svc in enumerate(svcs):
            mine = [k for k, inc in enumerate(plan) if inc["si"] == si
                    and inc["b"] > c0 and inc["a"] < c1]
            cols = svc.templates + [plan[k]["template"] for k in extra_cols.get(si, [])]
            n_base = len(svc.templates)
            rh = svc.rhythm(t_abs, holidays)
            base = svc.level(t_abs, rh, start) * svc.noise(rng, n)
            lam = np.zeros((n, len(cols)))
            lam[:, :n_base] = base[:, None] * svc.probs[None, :]
            for col, per_s in svc.schedule(t_abs):  # scheduled templates: only in their hour
                lam[:, col] = per_s
            # bursts: 15-90 s at a Pareto multiple
            for col, r in zip(svc.bursty, svc.burst_rate):
                nb_ = rng.poisson(r * n / 3600.0)
                for _ in range(nb_):
                    a = int(rng.integers(0, n))
                    d = int(rng.integers(15, 91))
                    m = min(3.0 * (1.0 + rng.pareto(1.3)), 40.0)
                    lam[a:a + d, col] *= m
            n_norm, n_err = svc.n_norm, svc.n_err
            for k in mine:
                inc = plan[k]
                a, b = max(inc["a"] - c0, 0), min(inc["b"] - c0, n)
                ramp = np.clip((np.arange(a, b) + c0 - inc["a"]) / 600.0, 0.0, 1.0)
                typ = inc["type"]
                if typ == "spike":
                    lam[a:b, inc["col"]] *= inc["factor"]
                elif typ == "drop":
                    lam[a:b, :] *= inc["factor"]
                elif typ == "new_template":
                    col = n_base + extra_cols[si].index(k)
                    lam[a:b, col] = inc["lpm"] / 60.0
                elif typ == "error_rate" or (typ == "gradual" and inc["kind"] == "error_rate"):
                    share = inc["share"] * (ramp if typ == "gradual" else 1.0)
                    ne = lam[a:b, :n_norm].sum(axis=1) + lam[a:b, n_norm + n_err:n_base].sum(1)
                    e = lam[a:b, n_norm:n_norm + n_err].sum(axis=1)
                    want = share / (1.0 - share) * ne
                    scale = np.maximum(want / np.maximum(e, 1e-12), 1.0)
                    lam[a:b, n_norm:n_norm + n_err] *= scale[:, None]
                elif typ == "gradual":
                    lam[a:b, :] *= (1.0 - ramp * (1.0 - inc["factor"]))[:, None]
                else:  # seasonal
                    t_inc = start + inc["a"]
                    r0 = svc.rhythm(np.array([t_inc]), holidays)[0]
                    lam[a:b, :] *= np.minimum(r0 / rh[a:b], 1.0)[:, None]
            n_hosts = len(svc.hosts)
            lam /= n_hosts
            counts = rng.poisson(np.repeat(lam, n_hosts, axis=1))
            del lam
            if c0 == 0:  # every template shows up early (the service ran before)
                early = max(1, n // 8)
                for ti in range(n_base):
                    kk = rng.integers(0, early, 2)
                    np.add.at(counts, (kk, ti * n_hosts + rng.integers(0, n_hosts, 2)), 1)
            emit_lines(counts, np.arange(c0, c1, dtype=np.int64), cols, svc.hosts, svc.name,
                       base_sec * 1000, rng, svc.pools, all_ts, all_msg)
        if not all_ts:
            yield [], None
            continue
        ts = np.concatenate(all_ts)
        order = np.argsort(ts, kind="stable")
        sec_rel = (ts[order] // 1000 - base_sec).tolist()
        key = c0 // CHUNK_S
        prefixes = prefixes_cache.pop(key, None) or _ts_prefixes(base_sec + c0, n + 2)
        lines = [prefixes[a - c0] + all_msg[i] for a, i in zip(sec_rel, order.tolist())]
        yield lines, None
    labels_inc.sort(key=lambda x: (x["start"], x["service"]))
    for k, inc in enumerate(labels_inc, 1):
        inc["id"] = f"inc-{k}"
    labels = {
        "seed": seed, "start": start, "end": start + n_sec, "hours": n_sec / 3600.0,
        "rate": rate, "hard": True, "services": names,
        "probation_seconds": 86400 if n_days >= 1.5 else int(0.25 * n_sec),
        "families": {s.name: s.family for s in svcs},
        "hosts": {s.name: s.hosts for s in svcs}, "window_seconds_hint": 60,
        "holidays": [time.strftime("%Y-%m-%d", time.gmtime(d * 86400)) for d in holidays],
        "incidents": [{"id": i["id"], "service": i["service"], "type": i["type"],
                       "start": i["start"], "end": i["end"],
                       **{k: v for k, v in i.items()
                          if k not in ("id", "service", "type", "start", "end")}}
                      for i in labels_inc],
    }
    yield None, labels
