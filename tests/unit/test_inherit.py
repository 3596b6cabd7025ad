"""A template merged from others continues their series: it starts from their count
models summed (``countmodel.inherit``), so it is tested from its first window, and the
lines its parents got in the window of the merge count as its own."""
import math

import numpy as np
import pytest

from logml import countmodel as cm
from logml import snapshot
from logml.config import ScoreConfig
from logml.detect import Detector
from logml.window import WindowFrame

W = 60.0
MERGE = 120  # the window in which A and B (templates 1, 2) merge into C (template 3)
# template 0 steady ~40 a window throughout; A ~50 and B ~30 until the merge
LAM = np.array([40.0, 50.0, 30.0, 0.0])
TS = np.zeros(4, np.int32)
DERIVED = np.array([False, False, False, True])
INTO = np.array([-1, 3, 3, -1])


def frame(k, counts):
    counts = np.asarray(counts, np.int64)
    return WindowFrame(k * W, (k + 1) * W, counts, np.zeros_like(counts),
                       np.array([counts.sum()]), np.array([0]), {}, np.array([0], np.int32),
                       np.array([False]))


def stream(n, spike=None, seed=3):
    """Window counts: before MERGE as LAM; in MERGE's window A and B have most of their
    lines (the merge comes late in it) and C the rest; after it C gets A's and B's lines;
    ``spike``: (window, factor) of C."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        if k < MERGE:
            c = rng.poisson(LAM)
        elif k == MERGE:
            c = rng.poisson([40.0, 45.0, 27.0, 8.0])
        else:
            c = rng.poisson([40.0, 0.0, 0.0, 80.0])
        if spike is not None and k == spike[0]:
            c[3] = int(round(c[3] * spike[1]))
        out.append(c)
    return out


def run(windows, det=None, lineage=True, start=0):
    det = det or Detector(ScoreConfig(), W)
    dets = []
    for k, c in enumerate(windows[start:], start):
        merged = k >= MERGE
        if lineage:
            derived = DERIVED if merged else np.zeros(4, bool)
            into = INTO if merged else np.full(4, -1)
            dets.append(det.score(frame(k, c), TS, 1, derived, into >= 0, into))
        else:  # lineage flags only: no folding, no inheritance (as before)
            retired = INTO >= 0 if merged else np.zeros(4, bool)
            dets.append(det.score(frame(k, c), TS, 1, DERIVED if merged else None, retired))
    return det, dets


def test_merged_template_spike_right_after_the_merge_is_found():
    windows = stream(MERGE + 3, spike=(MERGE + 1, 5.0))
    _, dets = run(windows)
    spikes = [a for a in dets[MERGE + 1].anomalies if a.type == "spike" and a.template == 3]
    assert len(spikes) == 1 and spikes[0].severity == "critical"
    assert spikes[0].expected == pytest.approx(80.0, rel=0.15)
    # without inheriting, C is in its warm-up and the spike goes unseen
    _, before = run(windows, lineage=False)
    assert not [a for a in before[MERGE + 1].anomalies if a.template == 3]


def test_handover_without_incident_raises_nothing():
    windows = stream(MERGE + 90)
    _, dets = run(windows)
    assert not [a for d in dets[MERGE:] for a in d.anomalies]
    # the merged template is scored (warm) from the merge on, its expectation the sum
    det, _ = run(windows[:MERGE + 1])
    assert det.tm["seen"][3] > ScoreConfig().warmup_windows
    # had C not taken its parents' lines of the merge window, it would look like a drop
    # (8 lines where 80 are expected): the window's lines count as C's
    det, _ = run(windows[:MERGE])
    into = INTO.copy()
    d = det.score(frame(MERGE, windows[MERGE]), TS, 1, DERIVED, into >= 0, into)
    assert not d.anomalies


def test_multi_level_merge_and_a_parent_without_lines():
    """A, B -> C and, before any window closes, C, D, X -> E (X never had a line): E
    starts from A's, B's and D's models."""
    rng = np.random.default_rng(5)
    lam = np.array([50.0, 30.0, 0.0, 20.0, 0.0, 0.0])  # A, B, C, D, X, E
    det = Detector(ScoreConfig(), W)
    ts = np.zeros(6, np.int32)
    for k in range(60):
        det.score(frame(k, rng.poisson(lam)), ts[:4], 1, np.zeros(4, bool), np.zeros(4, bool),
                  np.full(4, -1))
    into = np.array([2, 2, 5, 5, 5, -1])
    derived = np.array([False, False, True, False, False, True])
    # the window of the merges: lines of A, B, C and D count as E's (through C)
    d = det.score(frame(60, [10, 5, 3, 2, 0, 480]), ts, 1, derived, into >= 0, into)
    (a,) = [a for a in d.anomalies if a.template == 5]
    assert a.type == "spike" and a.expected == pytest.approx(100.0, rel=0.15)
    assert a.actual == 500
    assert det.tm["seen"][2] == 0 and det.tm["seen"][5] == 61


