"""The noise measure of benchmarks/detectability.py: what it calls a ramp and the spread
it reports, on data where the answer is known."""
import numpy as np

from benchmarks import detectability as dt


def test_a_ramp_is_where_the_rate_changes_by_half_within_the_hour_around():
    lam = np.concatenate([np.full(200, 20.0), np.linspace(20.0, 100.0, 60), np.full(200, 100.0)])
    ramp = dt.ramps(lam)
    assert not ramp[:160].any() and not ramp[300:].any()
    assert ramp[180:240].all()  # the rise and the half hour before it, where the hour
    assert not ramp[170] and not ramp[258]  # around holds a change of half the rate


def test_poisson_counts_around_their_exact_rate_have_spread_one_at_every_scale():
    rng = np.random.default_rng(7)
    lam = np.full(20000, 50.0)
    x = rng.poisson(lam).astype(float)
    null = np.ones(len(lam), bool)
    z, _, _ = dt.evidence(x, lam, null)
    out = dt.noise(z, z, null, np.zeros(len(lam), bool))
    for k in dt.NOISE_SCALES:
        assert abs(out[f"flat_{k}"]["oracle"] - 1.0) < 0.08
        assert out[f"ramp_{k}"] == {"windows": 0, "oracle": None, "logml": None}


def test_an_expectation_that_lags_a_ramp_shows_as_noise_on_the_ramp_only():
    rng = np.random.default_rng(8)
    day = np.concatenate([np.full(600, 30.0), np.linspace(30.0, 120.0, 120), np.full(720, 120.0)])
    lam = np.tile(day, 4)
    x = rng.poisson(lam).astype(float)
    lagging = np.concatenate([lam[:20], lam[:-20]])  # 20 windows late
    null = np.ones(len(lam), bool)
    z_o, _, _ = dt.evidence(x, lam, null)
    z_l, _, _ = dt.evidence(x, lagging, null)
    out = dt.noise(z_o, z_l, null, dt.ramps(lam))
    assert out["ramp_4"]["logml"] > 3.0 * out["ramp_4"]["oracle"]
    assert abs(out["flat_4"]["logml"] - out["flat_4"]["oracle"]) < 0.15


def test_one_threshold_for_all_is_the_loosest_whose_pooled_alarms_fit_the_budget():
    # pooled false alarms fall as the threshold tightens (THETAS run loose to strict)
    alarms = np.linspace(400.0, 0.0, len(dt.THETAS)).round()
    days = 100.0  # 2 a service-day is 200 alarms: the middle of THETAS
    theta, caught = dt.frontier(alarms, days, [], 2.0)
    k = int(np.flatnonzero(alarms / days <= 2.0).min())
    assert theta == dt.THETAS[k] and alarms[k] <= 200 < alarms[k - 1]
    p = np.array([dt.THETAS[k] / 10, dt.THETAS[k], dt.THETAS[k] * 1.5, 0.5])
    assert dt.frontier(alarms, days, p, 2.0) == (theta, 2)  # the last two need more
    assert dt.frontier(alarms, days, p, 1e-9) == (dt.THETAS[-1], 0)  # 0 alarms at the end
    assert dt.frontier(alarms + 1, days, p, 1e-9) == (None, 0)  # none fits


def test_alarms_by_threshold_counts_grouped_ordinary_windows():
    p = np.full(100, 0.5)
    p[[10, 11, 50]] = 1e-3  # two alarms: 10-11 is one
    null = np.ones(100, bool)
    counts = dt.alarms_by_threshold(p, null)
    assert counts[0] == 2 and counts[-1] == 0  # THETAS[0] = 0.1, THETAS[-1] = 1e-5
    null[50] = False  # inside an incident: not a false alarm
    assert dt.alarms_by_threshold(p, null)[0] == 1
