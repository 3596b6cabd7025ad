"""One test per failure mode of issue 11, each on data built for it, through Detector.score
(one service unless said otherwise, 60 s windows)."""
import copy
import math

import numpy as np
import pytest

from logml.config import ScoreConfig
from logml.detect import Detector
from logml.window import WindowFrame

W = 60.0
DAY = 1440


def frame(k, counts, errors=None):
    counts = np.asarray(counts, np.int64)
    errors = np.zeros_like(counts) if errors is None else np.asarray(errors, np.int64)
    return WindowFrame(k * W, (k + 1) * W, counts, errors, np.array([counts.sum()]),
                       np.array([errors.sum()]), {}, np.array([0], np.int32),
                       np.array([False]))


def detector(**kw):
    return Detector(ScoreConfig(**kw), W)


def alerts(dets, severity=None):
    return [a for d in dets for a in d.anomalies if severity in (None, a.severity)]


def test_bursty_series_stays_quiet():
    """Five templates; one bursts in 3 % of windows to x3-x40 (Pareto sizes), single
    windows. After a day of learning, two days hold at most the alert budget: 1 critical
    and 2 warnings a day."""
    rng = np.random.default_rng(11)
    det = detector()
    ts = np.zeros(5, np.int32)
    base = np.array([60.0, 25.0, 12.0, 6.0, 3.0])
    dets = []
    for k in range(3 * DAY):
        lam = base.copy()
        if rng.random() < 0.03:
            lam[2] *= min(3.0 * (1.0 + rng.pareto(1.3)), 40.0)
        dets.append(det.score(frame(k, rng.poisson(lam)), ts, 1))
    later = dets[DAY:]
    assert len(alerts(later, "critical")) <= 2
    assert len(alerts(later, "warning")) <= 4


def rhythm(minute_of_day):
    h = minute_of_day / 60.0
    return 20.0 + 280.0 * np.clip(np.sin(np.pi * (h - 6.0) / 14.0), 0.0, None) ** 2


def test_seasonal_drop_fires():
    """A strong daily rhythm (20 lines at night, 300 at the peak). On day four the
    morning ramp stops at 08:00 and traffic stays where it was: nothing a flat baseline
    calls unusual; against the day's rhythm it is a drop, found within ten windows of
    being 30 % short (the size a service drop needs)."""
    rng = np.random.default_rng(5)
    det = detector()
    ts = np.zeros(1, np.int32)
    freeze = 3 * DAY + 8 * 60
    found = []
    for k in range(freeze + 150):
        lam = rhythm(k % DAY)
        if k >= freeze:
            lam = rhythm(8 * 60)
        d = det.score(frame(k, [rng.poisson(lam)]), ts, 1)
        if k >= freeze:
            found += [(k - freeze, a.type, a.severity) for a in d.anomalies]
    expected_now = rhythm(np.arange(8 * 60, 8 * 60 + 150))
    material = int(np.argmax(rhythm(8 * 60) / expected_now <= 0.7))  # 30 % short
    drops = [(t, sev) for t, typ, sev in found if typ == "drop"]
    assert drops and drops[0][0] <= material + 10, (material, found[:5])
    assert any(sev == "critical" for _, sev in drops)


def test_silence_right_after_a_burst_is_a_drop():
    """52 lines a minute, bursty; a x6 burst, then nothing: the silence is a critical drop
    (a burst neither drags the baseline up nor widens it so far that 0 looks normal)."""
    rng = np.random.default_rng(2)
    det = detector()
    ts = np.zeros(2, np.int32)
    for k in range(DAY):
        lam = np.array([40.0, 12.0])
        if rng.random() < 0.02:
            lam *= 6.0
        det.score(frame(k, rng.poisson(lam)), ts, 1)
    det.score(frame(DAY, [240, 72]), ts, 1)  # burst
    d = det.score(frame(DAY + 1, [0, 0]), ts, 1)
    drops = [a for a in d.anomalies if a.type == "drop" and a.template == -1]
    assert drops and drops[0].severity == "critical"
    assert drops[0].expected > 30


def test_five_lines_where_point_four_are_expected_is_critical():
    rng = np.random.default_rng(4)
    det = detector()
    ts = np.zeros(1, np.int32)
    for k in range(600):
        det.score(frame(k, [rng.poisson(0.4)]), ts, 1)
    d = det.score(frame(600, [5]), ts, 1)
    assert [(a.type, a.severity) for a in d.anomalies] == [("spike", "critical")]
    assert 0.2 < d.anomalies[0].expected < 0.7
    assert d.windows[0].anomaly_score >= 75


