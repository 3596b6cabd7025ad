import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from logml.score import (
    outage_probability, outage_probability_reference, ratio_step, ratio_step_reference,
    trend_step, trend_step_reference,
)

RTOL, ATOL = 1e-9, 1e-12
SETTINGS = settings(max_examples=150, deadline=None)


def close(got, want):
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


# ---------------------------------------------------------------- strategies
N = st.integers(1, 24)
# counts: zeros, small, large; plus non-integer values
COUNT = st.one_of(st.just(0.0), st.integers(0, 20).map(float), st.integers(0, 10**9).map(float),
                  st.floats(0.0, 1e6))
LEVEL = st.one_of(st.just(0.0), st.floats(-1e3, 1e9))  # a baseline mean (may be negative)
VAR = st.one_of(st.just(0.0), st.floats(0.0, 1e12))
SEEN = st.integers(0, 12)
PARAMS = st.tuples(
    st.floats(1e-4, 1.0),                 # alpha
    st.floats(0.0, 1.0),                  # alpha_anomalous (scaled by alpha below)
    st.one_of(st.just(0.0), st.just(1.0), st.floats(0.0, 10.0)),  # floor (0 hits std == 0)
    st.integers(0, 6),                    # warmup
    st.one_of(st.floats(0.0, 10.0), st.just(np.inf)),  # damp_z
).map(lambda p: (p[0], p[0] * p[1], p[2], p[3], p[4]))


def arr(n, elements, dtype=np.float64):
    return hnp.arrays(dtype, n, elements=elements)


def run_kernel(kernel, inputs, state, params):
    """Run an in-place kernel on copies; returns (z, *state_after)."""
    state = [s.copy() for s in state]
    z = np.full(inputs[0].shape[0], np.nan)
    kernel(*inputs, *state, *params, z)
    return (z, *state)


# ---------------------------------------------------------------- ratio_step
RATIO_PARAMS = PARAMS.map(lambda p: (p[0], p[1], p[2] / 100, p[3], p[4]))


@st.composite
def ratio_case(draw):
    n = draw(N)
    lines = draw(arr(n, st.one_of(st.just(0.0), st.integers(1, 20).map(float),
                                  st.integers(0, 10**7).map(float))))
    frac = draw(arr(n, st.one_of(st.just(0.0), st.just(1.0), st.floats(0.0, 1.0))))
    errors = np.floor(frac * lines)
    mean = draw(arr(n, st.one_of(st.just(0.0), st.floats(0.0, 1.0))))
    var = draw(arr(n, st.one_of(st.just(0.0), st.floats(0.0, 0.25))))
    return errors, lines, mean, var, draw(arr(n, SEEN, np.int64)), draw(RATIO_PARAMS)


@SETTINGS
@given(ratio_case())
def test_ratio_kernel_matches_reference(case):
    errors, lines, mean, var, seen, params = case
    frozen = [a.copy() for a in (errors, lines, mean, var, seen)]
    want = ratio_step_reference(errors, lines, mean, var, seen, *params)
    for a, b in zip((errors, lines, mean, var, seen), frozen):
        np.testing.assert_array_equal(a, b)
    got = run_kernel(ratio_step, (errors, lines), (mean, var, seen), params)
    for g, w in zip(got, want):
        close(g, w)


def ratio_state(n, p, windows=40, lines=1000.0, floor=0.001):
    mean, var = np.zeros(n), np.zeros(n)
    seen, z = np.zeros(n, np.int64), np.zeros(n)
    for _ in range(windows):
        ratio_step(np.full(n, p * lines), np.full(n, lines), mean, var, seen,
                   0.1, 0.01, floor, 5, 4.0, z)
    return mean, var, seen, z


def test_ratio_without_lines_keeps_baseline():
    mean, var, seen, z = ratio_state(2, 0.1)
    before = mean.copy(), var.copy(), seen.copy()
    ratio_step(np.array([0.0, 5.0]), np.array([0.0, 0.0]), mean, var, seen,
               0.1, 0.01, 0.001, 5, 4.0, z)
    assert np.all(z == 0)
    for a, b in zip((mean, var, seen), before):
        np.testing.assert_array_equal(a, b)


def test_ratio_binomial_floor():
    mean, var, seen, z = ratio_state(1, 0.5)
    # 4 errors in 10 lines vs p = 0.5: binomial std = sqrt(0.25 / 10), |z| ~ 0.63
    ratio_step(np.array([4.0]), np.array([10.0]), mean, var, seen, 0.1, 0.01, 0.001, 5, 4.0, z)
    assert z[0] == pytest.approx(-0.1 / np.sqrt(0.025))
    # the same ratio over 100k lines is far outside binomial noise
    mean, var, seen, z = ratio_state(1, 0.5)
    ratio_step(np.array([40_000.0]), np.array([100_000.0]), mean, var, seen,
               0.1, 0.01, 0.001, 5, 4.0, z)
    assert z[0] < -4


