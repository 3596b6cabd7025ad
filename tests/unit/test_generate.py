import io
import math
import re
import sys
import time
from datetime import datetime

import numpy as np
import orjson
import pytest

from logml.generate import FAMILIES, INCIDENT_TYPES, _compile, generate, write

START = 1_764_000_000.0  # 2025-11-24T16:00:00Z, in the past, a whole hour
TS_RE = re.compile(rb'^\{"@timestamp":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z",')
LEVELS = {"debug", "info", "warn", "error"}


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()  # 3.11 reads the trailing Z as UTC


@pytest.fixture(scope="module")
def stream():
    """seed=1, 6 h, 4 services, 1.2 lines/s per service (~120k lines), decoded."""
    events, labels = generate(1, 6, 4, start=START, rate=1.2)
    docs = [orjson.loads(e) for e in events]
    return {
        "events": events, "labels": labels, "docs": docs,
        "ts": np.array([_epoch(d["@timestamp"]) for d in docs]),
        "svc": np.array([d["service"]["name"] for d in docs]),
        "level": np.array([d["log"]["level"] for d in docs]),
        "msg": [d["message"] for d in docs],
    }


def test_deterministic_by_seed(tmp_path):
    a = generate(7, 0.5, 3, start=START, rate=2.0)
    b = generate(7, 0.5, 3, start=START, rate=2.0)
    c = generate(8, 0.5, 3, start=START, rate=2.0)
    assert a[0] == b[0] and a[1] == b[1]
    assert a[0] != c[0] and a[1]["seed"] == 7 and c[1]["seed"] == 8
    ev_path, lab_path = write(tmp_path / "out", 7, 0.5, 3, start=START, rate=2.0)
    assert ev_path == tmp_path / "out" / "events.jsonl"
    assert ev_path.read_bytes() == b"\n".join(a[0]) + b"\n"
    assert orjson.loads(lab_path.read_bytes()) == a[1]


def test_events_are_filebeat_ecs(stream):
    labels = stream["labels"]
    for raw, d in zip(stream["events"], stream["docs"]):
        assert TS_RE.match(raw) and b"\n" not in raw
        assert list(d) == ["@timestamp", "message", "log", "service", "host", "event"]
        assert isinstance(d["message"], str) and d["message"]
        assert d["log"]["level"] in LEVELS
        svc = d["service"]["name"]
        assert d["event"]["dataset"] == svc
        assert d["host"]["name"] in labels["hosts"][svc]
    assert labels["services"] == ["api", "db", "auth", "worker"]
    assert all(1 <= len(h) <= 3 for h in labels["hosts"].values())
    assert set(stream["level"]) == LEVELS


def test_decoder_accepts_events(stream):
    from logml.decode import Decoder
    sample = stream["events"][::40]
    events, errors = Decoder().decode(sample)
    assert not errors and len(events) == len(sample)


def test_sorted_within_range_and_rate(stream):
    ts, labels = stream["ts"], stream["labels"]
    assert labels["start"] == START and labels["end"] == START + 6 * 3600
    assert np.all(np.diff(ts) >= 0)
    assert ts[0] >= START and ts[-1] < labels["end"]
    # rate is the mean lines/s per service (rhythm and incidents move it somewhat)
    per_s = len(ts) / (6 * 3600 * 4)
    assert 1.0 < per_s < 3.5


def test_incident_plan(stream):
    labels = stream["labels"]
    inc = labels["incidents"]
    assert len(inc) >= 4
    assert {i["type"] for i in inc} == set(INCIDENT_TYPES)
    assert [i["id"] for i in inc] == [f"inc-{k}" for k in range(1, len(inc) + 1)]
    warmup = labels["start"] + 0.25 * (labels["end"] - labels["start"])
    for i in inc:
        assert i["service"] in labels["services"]
        assert i["start"] >= warmup and i["end"] <= labels["end"]
        assert 300 <= i["end"] - i["start"] <= 900
    starts = sorted(inc, key=lambda i: i["start"])
    for a, b in zip(starts, starts[1:]):
        assert b["start"] - a["end"] >= 900  # at least 15 min apart
    assert labels["window_seconds_hint"] == 60


def _window(stream, inc, before=False):
    d = inc["end"] - inc["start"]
    a, b = (inc["start"] - 600 - d, inc["start"] - 600) if before else (inc["start"], inc["end"])
    return (stream["svc"] == inc["service"]) & (stream["ts"] >= a) & (stream["ts"] < b)


def _of_type(stream, typ):
    found = [i for i in stream["labels"]["incidents"] if i["type"] == typ]
    assert found
    return found


def test_spike_raises_hinted_template(stream):
    for inc in _of_type(stream, "spike"):
        rx = re.compile(inc["template_regex"])
        msg = stream["msg"]
        n_in = sum(bool(rx.fullmatch(msg[k])) for k in np.nonzero(_window(stream, inc))[0])
        n_before = sum(bool(rx.fullmatch(msg[k]))
                       for k in np.nonzero(_window(stream, inc, before=True))[0])
        assert n_before > 0
        assert n_in > 3 * n_before, (inc, n_in, n_before)
        assert 5 <= inc["factor"] <= 20 and "<*>" in inc["template_hint"]