def test_score_ranks_the_evidence_for_every_window():
    """Every window gets a score; from one warm state, a larger spike never scores lower,
    and ordinary windows score low."""
    rng = np.random.default_rng(9)
    det = detector()
    ts = np.zeros(3, np.int32)
    quiet = []
    for k in range(400):
        d = det.score(frame(k, rng.poisson([50, 20, 5])), ts, 1)
        assert len(d.windows) == 1
        quiet.append(d.windows[0].anomaly_score)
    quiet = np.array(quiet[100:])
    assert np.median(quiet) == 0.0 and np.mean(quiet >= 25) <= 0.03
    scores = []
    for x in (5, 8, 11, 14, 18, 25, 40, 80):
        trial = copy.deepcopy(det)
        scores.append(trial.score(frame(400, [50, 20, x]), ts, 1).windows[0].anomaly_score)
    assert scores == sorted(scores) and scores[0] < 25 and scores[-1] > 75
    assert len(set(np.round(scores, 3))) >= 5  # it ranks, it does not jump from 0 to 100


def test_state_is_plain_data_without_config():
    det = detector()
    ts = np.zeros(2, np.int32)
    for k in range(5):
        det.score(frame(k, [3, 4]), ts, 1)
    state = det.state()

    def check(v):
        if isinstance(v, dict):
            assert all(isinstance(k, str) for k in v)
            for x in v.values():
                check(x)
        elif isinstance(v, list):
            for x in v:
                check(x)
        else:
            assert isinstance(v, (str, int, float, bool, type(None), np.ndarray)), type(v)
    check(state)
    assert "alpha" not in state and "cfg" not in state and "params" not in state
    again = Detector.from_state(state, ScoreConfig(), W)
    a = det.score(frame(5, [30, 4]), ts, 1)
    b = again.score(frame(5, [30, 4]), ts, 1)
    assert math.isclose(a.windows[0].anomaly_score, b.windows[0].anomaly_score)


def test_bursts_straddling_windows_are_not_critical_but_a_sustained_spike_is():
    """One template bursts 6 times an hour for 15-90 s at Pareto multiples (x3..x40), so a
    burst often lights up two or three windows, unevenly. After a day of learning, a day
    of bursts raises at most 3 critical anomalies (before bursts were told apart from
    incidents by how long they last: 11); the same template at x8 for ten minutes is
    found by its fourth window and critical from its fifth (a template this bursty needs
    persistence: a spike in it is found later than in a quiet one, and two bursts back to
    back can light up four windows, see docs/detection.md)."""
    rng = np.random.default_rng(21)
    det = detector()
    ts = np.zeros(4, np.int32)
    base = np.array([80.0, 30.0, 6.0, 2.0])
    per_s = np.zeros((2 * DAY + 20) * 60)
    t = 0
    while t < len(per_s):
        t += int(rng.exponential(600))
        d = int(rng.integers(15, 91))
        per_s[t:t + d] = min(3.0 * (1.0 + rng.pareto(1.3)), 40.0) - 1.0
    extra = per_s[: (2 * DAY + 20) * 60].reshape(-1, 60).mean(axis=1)  # excess, per window
    crit = []
    for k in range(2 * DAY):
        lam = base.copy()
        lam[2] *= 1.0 + extra[k]
        d = det.score(frame(k, rng.poisson(lam)), ts, 1)
        if k >= DAY:
            crit += [a for a in d.anomalies if a.severity == "critical"]
    assert len(crit) <= 3, [(a.type, a.actual, a.expected) for a in crit]
    found = []
    for j in range(10):
        lam = base.copy()
        lam[2] *= 8.0
        d = det.score(frame(2 * DAY + j, rng.poisson(lam)), ts, 1)
        found += [(j, a.severity) for a in d.anomalies if a.template == 2]
    assert found[:2] == [(3, "warning"), (4, "critical")], found


def test_service_total_with_a_clear_rhythm_starts_day_two_on_it():
    """Day one shows a strong daily rhythm: the service total is on the daily-linear
    baseline from the first window of day two (a ramp that fails to come is then a drop
    against it), while a template without rhythm stays flat."""
    rng = np.random.default_rng(8)
    det = detector()
    ts = np.zeros(2, np.int32)
    for k in range(DAY + 5):
        det.score(frame(k, [rng.poisson(rhythm(k % DAY)), rng.poisson(20.0)]), ts, 1)
    from logml import countmodel as cm
    assert det.sm["st"][cm.MODE, 0] == cm.DAILY_LINEAR
    assert det.tm["st"][cm.MODE, 1] == cm.FLAT