def test_a_parent_in_its_warm_up_keeps_the_merged_template_in_its_own():
    """B is born a window before the merge (3 lines, late in the window; it gets 30 a
    window): its level is one partial window's. The merged template is not tested until
    it has its own warm-up (else 80 lines against 53 expected: z 4-7 for 15 windows)."""
    rng = np.random.default_rng(1)
    det = Detector(ScoreConfig(), W)
    z = []
    for k in range(MERGE + 30):
        if k < MERGE - 1:
            c = rng.poisson([40.0, 50.0, 0.0, 0.0])
        elif k == MERGE - 1:
            c = np.array([rng.poisson(40.0), rng.poisson(50.0), 3, 0])
        else:
            c = rng.poisson([40.0, 0.0, 0.0, 80.0])
        into = INTO if k >= MERGE else np.full(4, -1)
        d = det.score(frame(k, c), TS, 1, DERIVED & (k >= MERGE), into >= 0, into)
        z.append(d.template_z[3])
        if k == MERGE:
            assert det.tm["seen"][3] == 2  # B's one window, and this one
    assert not any(z)
    assert det.tm["st"][cm.F, 3] == pytest.approx(80.0, rel=0.2)


def _parents():
    st = np.zeros((cm.N_FIELDS, 2), np.float32)
    prof = np.zeros((cm.N_PROFILE, 2), np.float32)
    pcnt = np.zeros((cm.N_PROFILE, 2), np.uint16)
    # A: level 50, steady, hour means 40 then 60 (10 samples each), no day means yet
    for f in (cm.F, cm.LD, cm.LL, cm.LW):
        st[f] = [50.0, 30.0]
    st[cm.TF] = [0.0, 0.5]
    for f in (cm.KF, cm.KD, cm.KL, cm.KW):
        st[f] = [0.02, 0.1]
    for f in (cm.EF, cm.ED, cm.EL, cm.EW):
        st[f] = [60.0, 40.0]
    st[cm.MODE] = [0, 1]
    st[cm.PI] = [cm.PI_NULL, cm.PI_NULL + 0.01]  # B bursts, A does not
    st[cm.BM] = [0.0, math.log(5.0)]
    st[cm.BV] = [0.0, 0.5]
    st[cm.LB] = [0.5, 0.0]
    st[cm.RS] = [3.0, -2.0]
    st[cm.RN] = [2.0, 1.0]
    prof[:12, 0], prof[12:24, 0], pcnt[:24, 0] = 40.0, 60.0, 10
    # B: only hours 0-5 seen (3 samples each, mean 30)
    prof[:6, 1], pcnt[:6, 1] = 30.0, 3
    st[cm.HSUM] = [prof[:24, 0].sum(), prof[:24, 1].sum()]
    return st, prof, pcnt, np.array([100, 40], np.int32)