def test_drop_lowers_volume(stream):
    for inc in _of_type(stream, "drop"):
        n_in = _window(stream, inc).sum()
        n_before = _window(stream, inc, before=True).sum()
        assert n_before > 100
        assert n_in <= 0.2 * n_before, (inc, n_in, n_before)


def test_new_template_is_new(stream):
    for inc in _of_type(stream, "new_template"):
        rx = re.compile(inc["template_regex"])
        msg, ts = stream["msg"], stream["ts"]
        before = np.nonzero(ts < inc["start"])[0]
        assert not any(rx.fullmatch(msg[k]) for k in before)
        n_in = sum(bool(rx.fullmatch(msg[k])) for k in np.nonzero(_window(stream, inc))[0])
        minutes = (inc["end"] - inc["start"]) / 60
        assert n_in >= 3 * minutes * 0.5, (inc, n_in)
        assert inc["lines_per_minute"] >= 3


def test_error_rate_raises_error_share(stream):
    level = stream["level"]
    for inc in _of_type(stream, "error_rate"):
        share_in = (level[_window(stream, inc)] == "error").mean()
        share_before = (level[_window(stream, inc, before=True)] == "error").mean()
        assert share_in >= 0.07 and share_in > 5 * share_before, (inc, share_in, share_before)
        assert 0.10 <= inc["error_share"] <= 0.40


def test_every_baseline_template_seen_early(stream):
    labels, ts, svc, msg = stream["labels"], stream["ts"], stream["svc"], stream["msg"]
    early = ts < labels["start"] + (labels["end"] - labels["start"]) / 8
    for name, fam in labels["families"].items():
        texts = [msg[k] for k in np.nonzero(early & (svc == name))[0]]
        for level, spec in FAMILIES[fam]["normal"] + FAMILIES[fam]["error"]:
            rx = re.compile(_compile(level, spec).regex)
            assert any(rx.fullmatch(t) for t in texts), (name, spec)


def test_background_error_rate(stream):
    labels, ts, level = stream["labels"], stream["ts"], stream["level"]
    quiet = np.ones(len(ts), bool)
    for inc in labels["incidents"]:
        quiet &= ~((ts >= inc["start"] - 60) & (ts < inc["end"] + 60))
    share = (level[quiet] == "error").mean()
    assert 0.003 < share < 0.015


def test_daily_rhythm():
    events, labels = generate(3, 24, 1, start=START - 16 * 3600, rate=0.5)  # from 00:00 UTC
    hours = np.bincount([int(e[26:28]) for e in events], minlength=24)
    night = np.median(hours[1:6])
    peak = np.median(hours[13:18])
    assert 0.25 < night / peak < 0.5, hours


def test_default_start_and_small_runs():
    events, labels = generate(2, 0.25, 2, rate=1.0)
    assert labels["start"] % 3600 == 0
    assert labels["start"] <= time.time() - 0.25 * 3600
    assert labels["end"] <= time.time()
    assert all(labels["start"] <= _epoch(orjson.loads(e)["@timestamp"]) < labels["end"]
               for e in events)
    events, labels = generate(2, 0.2, 10, start=START, rate=0.2)
    assert labels["services"][-2:] == ["svc-9", "svc-10"]
    assert {orjson.loads(e)["service"]["name"] for e in events} == set(labels["services"])
    # one hour still gets one incident of each type
    _, labels = generate(4, 1, 2, start=START, rate=0.5)
    assert {i["type"] for i in labels["incidents"]} == set(INCIDENT_TYPES)
    for bad in ({"hours": 0}, {"services": 0}, {"rate": 0}):
        kw = {"seed": 1, "hours": 1, "services": 1, "start": START, **bad}
        with pytest.raises(ValueError):
            generate(**kw)


def test_incidents_do_not_overlap_per_service_when_crowded():
    _, labels = generate(5, 8, 8, start=START, rate=0.05)
    inc = labels["incidents"]
    assert len(inc) >= round(8 * 8 / 3) - 1
    by_svc = {}
    for i in inc:
        by_svc.setdefault(i["service"], []).append((i["start"], i["end"]))
    for spans in by_svc.values():
        spans.sort()
        for (a0, a1), (b0, b1) in zip(spans, spans[1:]):
            assert b0 >= a1
    assert math.isclose(labels["hours"], 8)


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("hard", [False, True])
def test_generate_shows_progress_on_a_terminal_only(tmp_path, monkeypatch, hard):
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    write(tmp_path / "a", 1, 13, 2, rate=0.5, hard=hard, progress=True)
    shown = term.getvalue()
    assert "generate [" in shown and "100.0% 13 hours" in shown, shown
    pipe = io.StringIO()  # not a terminal: nothing
    monkeypatch.setattr(sys, "stderr", pipe)
    write(tmp_path / "b", 1, 13, 2, rate=0.5, hard=hard, progress=True)
    assert pipe.getvalue() == ""
    assert (tmp_path / "a" / "events.jsonl").read_bytes() == \
        (tmp_path / "b" / "events.jsonl").read_bytes()
