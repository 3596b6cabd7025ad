"""The harder generator: what it promises about its traffic and labels."""
import collections
import re

import numpy as np
import orjson
import pytest

from logml.generate import generate
from logml.hardgen import (FRESH_SCENARIOS, HARD_INCIDENT_TYPES, HELDOUT_SCENARIOS,
                           TUNING_SCENARIOS, expected_lines)

START = 1_764_028_800.0  # a Tuesday, 00:00 UTC


@pytest.fixture(scope="module")
def stream():
    events, labels = generate(5, 40, 2, start=START, rate=0.6, hard=True)
    docs = [orjson.loads(e) for e in events]
    ts = np.array([np.datetime64(d["@timestamp"][:-1]).astype("datetime64[ms]").astype(float)
                   / 1000 for d in docs])
    return events, labels, docs, ts


def test_deterministic_and_ordered(stream):
    events, labels, _, ts = stream
    again, labels2 = generate(5, 40, 2, start=START, rate=0.6, hard=True)
    assert again == events and labels2 == labels
    assert np.all(np.diff(ts) >= 0) and ts[0] >= START and ts[-1] < labels["end"]


def test_labels_have_onsets_probation_and_every_type(stream):
    _, labels, _, _ = stream
    inc = labels["incidents"]
    assert labels["probation_seconds"] == 86400 and labels["hard"] is True
    types = {i["type"] for i in inc}
    assert types - {"seasonal"} == set(HARD_INCIDENT_TYPES) - {"seasonal"}
    for i in inc:
        assert labels["start"] + 86400 <= i["onset"] <= i["start"] < i["end"] <= labels["end"]
        if i["type"] in ("gradual", "seasonal"):
            assert i["start"] > i["onset"]
    assert [i["id"] for i in inc] == [f"inc-{k}" for k in range(1, len(inc) + 1)]


def test_many_small_templates_bursts_and_scheduled_silence(stream):
    _, labels, docs, ts = stream
    svc = labels["services"][0]
    minute = ((ts - START) // 60).astype(int)
    per_tmpl = collections.defaultdict(lambda: np.zeros(minute.max() + 1, int))
    for d, m in zip(docs, minute):
        if d["service"]["name"] == svc:
            key = re.sub(r"\d+|[0-9a-f]{8,}", "#", d["message"])[:40]
            per_tmpl[key][m] += 1
    totals = sorted((v.sum() for v in per_tmpl.values()), reverse=True)
    assert len(totals) >= 30 and sum(t < 0.01 * totals[0] for t in totals) >= 10
    # some template bursts: a minute at least 5x its median busy minute
    bursty = [k for k, v in per_tmpl.items()
              if v.sum() > 500 and v.max() >= 5 * max(np.median(v[v > 0]), 1)]
    assert bursty
    # some template lives in one hour of the day only
    hours = {k: set(((np.flatnonzero(v) * 60 + START) % 86400 // 3600).astype(int).tolist())
             for k, v in per_tmpl.items() if v.sum() > 100}
    assert any(len(h) <= 3 for h in hours.values())


def test_daily_and_weekly_rhythm():
    events, labels = generate(6, 24 * 7, 1, start=START, rate=0.2, hard=True)
    t = np.array([np.datetime64(orjson.loads(e)["@timestamp"][:-1]).astype("datetime64[s]")
                  .astype(float) for e in events])
    hour = ((t - START) // 3600).astype(int)
    per_hour = np.bincount(hour, minlength=24 * 7).reshape(7, 24)
    day_tot = per_hour.sum(axis=1)  # Tue..Mon
    weekend = day_tot[4:6].mean()   # Sat, Sun
    weekday = np.median(day_tot[[0, 1, 2, 6]])
    assert weekend < 0.9 * weekday
    assert per_hour.max(axis=1).mean() > 2.0 * per_hour.min(axis=1).mean()
    assert len(labels["holidays"]) == 1


def test_scenario_lists_are_separate():
    tune = {s["seed"] for s in TUNING_SCENARIOS}
    held = {s["seed"] for s in HELDOUT_SCENARIOS}
    fresh = {s["seed"] for s in FRESH_SCENARIOS}
    assert tune and held and not tune & held and not fresh & (tune | held)


def test_expected_lines_is_the_streams_noiseless_rate(stream):
    """``expected_lines`` (benchmarks/detectability.py's oracle) is what the stream holds
    apart from noise, bursts and incidents: hour by hour, away from incidents, the lines
    counted are at most a few % below it and, bursts adding lines, in the median at most
    15 % above; and it follows the daily rhythm."""
    _, labels, docs, ts = stream
    names, starts, lam = expected_lines(5, 40, 2, START, 0.6, 60.0)
    assert names == labels["services"] and starts[0] == START and lam.shape == (2, 2400)
    svc = np.array([names.index(d["service"]["name"]) for d in docs])
    minute = ((ts - START) // 60).astype(int)
    for i, name in enumerate(names):
        seen = np.bincount(minute[svc == i], minlength=2400)[:2400].astype(float)
        quiet = np.ones(2400, bool)
        for c in labels["incidents"]:
            if c["service"] == name:
                quiet[int((c["onset"] - START) // 60) - 1:int((c["end"] - START) // 60) + 2] = False
        hours = [h for h in range(40) if quiet[h * 60:(h + 1) * 60].all()]
        ratio = np.array([seen[h * 60:(h + 1) * 60].sum() / lam[i, h * 60:(h + 1) * 60].sum()
                          for h in hours])
        assert len(hours) >= 30
        assert 1.0 <= np.median(ratio) <= 1.15, ratio
        assert 0.9 <= ratio.min() and ratio.max() <= 1.6, ratio  # a burst-heavy hour adds
        assert lam[i].max() > 2.0 * lam[i].min()  # day and night differ