def test_a_rhythm_that_fails_for_ninety_minutes_is_kept_not_dropped_for_flat():
    """A service total on a daily rhythm with a slow multiplicative wander (as ``logml
    generate --hard`` has). On day three the morning ramp freezes at 08:00 for 90 minutes
    (55 % short of the rhythm at the end, as seasonal incidents are). The total stays on
    its daily-linear baseline throughout (``countmodel.RHYTHM_HOLD``: flat must be 25 %
    better to replace a total's rhythm), so the shortfall is still measured against the
    rhythm at the end. Before, flat took over after 67-77 windows (seeds 8-10), as it did
    80-100 minutes into every seasonal incident of the tuning scenarios, and the shortfall
    vanished from the total's expectation."""
    from logml import countmodel as cm
    rng = np.random.default_rng(8)
    det = detector()
    ts = np.zeros(1, np.int32)
    freeze, back = 2 * DAY + 8 * 60, 2 * DAY + 9 * 60 + 30
    modes, short = [], []
    wander = 0.0
    for k in range(back):
        frozen = freeze <= k
        wander = 0.8 * wander + rng.normal(0.0, 0.04)
        x = rng.poisson(rhythm((freeze if frozen else k) % DAY) * math.exp(wander))
        d = det.score(frame(k, [x]), ts, 1)
        if frozen:
            modes.append(int(det.sm["st"][cm.MODE, 0]))
            short.append(x / d.windows[0].expected_lines)
    assert set(modes) == {cm.DAILY_LINEAR}, modes.index(cm.FLAT)
    assert np.mean(short[-10:]) < 0.75  # flat would expect what it sees: about 1


