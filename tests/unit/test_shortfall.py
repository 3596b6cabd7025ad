"""The sustained-shortfall test of service totals (logml/shortfall.py), on data built for
it: a total that stops following its ramp must fire; stationary noise must stay quiet."""
import numpy as np
import pytest

from logml import shortfall


def _run(x, mu, day_windows=1440.0, learn_below=3.5):
    st = shortfall.new_state(1)
    idx = np.array([0])
    out = []
    for i, (xi, mi) in enumerate(zip(x, mu)):
        out.append(shortfall.step(st, idx, np.array([xi], float), np.array([mi], float),
                                  np.array([i]), day_windows, learn_below)[0])
    return np.array(out)


def test_stationary_noise_stays_quiet():
    # overdispersed, autocorrelated noise around a known expectation: a day and a half
    rng = np.random.default_rng(4)
    n = 2160
    drift = np.exp(np.convolve(rng.normal(0, 0.04, n + 20), np.ones(5) / 5, "same")[:n])
    mu = np.full(n, 80.0)
    x = rng.poisson(mu * drift)
    s = _run(x, mu)
    assert (s[shortfall.TEST_AFTER:] >= 3.5).mean() < 1e-3


def test_a_total_that_stops_following_its_ramp_fires_within_a_few_windows():
    # after a quiet day, the expectation ramps up 2 % a window; the traffic freezes
    rng = np.random.default_rng(5)
    n0 = 1440
    mu = np.concatenate([np.full(n0, 60.0), 60.0 * 1.02 ** np.arange(1, 41)])
    x = np.concatenate([rng.poisson(mu[:n0]), rng.poisson(np.full(40, 60.0))])
    s = _run(x, mu)
    assert (s[:n0][shortfall.TEST_AFTER:] >= 3.5).sum() == 0
    fired = np.flatnonzero(s[n0:] >= 3.5)
    # 30 % short at window 18 (1.02^18 = 1.43): found by then
    assert len(fired) and fired[0] <= 18, fired[:5]


def test_a_burst_does_not_hide_a_shortfall_and_a_rise_never_fires():
    rng = np.random.default_rng(6)
    mu = np.full(1500, 100.0)
    x = rng.poisson(mu).astype(float)
    x[1460:1480] *= 0.6          # 40 % short for 20 windows ...
    x[1465] = 2000.0             # ... with a burst in the middle
    x[1300:1320] *= 1.6          # a rise: never a shortfall
    s = _run(x, mu)
    assert (s[1300:1340] == 0).all()
    assert (s[1466:1480] >= 3.5).all()  # through and after the burst


def test_the_slow_level_stands_in_for_a_rhythms_level_and_follows_it_slowly():
    """Three totals, their baseline levels falling from 100 to 60 at once: on a rhythm,
    the shortfall's expectation keeps the slow level (mu x slow / level), which moves half
    way in SLOW_HOURS; a flat baseline's expectation is its own; a total whose baseline in
    use changed starts the slow level afresh at the new baseline's."""
    state = shortfall.new_state(3)
    idx = np.arange(3)
    gain = 1.0 - 0.5 ** (60.0 / (shortfall.SLOW_HOURS * 3600.0))
    rhythm = np.array([True, False, True])
    mu = np.full(3, 50.0)
    # first window: no slow level yet, the expectation is the baseline's
    out = shortfall.slow_expectation(state, idx, mu, np.full(3, 100.0), np.full(3, 100.0),
                                     rhythm, np.zeros(3, bool), gain)
    assert np.array_equal(out, mu) and np.array_equal(state["short_slow"], np.full(3, 100.0))
    changed = np.array([False, False, True])
    out = shortfall.slow_expectation(state, idx, np.full(3, 30.0), np.full(3, 60.0),
                                     np.full(3, 60.0), rhythm, changed, gain)
    assert out == pytest.approx([50.0, 30.0, 30.0])
    assert state["short_slow"][2] == 60.0
    windows = int(round(shortfall.SLOW_HOURS * 60)) - 1
    for _ in range(windows):
        shortfall.slow_expectation(state, idx, np.full(3, 30.0), np.full(3, 60.0),
                                   np.full(3, 60.0), rhythm, np.zeros(3, bool), gain)
    assert state["short_slow"][0] == pytest.approx(80.0, rel=1e-3)
