"""Scoring kernels of the error ratio and the outage probability: per-window baselines,
z-scores, trends. (Count series are scored by ``countmodel``.)

Every kernel takes the arrays of *all* series at once and runs one numba loop over them,
so a window close costs one call per kernel, not one Python call per series. State lives
in arrays the caller owns (mean, var, seen, level, slope); the ``*_step`` kernels update
it in place and write their output into a caller-provided array, so nothing is allocated
per window. Each kernel has a ``*_reference``: the same specification in plain vectorized
numpy, which returns new arrays instead of mutating; the tests compare the two.

The error-ratio baseline is West's incremental exponentially weighted mean and variance.
The z-score's denominator never drops below a noise floor, std >= sqrt(p(1-p)/lines)
(binomial noise) and >= ``floor``, because a series that has been perfectly flat (var ~ 0)
would otherwise turn any wiggle into an enormous z. The first ``warmup`` observations of
a series only train its baseline (z = 0). After that, an observation with |z| >
``damp_z`` updates the mean with the smaller ``alpha_anomalous`` and the variance with
its deviation clipped to ``damp_z`` sd (Huber), so an incident does not quickly become
the new normal, nor widen the baseline so that the next incident looks ordinary.
"""
from __future__ import annotations

import math

import numba as nb
import numpy as np


# Kernels use error_model="numpy": a float division then needs no ZeroDivisionError check
# inside the loop (the only division that could see 0 is guarded anyway).


# ---------------------------------------------------------------- shared element update
@nb.njit(cache=True, error_model="numpy", inline="always")
def _ewma_one(x, m, v, s, min_var, alpha, alpha_anomalous, warmup, damp_z):
    """One series, one observation: returns (z_out, mean, var, seen).

    ``min_var`` is the squared noise floor, computed by the caller from the current
    baseline (Poisson or binomial), so counts and ratios share this code.
    """
    if s == 0:
        return 0.0, x, 0.0, 1
    var_eff = v if v > min_var else min_var
    std = math.sqrt(var_eff)
    diff = x - m
    z = diff / std if std > 0.0 else 0.0
    warm = s >= warmup
    a = alpha
    dv = diff  # the deviation the variance learns from
    if warm and abs(z) > damp_z:
        # an outlier (an incident): the mean learns slowly, the variance from the
        # deviation clipped to damp_z sd (Huber), so an incident does not widen the
        # baseline and blunt the test of the next one for hours
        a = alpha_anomalous
        dv = math.copysign(damp_z * std, diff)
    incr = a * diff
    return (z if warm else 0.0), m + incr, (1.0 - a) * (v + dv * a * dv), s + 1


def _ewma_reference(x, mean, var, seen, min_var, alpha, alpha_anomalous, warmup, damp_z):
    """Vectorized ``_ewma_one``; returns new arrays (z, mean, var, seen)."""
    first = seen == 0
    std = np.sqrt(np.maximum(var, min_var))
    diff = x - mean
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(std > 0.0, diff / std, 0.0)
    warm = seen >= warmup
    out = warm & (np.abs(z) > damp_z)
    a = np.where(out, alpha_anomalous, alpha)
    dv = np.where(out, np.copysign(damp_z * std, diff), diff)
    incr = a * diff
    z_out = np.where(warm & ~first, z, 0.0)
    mean_new = np.where(first, x, mean + incr)
    var_new = np.where(first, 0.0, (1.0 - a) * (var + dv * a * dv))
    return z_out, mean_new, var_new, seen + 1


# ---------------------------------------------------------------- error ratio
@nb.njit(cache=True, error_model="numpy")
def ratio_step(errors, lines, mean, var, seen, alpha, alpha_anomalous, floor, warmup, damp_z,
               z_out):
    """Score each service's error ratio errors/lines against its baseline, then update it.

    std = sqrt(max(var, floor**2, p(1-p)/lines)) with p the baseline ratio: the binomial
    noise of a ratio over few lines is large, so 1 error in 3 lines is not an incident.
    A window with no lines says nothing about the ratio: z = 0 and the baseline is kept.
    """
    floor2 = floor * floor
    for i in range(errors.shape[0]):
        n = lines[i]
        if not n > 0:
            z_out[i] = 0.0
            continue
        r = errors[i] / n
        m = mean[i]
        binom = m * (1.0 - m) / (n if n > 1 else 1)
        min_var = binom if binom > floor2 else floor2
        z, mean[i], var[i], seen[i] = _ewma_one(r, m, var[i], seen[i], min_var,
                                                 alpha, alpha_anomalous, warmup, damp_z)
        z_out[i] = z


