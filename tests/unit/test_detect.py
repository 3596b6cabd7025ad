import numpy as np
import pytest

from logml.config import ScoreConfig
from logml.detect import Detector
from logml.window import WindowFrame

W = 60.0


def frame(k, counts, errors=None, lines=None, svc_errors=None, samples=None):
    counts = np.asarray(counts, np.int64)
    errors = np.zeros_like(counts) if errors is None else np.asarray(errors, np.int64)
    lines = np.array([counts.sum()]) if lines is None else np.asarray(lines, np.int64)
    svc_errors = np.array([errors.sum()]) if svc_errors is None else np.asarray(svc_errors)
    return WindowFrame(k * W, (k + 1) * W, counts, errors, lines, svc_errors, samples or {})


def run(frames, n_templates):
    det = Detector(ScoreConfig(warmup_windows=10), W)
    ts = np.zeros(n_templates, np.int32)
    return [det.score(f, ts, 1) for f in frames]


def baseline(n=40, rng=np.random.default_rng(1)):
    return [rng.poisson([50, 20, 5]) for _ in range(n)]


def test_steady_traffic_raises_nothing():
    rng = np.random.default_rng(2)
    dets = run([frame(k, rng.poisson([50, 20, 5])) for k in range(300)], 3)
    assert not [a for d in dets for a in d.anomalies if a.severity == "critical"]


def test_warm_up_gives_no_alerts_before_a_baseline():
    dets = run([frame(0, [5, 5, 5]), frame(1, [500, 5, 5]), frame(2, [5, 0, 5])], 3)
    assert not [a for d in dets for a in d.anomalies]


def test_spike_is_critical_and_explains_itself():
    counts = baseline()
    frames = [frame(k, c) for k, c in enumerate(counts)]
    frames.append(frame(40, [50, 200, 5], samples={1: ["a", "b", "c"]}))
    a = [a for a in run(frames, 3)[-1].anomalies if a.type == "spike"]
    assert len(a) == 1 and a[0].template == 1 and a[0].severity == "critical"
    assert a[0].actual == 200 and 15 < a[0].expected < 25
    assert a[0].lower < a[0].expected < a[0].upper < 200
    assert a[0].samples == ["a", "b", "c"] and a[0].score > 70


def test_count_aware_floor_mean_3_does_not_alert_on_6():
    frames = [frame(k, [3]) for k in range(40)] + [frame(40, [6])]
    assert not run(frames, 1)[-1].anomalies


def test_service_going_silent_is_a_drop():
    frames = [frame(k, c) for k, c in enumerate(baseline())]
    frames.append(frame(40, [0, 0, 0]))
    det = run(frames, 3)[-1]
    kinds = {(a.type, a.template) for a in det.anomalies}
    assert ("drop", -1) in kinds
    assert not [a for a in det.anomalies if a.type == "drop" and a.template >= 0]


def test_error_rate_and_outage_probability():
    rng = np.random.default_rng(3)
    frames = [frame(k, rng.poisson([100]), errors=[1]) for k in range(40)]
    frames.append(frame(40, [100], errors=[30]))
    det = run(frames, 1)[-1]
    assert [a.type for a in det.anomalies] == ["error_rate"]
    assert det.windows[0].outage_probability > 0.75
    assert det.windows[0].error_ratio == pytest.approx(0.3)


def test_rising_error_ratio_raises_outage_probability_before_threshold():
    frames = [frame(k, [1000], errors=[10]) for k in range(40)]
    probs = []
    for k, e in enumerate([10, 14, 18, 22]):
        frames.append(frame(40 + k, [1000], errors=[e]))
    dets = run(frames, 1)
    probs = [d.windows[0].outage_probability for d in dets[39:]]
    assert probs[-1] > probs[0]


def test_new_template_is_weighted_by_level():
    frames = [frame(k, [50, 0]) for k in range(40)]
    info = run(frames + [frame(40, [50, 3])], 2)[-1].anomalies
    error = run(frames + [frame(40, [50, 3], errors=[0, 3])], 2)[-1].anomalies
    assert [(a.type, a.severity) for a in info] == [("new_template", "warning")]
    assert [(a.type, a.severity) for a in error if a.type == "new_template"] == [
        ("new_template", "critical")]


def test_adjacent_windows_join_one_incident():
    frames = [frame(k, c) for k, c in enumerate(baseline())]
    # a three-window incident (a burst lasts at most two), three quiet windows, another
    frames += [frame(40, [50, 200, 5]), frame(41, [50, 260, 5]), frame(42, [50, 240, 5]),
               frame(43, [50, 20, 5]), frame(44, [50, 20, 5]), frame(45, [50, 20, 5]),
               frame(46, [50, 400, 5])]
    ids = [a.incident_id for d in run(frames, 3)[40:] for a in d.anomalies]
    assert len(ids) >= 3 and ids[0] == ids[1] and ids[-1] != ids[0]
