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



def test_caught_by_budget_counts_what_a_test_with_part_of_the_budget_would_catch():
    rows = [{"type": "gradual", "false_alarms_per_service_day": fa,
             "logml_baseline_false_alarms_per_service_day": fl}
            for fa, fl in ((0.0, 0.0), (0.4, 1.5), (0.9, 2.0), (1.9, 6.0), (2.5, 9.0))]
    rows.append({"type": "seasonal", "false_alarms_per_service_day": 0.7,
                 "logml_baseline_false_alarms_per_service_day": 0.5})
    out = dt.caught_by_budget(rows)
    assert out["0.5"] == {"oracle": {"gradual": 2, "seasonal": 0},
                          "logml": {"gradual": 1, "seasonal": 1}}
    assert out["1"]["oracle"] == {"gradual": 3, "seasonal": 1}
    assert out["2"] == {"oracle": {"gradual": 4, "seasonal": 1},
                        "logml": {"gradual": 3, "seasonal": 1}}