def test_error_ratio_jump_alarms():
    mean, var, seen, z = ratio_state(1, 0.01)
    ratio_step(np.array([300.0]), np.array([1000.0]), mean, var, seen, 0.1, 0.01, 0.001, 5, 4.0,
               z)
    assert z[0] > 4


# ---------------------------------------------------------------- trend
@st.composite
def trend_case(draw):
    n = draw(N)
    maybe_nan = st.one_of(st.just(np.nan), st.floats(-1e6, 1e6))
    x = draw(arr(n, st.one_of(maybe_nan, st.just(0.0))))
    level = draw(arr(n, maybe_nan))
    slope = draw(arr(n, st.floats(-1e3, 1e3)))
    return x, level, slope, draw(st.floats(0.0, 1.0)), draw(st.floats(0.0, 1.0))


@SETTINGS
@given(trend_case())
def test_trend_kernel_matches_reference(case):
    x, level, slope, alpha, beta = case
    frozen = [a.copy() for a in (x, level, slope)]
    want_slope, want_level, want_state = trend_step_reference(x, level, slope, alpha, beta)
    for a, b in zip((x, level, slope), frozen):
        np.testing.assert_array_equal(a, b)
    lvl, b, out = level.copy(), slope.copy(), np.full(len(x), -7.0)
    trend_step(x, lvl, b, alpha, beta, out)
    for g, w in ((out, want_slope), (lvl, want_level), (b, want_state)):
        np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL, equal_nan=True)


def run_trend(xs, alpha=0.5, beta=0.3):
    level, slope, out = np.full(1, np.nan), np.zeros(1), np.zeros(1)
    outs = []
    for x in xs:
        trend_step(np.array([x], float), level, slope, alpha, beta, out)
        outs.append(out[0])
    return np.array(outs), level[0]


def test_trend_follows_a_ramp_and_ignores_flat():
    outs, _ = run_trend([0.01 * k for k in range(60)])
    assert outs[0] == 0 and outs[-1] == pytest.approx(0.01, rel=1e-3)
    outs, level = run_trend([0.2] * 30)
    assert np.all(outs == 0) and level == 0.2


def test_trend_skips_missing_observations():
    outs, level = run_trend([np.nan, np.nan, 1.0, 2.0, np.nan, 3.0])
    assert outs[0] == outs[1] == outs[2] == 0
    assert outs[4] == outs[3] > 0  # the gap reports the slope so far


# ---------------------------------------------------------------- outage probability / score
FINITE = st.floats(-1e6, 1e6)
WEIGHT = st.floats(0.0, 100.0)


@SETTINGS
@given(st.integers(1, 30).flatmap(lambda n: st.tuples(arr(n, FINITE), arr(n, FINITE))),
       FINITE, WEIGHT, WEIGHT)
def test_outage_kernel_matches_reference(arrays, bias, w_score, w_trend):
    score, trend = arrays
    got = outage_probability(score, trend, bias, w_score, w_trend)
    close(got, outage_probability_reference(score, trend, bias, w_score, w_trend))
    assert np.all((got >= 0) & (got <= 1))


@SETTINGS
@given(st.lists(FINITE, min_size=2, max_size=30), FINITE, FINITE, WEIGHT, WEIGHT)
def test_outage_is_monotone_in_score_and_trend(values, other, bias, w_score, w_trend):
    v = np.sort(np.array(values))
    const = np.full(len(v), other)
    by_score = outage_probability(v, const, bias, w_score, w_trend)
    by_trend = outage_probability(const, v, bias, w_score, w_trend)
    assert np.all(np.diff(by_score) >= 0) and np.all(np.diff(by_trend) >= 0)


def test_rising_ratio_raises_outage_before_threshold():
    # an error ratio creeping up: its z stays small, but the trend lifts P(outage)
    ratios = 0.01 + 0.002 * np.arange(20)
    slopes, _ = run_trend(ratios)
    p = outage_probability(np.zeros(20), slopes, -4.0, 1.0, 1000.0)
    assert np.all(np.diff(p[:5]) > 0) and p[-1] > 3 * p[0]


def test_outage_extremes():
    p = outage_probability(np.array([1e308, -1e308, 0.0]), np.zeros(3), 0.0, 1.0, 1.0)
    np.testing.assert_array_equal(p, [1.0, 0.0, 0.5])