def test_gradual_error_rise_fires_as_a_run_though_error_lines_come_in_bursts():
    """Error lines arrive in bursts (30 % of windows hold 2-7), so the error count
    is overdispersed and one window at a 10 % error share is ordinary for it. A rise that
    holds is a run of such windows: an error_rate alert within four windows; none in the
    day before, and none from the first window alone."""
    rng = np.random.default_rng(5)
    det = detector()
    ts = np.zeros(3, np.int32)
    lam = np.array([50.0, 30.0, 20.0])
    dets = []
    for k in range(DAY + 10):
        c = rng.poisson(lam)
        share = 0.004 if k < DAY else 0.11
        e = rng.binomial(c, share)
        if k < DAY and rng.random() < 0.3:
            e[1] = min(c[1], rng.integers(2, 8))
        dets.append(det.score(frame(k, c, e), ts, 1))
    assert not [a for a in alerts(dets[DAY // 4:DAY]) if a.type == "error_rate"]
    rise = [i for i, d in enumerate(dets[DAY:]) if any(a.type == "error_rate"
                                                        for a in d.anomalies)]
    assert rise and 1 <= rise[0] <= 3


def test_service_drop_shows_in_its_steady_templates_when_the_total_is_noisy():
    """Half the traffic is one very bursty template; the steady half drops by 60 %: the
    total stays within its burst-inflated noise, the steady templates' weighted test
    (countmodel.family_pass) raises a drop within two windows."""
    rng = np.random.default_rng(9)
    det = detector()
    ts = np.zeros(4, np.int32)
    steady = np.array([40.0, 30.0, 20.0])
    dets = []
    for k in range(DAY + 6):
        s = steady * (0.4 if k >= DAY else 1.0)
        b = 90.0 * rng.gamma(0.7, 1.0 / 0.7)  # the bursty template (k ~ 1.4)
        c = np.concatenate([rng.poisson(s), [rng.poisson(b)]])
        dets.append(det.score(frame(k, c), ts, 1))
    later = dets[DAY:]
    drops = [i for i, d in enumerate(later) if any(a.type == "drop" and a.template == -1
                                                    for a in d.anomalies)]
    assert drops and drops[0] <= 2


def test_an_error_incident_does_not_blunt_the_error_test_for_the_next():
    """An error-rate incident (30 % errors for 15 windows) must not widen the error ratio's
    baseline: its variance learns an outlier's deviation clipped to 3 sd (score.ratio_step),
    so a second, smaller incident (10 %) an hour later is found within two windows (with
    the incident's full deviations in the variance it took 4 windows or was missed); no
    error_rate alert in between."""
    rng = np.random.default_rng(0)
    det = detector()
    ts = np.zeros(3, np.int32)
    lam = np.array([50.0, 30.0, 20.0])
    second = DAY + 75
    dets = []
    for k in range(second + 5):
        c = rng.poisson(lam)
        share = 0.3 if DAY <= k < DAY + 15 else (0.1 if k >= second else 0.005)
        dets.append(det.score(frame(k, c, rng.binomial(c, share)), ts, 1))
    assert not [a for a in alerts(dets[DAY + 18:second]) if a.type == "error_rate"]
    found = [i for i, d in enumerate(dets[second:])
             if any(a.type == "error_rate" for a in d.anomalies)]
    assert found and found[0] <= 1


def test_the_tail_of_a_burst_over_three_windows_adds_nothing():
    """A 90 s burst straddles two window boundaries: its middle window takes 60 s, the
    windows before and after share the rest, so one burst lights up an upward run of
    three. The third window, under half the peak, is the burst's tail: the run is as
    surprising as its peak (countmodel._burst_tail), so no alert on a tail window (before,
    Fisher's method counted the three as independent and 10 of them warned)."""
    rng = np.random.default_rng(4)
    det = detector()
    ts = np.zeros(5, np.int32)
    base = np.array([60.0, 25.0, 12.0, 6.0, 3.0])
    extra = np.zeros(3 * DAY + 3)
    tails = set()
    for k in range(3 * DAY):
        if rng.random() < 0.02:
            size = min(3.0 * (1.0 + rng.pareto(1.3)), 40.0) * base[2]
            f1 = rng.uniform(0.0, 0.5)  # share of the 30 s outside the middle window
            extra[k:k + 3] += size * np.array([f1, 1.0, 0.5 - f1])
            if f1 >= 0.2:  # a clear start: the burst is pending from the run's first window
                tails.add(k + 2)
    dets = []
    for k in range(3 * DAY):
        lam = base.copy()
        lam[2] += extra[k]
        dets.append(det.score(frame(k, rng.poisson(lam)), ts, 1))
    on_tail = [k for k in range(DAY, 3 * DAY) if k in tails and dets[k].anomalies]
    assert len(tails & set(range(DAY, 3 * DAY))) >= 20
    assert len(on_tail) <= 1


def _bursty_with(events, days=3, seed=4):
    """Five templates; the third bursts as in the tail test (90 s bursts over three
    windows, Pareto sizes); ``events(k)`` adds more lines to it at window k."""
    rng = np.random.default_rng(seed)
    det = detector()
    ts = np.zeros(5, np.int32)
    base = np.array([60.0, 25.0, 12.0, 6.0, 3.0])
    extra = np.zeros(days * DAY + 3)
    for k in range(days * DAY):
        if rng.random() < 0.02:
            size = min(3.0 * (1.0 + rng.pareto(1.3)), 40.0) * base[2]
            f1 = rng.uniform(0.0, 0.5)
            extra[k:k + 3] += size * np.array([f1, 1.0, 0.5 - f1])
    dets = []
    for k in range(days * DAY):
        lam = base.copy()
        lam[2] += extra[k] + events(k) * base[2]
        dets.append(det.score(frame(k, rng.poisson(lam)), ts, 1))
    return dets


def test_a_spike_that_holds_its_level_in_a_bursty_template_is_found_by_its_third_window():
    """A spike is a step: after the window it starts in, the level holds. A burst lasts two
    windows at most (countmodel.BURST_WINDOWS), so a third window still at the level the
    run rose to is no burst (countmodel._level_holds): the NB judges it. Before, the three
    windows were combined as if each could be a burst, and 7 of these 8 x6 spikes (each
    starting in the middle of a window, as labelled incidents do) were found only in
    their fourth window."""
    starts = [DAY + 200 + 240 * j for j in range(8)]

    def spike(k):
        for s in starts:
            if k == s:
                return 2.5  # half of the first window at x6
            if s < k < s + 10:
                return 5.0
        return 0.0
    dets = _bursty_with(spike, seed=5)
    late = [s for s in starts
            if not any(a.type == "spike" and a.template == 2
                       for d in dets[s:s + 3] for a in d.anomalies)]
    assert not late, f"spikes not found by their third window: {late}"


def test_bursts_that_do_not_hold_one_level_stay_bursts():
    """A run of three whose third window is more than 1 / BURST_TAIL_SHARE above the
    level the run rose to (x3, x3, then x11 of the mean: a burst on a burst) did not
    hold a level: it stays a run of bursts, and here raises nothing on its third window
    (with the level test one-sided, 6 of these 8 warned)."""
    runs = [DAY + 300 + 300 * j for j in range(8)]

    def chain(k):
        for s in runs:
            if k in (s, s + 1):
                return 2.0
            if k == s + 2:
                return 10.0
        return 0.0
    dets = _bursty_with(chain, seed=5)
    assert len([s for s in runs if any(a.template == 2 for a in dets[s + 2].anomalies)]) <= 1



def _outage_and_return(spike_at=None, seed=9):
    """Six templates of one service on a daily rhythm (``rhythm``, shares fixed, a slow
    multiplicative wander as ``logml generate --hard`` has). On day three the morning
    ramp freezes at 07:00 for two hours (a seasonal incident: every template keeps its
    07:00 level), then traffic returns to its rhythm at once. ``spike_at``: window from
    which template 3 alone runs at x6 for 10 windows. Returns the detections of the hour
    after the return."""
    rng = np.random.default_rng(seed)
    det = detector()
    shares = np.array([0.45, 0.25, 0.12, 0.08, 0.06, 0.04])
    ts = np.zeros(len(shares), np.int32)
    freeze, back = 2 * DAY + 7 * 60, 2 * DAY + 9 * 60
    out = []
    wander = 0.0
    for k in range(back + 60):
        wander = 0.8 * wander + rng.normal(0.0, 0.04)
        lam = rhythm((freeze if freeze <= k < back else k) % DAY) * math.exp(wander) * shares
        if spike_at is not None and spike_at <= k < spike_at + 10:
            lam[3] *= 6.0
        d = det.score(frame(k, rng.poisson(lam)), ts, 1)
        if k >= back:
            out.append(d)
    return out


def test_traffic_returning_after_an_incident_is_no_template_spike():
    """While the traffic was frozen, the template models learnt its lower level (a level
    follows what it sees); when it returns, every template is about 3x what its model
    now expects. That is the service coming back, not a template spiking: a spike needs
    twice its siblings' common rise and twice its usual count at this time of day
    (``detect.common_rise``, ``countmodel.usual_count``). Before, the return raised 21
    critical spikes in two templates over 40 minutes (the busiest at 55-89 lines
    against 17-35 expected). A template that does spike (x6) in the same hour is still critical
    from its first full window."""
    dets = _outage_and_return()
    spikes = [(k, a.template, a.actual, round(a.expected, 1))
              for k, d in enumerate(dets) for a in d.anomalies if a.type == "spike"]
    assert not spikes, spikes
    dets = _outage_and_return(spike_at=2 * DAY + 9 * 60 + 20)
    found = [(k, a.severity) for k, d in enumerate(dets[20:]) for a in d.anomalies
             if a.type == "spike" and a.template == 3]
    assert found and found[0] == (0, "critical"), found


def test_common_rise_is_the_services_move_not_one_siblings():
    """detect.common_rise from countmodel.family_pass's sums, less the template's own."""
    from logml import countmodel as cm
    from logml.detect import RISE_CAP, common_rise

    def rise(x, mu, j):
        n = len(mu)
        out = cm.family_pass(np.zeros(n, np.int64), np.full(n, 100), 30, np.ones(n), mu,
                             0.01, 1, x, np.sqrt(mu), 1.5, RISE_CAP)
        return common_rise(out[5][0], out[6][0], x[j], mu[j])
    mu = np.array([50.0, 30.0, 20.0, 10.0, 5.0])
    assert rise(2.5 * mu, mu, 0) == pytest.approx(2.5)  # all rose alike: the service moved
    spike = mu.copy()
    spike[0] *= 6.0  # the template itself, even the biggest: its own lines are left out
    assert rise(spike, mu, 0) == pytest.approx(1.0)
    burst = mu.copy()
    burst[2] *= 40.0  # one sibling bursts: it counts at most 3x, the rise stays small
    assert rise(burst, mu, 0) == pytest.approx(1.0 + 2.0 * 20.0 / 65.0)
    assert rise(0.5 * mu, mu, 0) == 1.0  # a drop is not a rise: at least 1
    assert rise(3.0 * mu[3:], mu[3:], 0) == 1.0  # siblings of 5 lines say nothing

def test_two_bursts_back_to_back_are_no_critical():
    """In the bursty template of ``_bursty_with``, eight times a burst of 90 s at x8
    starts half-way through a window and a second one of 90 s at x8 starts where it ends:
    four windows in a row at x4.5, x8, x8, x4.5. Two bursts back to back make a run of
    four; a critical needs a longer one (``detect.BURST_RUN_WARNING`` = 2 x
    ``countmodel.BURST_WINDOWS``), so these pairs are at most warnings (one of the eight
    here is critical: an elevated window of the template's own just before it joined the
    pair into a run of five). Before (a run of three), all 8 pairs were critical in
    their fourth window. A template that holds x8 for ten minutes is critical from its
    fifth (the test above)."""
    starts = [DAY + 200 + 240 * j for j in range(8)]
    shape = {0: 3.5, 1: 7.0, 2: 7.0, 3: 3.5}

    def pair(k):
        return sum(shape.get(k - s, 0.0) for s in starts)
    dets = _bursty_with(pair, seed=5)
    crit = [(k, a.actual, round(a.expected, 1)) for k, d in enumerate(dets)
            for a in d.anomalies if a.template == 2 and a.severity == "critical"
            and any(s <= k < s + 4 for s in starts)]
    assert len(crit) <= 1, crit


def test_bursts_in_a_row_that_never_hold_a_level_stay_warnings():
    """Bursts can come in a cluster: here, eight times, six windows in a row at x4, x10,
    x4, x12, x4, x10 of the bursty template's mean. The run outlasts BURST_RUN_WARNING,
    but no window holds the level of the one before (countmodel.same_level): bursts come
    and go, a spike is a step that holds. Such a run stays a warning (before, its fifth
    and sixth windows were critical in all eight); a template that holds x8 is critical
    from its fifth window (``test_bursts_straddling_windows_are_not_critical_but_a_
    sustained_spike_is``)."""
    starts = [DAY + 200 + 300 * j for j in range(8)]
    shape = {0: 3.0, 1: 9.0, 2: 3.0, 3: 11.0, 4: 3.0, 5: 9.0}

    def cluster(k):
        return sum(shape.get(k - s, 0.0) for s in starts)
    dets = _bursty_with(cluster, seed=5)
    warned = [s for s in starts if any(a.template == 2 for d in dets[s:s + 6] for a in d.anomalies)]
    crit = [s for s in starts if any(a.template == 2 and a.severity == "critical"
                                     for d in dets[s:s + 6] for a in d.anomalies)]
    assert len(warned) >= 6, warned  # found: the clusters are not hidden
    assert len(crit) <= 1, crit


def test_a_bursty_templates_rise_off_the_last_windows_level_needs_a_decade_more(monkeypatch):
    """Eight clusters of bursts at x3, x8, x3, x8 of the bursty template's mean: every
    window off the level of the one before (a burst coming or going), then a x6 step that
    holds for ten windows. Scored with ``detect.BURST_STEP_DECADES`` 0 and then 1: every
    cluster window's anomaly is exactly ten times as probable with the decade, so fewer of
    them warn; the step's windows at its level are scored alike and it is found in the
    same window either way (its fourth: a bursty template's step needs persistence). Any
    other window is scored alike or ten times as probable."""
    from logml import detect
    starts = [DAY + 200 + 300 * j for j in range(8)]
    shape = {0: 2.0, 1: 7.0, 2: 2.0, 3: 7.0}
    step = DAY + 200 + 300 * 8

    def events(k):
        return 5.0 if step <= k < step + 10 else sum(shape.get(k - s, 0.0) for s in starts)

    def scored(decades):
        monkeypatch.setattr(detect, "BURST_STEP_DECADES", decades)
        dets = _bursty_with(events, seed=5)
        return {k: a.probability for k, d in enumerate(dets) for a in d.anomalies
                if a.template == 2 and a.type == "spike"}
    without, with_ = scored(0.0), scored(1.0)
    ratio = {k: with_[k] / without[k] for k in set(with_) & set(without)}
    assert all(r == pytest.approx(1.0) or r == pytest.approx(10.0) for r in ratio.values())
    in_cluster = {s + j for s in starts for j in shape}
    assert in_cluster & set(ratio)
    assert all(ratio[k] == pytest.approx(10.0) for k in in_cluster & set(ratio))
    assert len(in_cluster & set(with_)) < len(in_cluster & set(without))
    held = [k for k in range(step + 3, step + 10) if k in ratio]
    assert held and all(ratio[k] == pytest.approx(1.0) for k in held)
    found = [min(k for k in range(step, step + 10) if k in p) for p in (without, with_)]
    assert found[0] == found[1] <= step + 3


def test_a_level_within_the_counts_poisson_noise_is_held():
    """``detect._at_level``: a step that holds may differ by more than 1 / 0.7 from one
    window to the next when its counts are small (62 then 38 lines of a x8 step: Poisson
    noise); the band widens by one standard error of the two counts' log-ratio. A burst
    coming (x3 to x8 of the mean) is off the level; an empty last window is no level."""
    from logml.detect import _at_level
    mu = np.full(4, 6.0)
    lx = np.log(np.array([62.0, 36.0, 300.0, 1e-13]) / 6.0)
    lx[3] = -30.0  # countmodel.LX_NONE
    x = np.array([38.0, 18.0, 310.0, 40.0])
    assert _at_level(lx, x, mu).tolist() == [True, False, True, False]
    assert not _at_level(np.log(np.array([600.0])), np.array([380.0]), np.array([6.0]))[0]


def _nightly_job(days, rate_on_last_day=1.0, seed=3):
    """Three steady templates and a nightly job: template 3 logs 15 lines a minute from
    03:43 to 04:43 every day (a job at a time that is not on the hour, as a host in
    another time zone runs it) and a trickle of 0.25 a minute the rest of the day (as a
    template merged from the job's message and another one has), at
    ``rate_on_last_day`` x that on the last day. Returns the detections of each window."""
    rng = np.random.default_rng(seed)
    det = detector()
    ts = np.zeros(4, np.int32)
    dets = []
    for k in range(days * DAY):
        lam = np.array([60.0, 25.0, 12.0, 0.25])
        if 3 * 60 + 43 <= k % DAY < 4 * 60 + 43:
            lam[3] = 15.0 * (rate_on_last_day if k >= (days - 1) * DAY else 1.0)
        dets.append(det.score(frame(k, rng.poisson(lam)), ts, 1))
    return dets


def test_a_nightly_job_is_no_spike_nor_drop_once_its_hours_are_known():
    """A job's template runs for an hour a day. Hour slots place its start and end to the
    hour only (03:43-04:43 is 17/60 of the 03:00 hour and 43/60 of the 04:00 one), and its
    own model lags it at both ends. From its second day its two hours stand out of its
    day (countmodel.job_hours): within an hour of them it is a spike only at twice the
    job's rate, and it has no drop there. Before, its runs on days two to four raised 50
    alerts; now at most one (a window of 24 lines: the hour means learn a job's first
    windows clipped, so they hold a little less than its rate)."""
    dets = _nightly_job(4)
    job = [(k // DAY, k % DAY, a.type, a.severity) for k, d in enumerate(dets)
           if k >= DAY for a in d.anomalies if a.template == 3]
    assert len(job) <= 1, job


def test_a_nightly_job_at_three_times_its_rate_is_a_spike():
    """The job's hours do not hide the job running wild: at x3 its rate on the fourth day
    it is a spike within its first windows."""
    dets = _nightly_job(4, rate_on_last_day=3.0)
    start = 3 * DAY + 3 * 60 + 43
    found = [k - start for k in range(start, start + 60) for a in dets[k].anomalies
             if a.template == 3 and a.type == "spike"]
    assert found and found[0] <= 3, found


def _business_day(minute):
    """Lines a minute at a minute of the day: 30 at night, a smooth two-hour ramp from 07:00
    to 300, down again over three hours from 18:00."""
    u = np.clip((np.asarray(minute) / 60.0 - 7.0) / 2.0, 0.0, 1.0)
    d = np.clip((np.asarray(minute) / 60.0 - 18.0) / 3.0, 0.0, 1.0)
    return 30.0 + 270.0 * u * u * (3 - 2 * u) * (1 - d * d * (3 - 2 * d))


def test_a_ramp_that_stalls_is_judged_against_the_days_curve_not_a_level_that_follows():
    """Four templates, one bursting x3-x8 now and then, slow multiplicative noise; on day
    four the morning ramp stalls 40 minutes in and traffic stays where it was. The
    baseline's own level follows the stall (it learns each window); the sustained-shortfall
    test judges the service against the day's curve with a slow level instead
    (``shortfall.slow_expectation``), so its drop comes within six windows of the traffic
    being 30 % short and expects what the curve says (before: nine windows, expecting 11 %
    less than the curve, its level having followed the stall)."""
    rng = np.random.default_rng(4)
    det = detector()
    ts = np.zeros(4, np.int32)
    share = np.array([0.5, 0.3, 0.15, 0.05])
    stall = 3 * DAY + 7 * 60 + 40
    noise, first = 0.0, None
    for k in range(stall + 40):
        noise = 0.8 * noise + rng.normal(0.0, 0.04)
        lam = _business_day(min(k, stall) % DAY) * math.exp(noise)
        mult = np.ones(4)
        if rng.random() < 0.04:
            mult[1] = rng.uniform(3, 8)
        d = det.score(frame(k, rng.poisson(lam * share * mult)), ts, 1)
        drops = [a for a in d.anomalies if a.type == "drop" and a.template == -1]
        if k >= stall and drops and first is None:
            first = (k - stall, drops[0].expected / float(_business_day(k % DAY)))
    usual = _business_day(np.arange(stall % DAY, stall % DAY + 40))
    material = int(np.argmax(_business_day(stall % DAY) / usual <= 0.7))
    assert first is not None and first[0] <= material + 6, (material, first)
    assert first[1] >= 0.95, first


def _morning_job(days, silent_from=None, seed=5):
    """A service of two steady templates (12 and 8 lines a minute) and a daily job that
    doubles it: template 2 logs 20 lines a minute from 08:45 to 09:45 (a trickle of 0.25
    the rest of the day). From ``silent_from`` (a window index) the service logs nothing.
    Returns the detections of each window."""
    rng = np.random.default_rng(seed)
    det = detector()
    ts = np.zeros(3, np.int32)
    dets = []
    for k in range(days * DAY):
        lam = np.array([12.0, 8.0, 0.25])
        if 8 * 60 + 45 <= k % DAY < 9 * 60 + 45:
            lam[2] = 20.0
        if silent_from is not None and k >= silent_from:
            lam[:] = 0.0
        dets.append(det.score(frame(k, rng.poisson(lam)), ts, 1))
    return dets


def test_the_end_of_a_daily_job_is_no_service_drop():
    """The job's hour slots hold it to the hour only: at 09:45 the service's day curve
    still expects about half the job's lines, and the service logs 30-40 % less than that
    window after window. Near a job's hours the total's drop is judged by the window alone
    against the expectation less the job's usual lines it misses (``Detector._job_lines``):
    no critical drop of the service on days two to four (before: criticals between 09:48
    and 09:53 each day, a run of short windows combined). Its warnings stay: the
    sustained-shortfall test still judges the hour against the whole curve."""
    dets = _morning_job(4)
    drops = [(k // DAY, k % DAY, a.severity) for k, d in enumerate(dets) if k >= DAY
             for a in d.anomalies if a.type == "drop" and a.template == -1]
    assert not [d for d in drops if d[2] == "critical"], drops


def test_a_service_silent_after_its_daily_job_is_still_a_critical_drop():
    """What the job's hours forgive is the job's own lines: the service going silent at
    09:50 on day four is a critical drop within three windows."""
    silent = 3 * DAY + 9 * 60 + 50
    dets = _morning_job(4, silent_from=silent)
    found = [k - silent for k in range(silent, silent + 10) for a in dets[k].anomalies
             if a.type == "drop" and a.template == -1 and a.severity == "critical"]
    assert found and found[0] <= 2, found


def test_a_drop_judged_without_the_jobs_lines_reports_that_expectation():
    """The record says what the window was judged against: silent at 09:50 on day four,
    the service's expectation (about 32 lines) still holds the job's usual lines, the drop
    was judged against the rest (the steady templates' 20 and what is left of the job), and
    that is its ``expected``, with bounds around it."""
    silent = 3 * DAY + 9 * 60 + 50
    dets = _morning_job(4, silent_from=silent)
    drop = [a for a in dets[silent].anomalies if a.type == "drop" and a.template == -1]
    assert drop, dets[silent].anomalies
    full = dets[silent].windows[0].expected_lines
    assert 18.0 < drop[0].expected < full - 5.0, (drop[0].expected, full)
    assert drop[0].lower < drop[0].expected < drop[0].upper < full + 10.0
