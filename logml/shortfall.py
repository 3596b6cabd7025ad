"""Sustained shortfall of a service's total: a drop too slow or too shallow for any one
window to show, such as traffic that stops following its daily ramp (a seasonal incident)
or a loss that builds over minutes. At most a warning: the total's own tests make a drop
critical.

Per service and per scale k (``SCALES`` windows), the window's Poisson-scaled deviation
``u = (x - mu) / sqrt(mu)`` (clipped to [-CLIP_DOWN, CLIP_UP]: a burst must not hide a
shortfall, one deep window is the per-window test's business) is summed with a decay
``1 - 1/k``. A sum far below its usual range, while the mean relative shortfall over that
scale (of the clipped deviations) is at least ``1 - SHORT_RATIO``, is a shortfall with the
normal lower-tail probability of the sum, corrected for the scales tested.

The expectation is the total's, but with a **slow level** where a rhythm baseline is in
use (``slow_expectation``): the rhythm's curve explains the day, and the baseline's own
level (half-life 30 windows) follows a ramp that stalls: 25 minutes into a seasonal
incident it has taken in about 40 % of the shortfall. The slow level follows that level
with a half-life of SLOW_HOURS (a trend of 10 % a day leaves it about 5 % behind, which
the learnt centre takes in); each window's own test keeps the fast level and its
dispersion (a slower level for the whole baseline leaves the slow noise in its k, and
drops are found a window later).

Poisson-scaled, not by the total's negative binomial sd: that sd is inflated by the
bursts of a few templates, while a shortfall shows in the lower tail, which bursts do not
widen. The sum's usual range is learnt, not assumed: a total's noise is correlated from
window to window, which makes the sums' spread 1.5-3x what independent windows would give
on the hard scenarios. Its centre and mean absolute deviation are learnt over about a day
of windows (robust: deviations count at most SPREAD_CAP spreads, windows that fire teach
nothing), starting from PRIOR_VAR x the independent variance, worth PRIOR_WINDOWS windows.
State: four float64 (services x scales) arrays, ``FIELDS`` (state format 5), and the slow
level, one float64 a service (format 7; 0: none yet).
"""
from __future__ import annotations

import numpy as np

from . import countmodel as cm

SCALES = np.array([4.0, 8.0, 16.0])  # windows
DECAY = 1.0 - 1.0 / SCALES
INDEPENDENT_VAR = 1.0 / (1.0 - DECAY ** 2)
SHORT_RATIO = 0.85
CLIP_UP = 1.5
CLIP_DOWN = 4.0
PRIOR_VAR = 2.0
PRIOR_WINDOWS = 60.0
LEARN_AFTER = 60
TEST_AFTER = 120
SPREAD_CAP = 3.0
MAD_TO_SD = np.sqrt(np.pi / 2.0)
LOG10E = float(np.log10(np.e))
SLOW_HOURS = 8.0  # half-life of the slow level
FIELDS = ("short_sum", "short_rel", "short_centre", "short_mad", "short_slow")


def shape(field: str, n: int) -> tuple:
    """The shape of a state field for n services."""
    return (n,) if field == "short_slow" else (n, len(SCALES))


def _ln_lower_tail(z: np.ndarray) -> np.ndarray:
    """ln P(Z <= z) of a standard normal, far into the tail."""
    return np.array([cm.ln_norm_sf(-v) for v in z.ravel().tolist()]).reshape(z.shape)


def new_state(n: int) -> dict:
    """Nothing summed, the prior spread, for n services."""
    k = len(SCALES)
    return {"short_sum": np.zeros((n, k)), "short_rel": np.zeros((n, k)),
            "short_centre": np.zeros((n, k)),
            "short_mad": np.tile(np.sqrt(PRIOR_VAR * INDEPENDENT_VAR) / MAD_TO_SD, (n, 1)),
            "short_slow": np.zeros(n)}


def grow(state: dict, n: int) -> dict:
    """The same state with room for n services (new ones fresh)."""
    have = len(state["short_sum"])
    if have >= n:
        return state
    fresh = new_state(n - have)
    return {f: np.concatenate([state[f], fresh[f]]) for f in FIELDS}


def slow_expectation(state, idx, mu, level, level_after, rhythm, changed, gain):
    """The expectation ``mu`` of the totals idx with the slow level in place of the
    baseline's ``level`` (the one mu was made from) where ``rhythm``; moves the slow level
    towards ``level_after`` (the baseline's, after this window) by ``gain``. A total whose
    baseline in use ``changed`` (or that has no slow level yet) starts it at the
    baseline's: levels of different baselines are not comparable."""
    L = state["short_slow"]
    fresh = changed | ~(L[idx] > 0.0)
    slow = np.where(fresh, level, L[idx])
    use = rhythm & (level > 0.0)
    out = np.where(use, mu * slow / np.where(use, level, 1.0), mu)
    L[idx] = np.where(fresh, level_after, slow + gain * (level_after - slow))
    return out


def step(state, idx, x, mu, seen, day_windows, learn_below):
    """One window of the services idx (their lines x, the total's expectation mu, the
    windows each has seen before): updates their sums and returns the shortfall surprise
    of each (-log10 p, 0 where there is none). The usual range learns from windows whose surprise
    is under learn_below, after LEARN_AFTER windows; the test runs after TEST_AFTER."""
    S, R = state["short_sum"], state["short_rel"]
    C, A = state["short_centre"], state["short_mad"]
    u = np.clip((x - mu) / np.sqrt(np.maximum(mu, 1.0)), -CLIP_DOWN, CLIP_UP)
    rel = u / np.sqrt(np.maximum(mu, 1.0))  # the clipped deviation, relative: a burst
    # must not lift the mean shortfall either
    S[idx] = DECAY * S[idx] + u[:, None]
    R[idx] = DECAY * R[idx] + (1.0 - DECAY) * rel[:, None]
    spread = MAD_TO_SD * A[idx]
    z = (S[idx] - C[idx]) / spread
    short = (z < 0.0) & (R[idx] <= SHORT_RATIO - 1.0) & (seen[:, None] >= TEST_AFTER)
    s_k = np.zeros(z.shape)
    s_k[short] = -_ln_lower_tail(z[short]) * LOG10E  # only where a shortfall is tested
    s = s_k.max(axis=1)
    s = np.maximum(s - np.log10(len(SCALES)), 0.0) * (s > 0)
    learn = (seen >= LEARN_AFTER) & (s < learn_below)
    if learn.any():
        li = idx[learn]
        g = np.maximum(1.0 / day_windows, 1.0 / (seen[learn] - LEARN_AFTER + PRIOR_WINDOWS))
        dev = np.clip(S[li] - C[li], -SPREAD_CAP * spread[learn], SPREAD_CAP * spread[learn])
        C[li] += g[:, None] * dev
        A[li] += g[:, None] * (np.abs(dev) - A[li])
    return s


def reset(state, idx):
    """Start the sums of services idx afresh (after a drop was reported, a clock jump)."""
    state["short_sum"][idx] = 0.0
    state["short_rel"][idx] = 0.0
