"""Scoring kernels throughput: series-updates/s of ewma_step (numba) vs its numpy reference,
and how the cost grows with the number of series. One core (the kernels are not parallel)."""
import time

import numpy as np
import pytest

from logml.score import (
    ewma_step, ewma_step_reference, ratio_step, seasonal_step, trend_step,
)

N = 100_000
WINDOWS = 200
PARAMS = (0.05, 0.005, 1.0, 10, 4.0)  # alpha, alpha_anomalous, floor, warmup, damp_z
MAX_CELLS = 20_000_000  # cap the pre-generated matrix at 160 MB; larger n cycle its rows


def counts(n, rows, seed=0):
    """[rows, n] Poisson counts; per-series rates spread over decades (lognormal)."""
    rng = np.random.default_rng(seed)
    lam = rng.lognormal(1.5, 1.5, n)
    return rng.poisson(lam, (rows, n)).astype(np.float64)


def state(n):
    return np.zeros(n), np.zeros(n), np.zeros(n, np.int64), np.zeros(n)


def run_ewma(x, windows, mean, var, seen, z):
    rows = x.shape[0]
    for w in range(windows):
        ewma_step(x[w % rows], mean, var, seen, *PARAMS, z)


def best_of(fn, rounds=3):
    best = np.inf
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


@pytest.fixture(scope="module")
def matrix():
    return counts(N, WINDOWS)


def test_score_kernels(benchmark, matrix, record):
    x = matrix
    run_ewma(x, 2, *state(N))  # jit warm-up (cached on disk after the first run)

    benchmark.pedantic(run_ewma, setup=lambda: ((x, WINDOWS, *state(N)), {}),
                       rounds=5, iterations=1)
    kernel_s = benchmark.stats.stats.min
    kernel_rate = N * WINDOWS / kernel_s

    def reference():
        mean, var, seen, _ = state(N)
        for w in range(WINDOWS):
            _, mean, var, seen = ewma_step_reference(x[w], mean, var, seen, *PARAMS)
    ref_rate = N * WINDOWS / best_of(reference, rounds=2)

    # the kernel and the reference agree on the whole run
    mean, var, seen, z = state(N)
    run_ewma(x, WINDOWS, mean, var, seen, z)
    rm, rv, rs = np.zeros(N), np.zeros(N), np.zeros(N, np.int64)
    for w in range(WINDOWS):
        rz, rm, rv, rs = ewma_step_reference(x[w], rm, rv, rs, *PARAMS)
    np.testing.assert_allclose(z, rz, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(mean, rm, rtol=1e-9, atol=1e-12)

    # how cost grows with the number of series (same 200 windows each)
    scaling = {}
    for n in (10_000, 100_000, 1_000_000):
        xs = x if n == N else counts(n, min(WINDOWS, MAX_CELLS // n), seed=n)
        st = state(n)
        s = best_of(lambda: run_ewma(xs, WINDOWS, *st))
        scaling[n] = (n * WINDOWS / s, s / (n * WINDOWS) * 1e9)
        del xs

    # the other per-window kernels at N series, for the window-close budget
    lines = x + 1.0
    errors = np.floor(x * 0.01)
    mean, var, seen, z = state(N)
    ratio_rate = N * WINDOWS / best_of(lambda: [
        ratio_step(errors[w], lines[w], mean, var, seen, 0.05, 0.005, 0.001, 10, 4.0, z)
        for w in range(WINDOWS)])
    level, slope = np.full(N, np.nan), np.zeros(N)
    trend_rate = N * WINDOWS / best_of(lambda: [
        trend_step(x[w], level, slope, 0.3, 0.1, z) for w in range(WINDOWS)])
    seasonal = {}
    for order in "CF":  # [n, 168] state: C order strides a slot's column, F keeps it contiguous
        smean, svar = np.full((N, 168), 0.0, order=order), np.full((N, 168), 0.0, order=order)
        sseen = np.full((N, 168), 0, np.int64, order=order)
        seasonal[order] = N * WINDOWS / best_of(lambda: [
            seasonal_step(x[w], w % 168, smean, svar, sseen, *PARAMS, z)
            for w in range(WINDOWS)], rounds=2)
        del smean, svar, sseen

    benchmark.extra_info.update(ewma_updates_per_s=kernel_rate, reference_updates_per_s=ref_rate,
                                speedup=kernel_rate / ref_rate)
    record("score_kernels", series=N, windows=WINDOWS,
           ewma_updates_per_s=round(kernel_rate),
           ewma_ns_per_update=round(kernel_s / (N * WINDOWS) * 1e9, 3),
           reference_updates_per_s=round(ref_rate),
           speedup_vs_numpy=round(kernel_rate / ref_rate, 1),
           **{f"ewma_updates_per_s_{n // 1000}k": round(r) for n, (r, _) in scaling.items()},
           **{f"ewma_ns_per_update_{n // 1000}k": round(ns, 3)
              for n, (_, ns) in scaling.items()},
           ratio_updates_per_s=round(ratio_rate), trend_updates_per_s=round(trend_rate),
           seasonal_updates_per_s_c_order=round(seasonal["C"]),
           seasonal_updates_per_s_f_order=round(seasonal["F"]))
    assert kernel_rate >= 50e6, f"ewma_step does {kernel_rate / 1e6:.1f}M series-updates/s"