def test_inherit_against_hand_computed_values():
    st, prof, pcnt, seen = _parents()
    col, p, c, n = cm.inherit(st, prof, pcnt, seen)
    assert n == 40  # as warm as the youngest
    exp = {cm.F: 80.0, cm.TF: 0.5, cm.LD: 80.0, cm.LL: 80.0, cm.LW: 80.0,
           cm.EF: 100.0, cm.ED: 100.0, cm.EL: 100.0, cm.EW: 100.0,
           # k = sum k mu^2 / (sum mu)^2; the flat mean has the trend: 30 + 0.98 x 0.5
           cm.KF: (0.02 * 50.0 ** 2 + 0.1 * 30.49 ** 2) / 80.49 ** 2,
           cm.KD: (0.02 * 2500.0 + 0.1 * 900.0) / 6400.0,
           cm.KL: 140.0 / 6400.0, cm.KW: 140.0 / 6400.0,
           # hours 0-11: 40 + (30 seen, or B's level 30); 12-23: 60 + 30; days 50 + 30
           cm.HSUM: 12 * 70.0 + 12 * 90.0, cm.DSUM: 7 * 80.0,
           cm.MODE: 0.0,  # A is the larger
           # B's bursts (x5 of its mean), B being 30.49 / 80.49 of the sum: x(1 + 4 share)
           cm.PI: cm.PI_NULL + 0.01, cm.BM: math.log(1.0 + 4.0 * 30.49 / 80.49), cm.BV: 0.5,
           cm.LB: 0.0, cm.RS: 0.0, cm.RN: 0.0, cm.LX: 0.0}
    assert sorted(exp) == list(range(cm.N_FIELDS))
    for f, v in exp.items():
        assert col[f] == pytest.approx(v, rel=1e-5), f
    assert p.tolist() == [70.0] * 12 + [90.0] * 12 + [80.0] * 7
    assert c.tolist() == [3] * 6 + [0] * 25
    assert col.dtype == np.float32 and p.dtype == np.float32 and c.dtype == np.uint16


def test_inherit_adds_variances_and_keeps_a_single_parent():
    st, prof, pcnt, seen = _parents()
    col, _, _, _ = cm.inherit(st, prof, pcnt, seen)
    f64 = st.astype(np.float64)
    mus = [f64[cm.F] + cm.TREND_PHI * f64[cm.TF], f64[cm.LD], f64[cm.LL], f64[cm.LW]]
    for m, mu in enumerate(mus):
        var = (mu + f64[cm.KF + m] * mu * mu).sum()
        assert mu.sum() + col[cm.KF + m] * mu.sum() ** 2 == pytest.approx(var, rel=1e-5)
    # one parent whose profile is complete: its model, its pending burst and run reset
    st[:, 1] = st[:, 0]
    pcnt[:, 0] = 7
    one, p, c, n = cm.inherit(st[:, :1], prof[:, :1], pcnt[:, :1], seen[:1])
    want = st[:, 0].copy()
    want[[cm.LB, cm.RS, cm.RN]] = 0.0
    want[cm.HSUM], want[cm.DSUM] = prof[:24, 0].sum(), prof[24:, 0].sum()
    assert one.tolist() == want.tolist()
    assert p.tolist() == prof[:, 0].tolist() and c.tolist() == [7] * cm.N_PROFILE and n == 100


@pytest.mark.parametrize("cut", [MERGE - 1, MERGE, MERGE + 1])
def test_state_round_trip_mid_way(cut):
    """Saved before the merge, at it, or after C's first window: the restored detector
    goes on exactly as the one that never stopped."""
    windows = stream(MERGE + 20, spike=(MERGE + 1, 5.0))
    _, whole = run(windows)
    det, _ = run(windows[:cut])
    tree = snapshot.loads(snapshot.dumps("detector", det.state()), "detector")
    _, rest = run(windows, Detector.from_state(tree, ScoreConfig(), W), start=cut)
    assert [[(a.type, a.template, a.score, a.expected) for a in d.anomalies]
            for d in whole[cut:]] == [[(a.type, a.template, a.score, a.expected)
                                       for a in d.anomalies] for d in rest]
    assert [d.windows[0].anomaly_score for d in whole[cut:]] == \
        [d.windows[0].anomaly_score for d in rest]
    assert any(a.template == 3 for d in whole for a in d.anomalies)