def ratio_step_reference(errors, lines, mean, var, seen, alpha, alpha_anomalous, floor, warmup,
                         damp_z):
    """numpy spec of ``ratio_step``: returns (z, mean_new, var_new, seen_new), no mutation."""
    errors, lines, mean, var = (np.asarray(a, dtype=np.float64)
                                for a in (errors, lines, mean, var))
    seen = np.asarray(seen, dtype=np.int64)
    has = lines > 0
    r = np.where(has, errors / np.where(has, lines, 1.0), 0.0)
    binom = mean * (1.0 - mean) / np.maximum(lines, 1.0)
    min_var = np.maximum(binom, floor * floor)
    z, m, v, s = _ewma_reference(r, mean, var, seen, min_var, alpha, alpha_anomalous, warmup,
                                 damp_z)
    return (np.where(has, z, 0.0), np.where(has, m, mean), np.where(has, v, var),
            np.where(has, s, seen))


# ---------------------------------------------------------------- trend (Holt)
@nb.njit(cache=True, error_model="numpy")
def trend_step(x, prev_level, prev_slope, alpha, beta, slope_out):
    """Holt's linear trend, one step per series, in place; writes the new slope.

    A rising error ratio shows up in the slope windows before its z-score crosses a
    threshold, which is what lets the outage probability rise early.
    Conventions: start prev_level at NaN (no history; the first value sets the level,
    slope 0) and prev_slope at 0. A NaN x (e.g. a ratio over zero lines) is no
    observation: the state is kept and the current slope is reported.
    """
    for i in range(x.shape[0]):
        xi = x[i]
        lvl = prev_level[i]
        if math.isnan(xi):
            slope_out[i] = 0.0 if math.isnan(lvl) else prev_slope[i]
            continue
        if math.isnan(lvl):
            prev_level[i] = xi
            prev_slope[i] = 0.0
            slope_out[i] = 0.0
            continue
        b = prev_slope[i]
        new_lvl = alpha * xi + (1.0 - alpha) * (lvl + b)
        new_b = beta * (new_lvl - lvl) + (1.0 - beta) * b
        prev_level[i] = new_lvl
        prev_slope[i] = new_b
        slope_out[i] = new_b


def trend_step_reference(x, prev_level, prev_slope, alpha, beta):
    """numpy spec of ``trend_step``: returns (slope, level_new, slope_new), no mutation."""
    x, lvl, b = (np.asarray(a, dtype=np.float64) for a in (x, prev_level, prev_slope))
    no_x, fresh = np.isnan(x), np.isnan(lvl)
    new_lvl = alpha * x + (1.0 - alpha) * (lvl + b)
    new_b = beta * (new_lvl - lvl) + (1.0 - beta) * b
    level_out = np.where(no_x, lvl, np.where(fresh, x, new_lvl))
    slope_state = np.where(no_x, b, np.where(fresh, 0.0, new_b))
    slope = np.where(fresh & no_x, 0.0, slope_state)
    return slope, level_out, slope_state


# ---------------------------------------------------------------- outputs
@nb.njit(cache=True, error_model="numpy", inline="always")
def _sigmoid(u):
    # One formula for all u: exp(-u) overflows to inf for u < -709 and 1/inf = 0, and each
    # step (exp, +1, 1/) is monotone under rounding, so the result is monotone in u.
    return 1.0 / (1.0 + math.exp(-u))


@nb.njit(cache=True, error_model="numpy")
def outage_probability(score, trend, bias, w_score, w_trend):
    """P(outage) per series = sigmoid(w_score*score + w_trend*trend + bias), in [0, 1].

    ``score`` is the combined evidence (e.g. max positive z of error ratio / drops) and
    ``trend`` a rising-slope term, so a climbing error ratio raises the probability before
    its z-score alone would. Monotone non-decreasing in both when the weights are >= 0.
    Returns a new array.
    """
    n = score.shape[0]
    out = np.empty(n, dtype=np.float64)
    for i in range(n):
        p = _sigmoid(w_score * score[i] + w_trend * trend[i] + bias)
        out[i] = min(max(p, 0.0), 1.0)
    return out


def outage_probability_reference(score, trend, bias, w_score, w_trend):
    """numpy spec of ``outage_probability``."""
    u = (w_score * np.asarray(score, dtype=np.float64)
         + w_trend * np.asarray(trend, dtype=np.float64) + bias)
    with np.errstate(over="ignore"):
        return np.clip(1.0 / (1.0 + np.exp(-u)), 0.0, 1.0)

