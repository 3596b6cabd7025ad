"""Count model per series: negative binomial tails, robust online baselines, daily and
weekly rhythm, and the calibrated 0-100 score.

Why a count model: the old z-scores assumed Gaussian noise with a Poisson floor. Real log
series are bursty (their variance grows like mean^2, not like the mean), small counts have
skewed tails a z cannot describe (5 lines where 0.4 are expected is a 1-in-16,000 event,
not "z = 3.4"), and a z has no common scale across series. Here each window gets the
probability of a count at least as far out as the one observed, under the series' own
negative binomial NB(mu, k) (variance mu + k mu^2; k = 0 is Poisson), and everything else
(severity, score, drops) follows from that probability.

Pieces, each a numba kernel with a numpy reference the tests compare against:

* ``log10_tail(x, mu, k, upper)``: log10 P(X >= x) or log10 P(X <= x). Exact (sum of
  the probability mass function) where the mean is small; for larger means the signed
  root of the NB deviance with a continuity correction, accurate to a few percent of the
  probability far into the tails (the tests state the tolerance).
* ``model_step``: one window of many series: the surprise of each count (signed -log10 of
  its tail probability: + spike, - drop) under the model, then the robust update of its
  state (see ``model_step`` for the rules).
* ``service_scores``: per service, the most surprising series, corrected for the number of
  series tested (Sidak), mapped to 0-100 by ``score_of``.

State is one float32 matrix per series group (rows = fields below, columns = series) plus a
float32 rhythm profile (24 hour-of-day and 7 day-of-week factors), their uint16 sample
counts and an int32 window count: 44 + 124 + 62 = 230 bytes a series (the benchmark
measures it), with rhythm always learnt and only used where it predicts better.
"""
from __future__ import annotations

import math

import numba as nb
import numpy as np

LOG10E = 1.0 / math.log(10.0)
MU_EXACT = 30.0     # mean at or below which tails are summed exactly
KMU_EXACT = 10.0    # ... and k*mu at or below which (the terms then decay fast enough)
MAX_TERMS = 400     # summation limit; the rest is bounded by a geometric series
MU_MIN = 1e-3       # a series expected to be silent still "expects" this much
S_MAX = 300.0       # surprise cap (-log10 of the smallest probability reported)


# ---------------------------------------------------------------- tails
@nb.njit(cache=True, error_model="numpy", inline="always")
def _logpmf(x, mu, k):
    """Natural log of the NB(mu, k) (Poisson when k == 0) mass at integer x >= 0."""
    if k <= 0.0:
        return x * math.log(mu) - mu - math.lgamma(x + 1.0)
    r = 1.0 / k
    return (math.lgamma(x + r) - math.lgamma(r) - math.lgamma(x + 1.0)
            - r * math.log1p(k * mu) + x * (math.log(k * mu) - math.log1p(k * mu)))


@nb.njit(cache=True, error_model="numpy", inline="always")
def _ratio(j, mu, k):
    """pmf(j + 1) / pmf(j)."""
    return mu * (1.0 + j * k) / ((j + 1.0) * (1.0 + k * mu))


@nb.njit(cache=True, error_model="numpy")
def _exact_upper_ln(x, mu, k):
    """ln P(X >= x) for x > mu by summing from x: terms only shrink beyond the mean."""
    if x <= 0.0:
        return 0.0
    lt = _logpmf(x, mu, k)
    total = 1.0
    term = 1.0
    j = x
    for _ in range(MAX_TERMS):
        rho = _ratio(j, mu, k)
        term *= rho
        total += term
        j += 1.0
        if term < 1e-17 * total:
            return lt + math.log(total)
    # geometric bound on the rest: the ratio tends to k*mu/(1+k*mu) (0 for Poisson)
    q = k * mu / (1.0 + k * mu)
    rho = max(_ratio(j, mu, k), q)
    total += term * rho / (1.0 - rho)
    return lt + math.log(total)


@nb.njit(cache=True, error_model="numpy")
def _exact_lower_ln(x, mu, k):
    """ln P(X <= x) by summing the mass from 0 to x (x small: only used for x < mu <= 30)."""
    if k <= 0.0:
        l0 = -mu
    else:
        l0 = -math.log1p(k * mu) / k
    term = math.exp(l0)
    total = term
    j = 0.0
    while j < x:
        term *= _ratio(j, mu, k)
        total += term
        j += 1.0
    if total >= 1.0:
        return 0.0
    return math.log(total)


@nb.njit(cache=True, error_model="numpy", inline="always")
def _deviance(y, mu, k):
    """NB unit deviance 2*[y ln(y/mu) - (y + 1/k) ln((y + 1/k)/(mu + 1/k))], y >= 0."""
    a = y * math.log(y / mu) if y > 0.0 else 0.0
    if k <= 1e-12:
        d = 2.0 * (a - (y - mu))
    else:
        r = 1.0 / k
        d = 2.0 * (a - (y + r) * math.log1p((y - mu) / (mu + r)))
    return d if d > 0.0 else 0.0


@nb.njit(cache=True, error_model="numpy", inline="always")
def _ln_norm_sf(z):
    """ln P(Z > z) for a standard normal, without underflow far in the tail."""
    if z < 25.0:
        return math.log(0.5 * math.erfc(z / math.sqrt(2.0)))
    # asymptotic series: phi(z)/z * (1 - 1/z^2 + 3/z^4)
    z2 = z * z
    return (-0.5 * z2 - math.log(z) - 0.5 * math.log(2.0 * math.pi)
            + math.log1p(-1.0 / z2 + 3.0 / (z2 * z2)))


@nb.njit(cache=True, error_model="numpy")
def _saddle_ln(y, mu, k, upper):
    """ln P(X >= y + 1/2) (upper) or ln P(X <= y - 1/2) from the saddlepoint at y: the
    Barndorff-Nielsen r* = w + ln(u/w)/w of the signed root deviance w, with u the
    standardised saddlepoint of the continuity-corrected (Daniels) form."""
    w = math.sqrt(_deviance(y, mu, k))
    if y < mu:
        w = -w
    t = math.log(y * (1.0 + k * mu) / (mu * (1.0 + k * y))) if y > 0.0 else -math.inf
    if abs(w) > 1e-3 and y > 0.0:
        u = 2.0 * math.sinh(0.5 * t) * math.sqrt(y * (1.0 + k * y))
        rs = w + math.log(u / w) / w
    else:
        rs = w
    return _ln_norm_sf(rs) if upper else _ln_norm_sf(-rs)


@nb.njit(cache=True, error_model="numpy")
def _approx_upper_ln(x, mu, k):
    """ln P(X >= x), saddlepoint at x - 1/2."""
    if x <= 0.0:
        return 0.0
    return _saddle_ln(x - 0.5, mu, k, True)


@nb.njit(cache=True, error_model="numpy")
def _approx_lower_ln(x, mu, k):
    """ln P(X <= x), saddlepoint at x + 1/2."""
    return _saddle_ln(x + 0.5, mu, k, False)


@nb.njit(cache=True, error_model="numpy")
def ln_tail(x, mu, k, upper):
    """ln P(X >= x) (upper) or ln P(X <= x) for X ~ NB(mu, k), x a non-negative integer.

    Exact for mu <= MU_EXACT and k*mu <= KMU_EXACT; else the deviance approximation.
    Only the tail on x's side of the mean is ever needed (the other is >= 1/2), so the
    exact path sums at most x terms below the mean or a fast-shrinking series above it.
    """
    mu = max(mu, MU_MIN)
    k = max(k, 0.0)
    exact = mu <= MU_EXACT and k * mu <= KMU_EXACT
    if upper:
        if x <= 0.0:
            return 0.0
        if exact:
            if x > mu:
                return _exact_upper_ln(x, mu, k)
            # x at or below the mean: the complement of a short lower sum
            lo = math.exp(_exact_lower_ln(x - 1.0, mu, k))
            return math.log(max(1.0 - lo, 1e-300))
        return _approx_upper_ln(x, mu, k)
    if x <= 0.0:  # silence: P(X = 0) in closed form, whatever the mean
        return -mu if k <= 0.0 else -math.log1p(k * mu) / k
    if exact:
        if x < mu:
            return _exact_lower_ln(x, mu, k)
        up = math.exp(_exact_upper_ln(x + 1.0, mu, k))
        return math.log(max(1.0 - up, 1e-300))
    return _approx_lower_ln(x, mu, k)


@nb.njit(cache=True, error_model="numpy")
def surprise(x, mu, k):
    """Signed surprise of count x: -log10 P(X >= x) when x > mu (positive: more than
    expected), +log10 P(X <= x) when x < mu (negative: fewer); 0 at the mean. Capped at
    +-S_MAX."""
    mu = max(mu, MU_MIN)
    if x > mu:
        s = -ln_tail(x, mu, k, True) * LOG10E
        return min(s, S_MAX)
    if x < mu:
        s = -ln_tail(x, mu, k, False) * LOG10E
        return -min(s, S_MAX)
    return 0.0


@nb.njit(cache=True, error_model="numpy")
def surprise_many(x, mu, k, out):
    """``surprise`` over arrays (x, mu, k aligned) into out."""
    for i in range(x.shape[0]):
        out[i] = surprise(x[i], mu[i], k[i])


# ---------------------------------------------------------------- numpy references
_lgamma = np.vectorize(math.lgamma, otypes=[np.float64])


def logpmf_reference(x, mu, k):
    """ln NB(mu, k) mass (Poisson where k == 0), vectorised numpy."""
    x, mu, k = np.broadcast_arrays(*(np.asarray(a, np.float64) for a in (x, mu, k)))
    pois = x * np.log(mu) - mu - _lgamma(x + 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(k > 0, 1.0 / np.where(k > 0, k, 1.0), 1.0)
        nb_ = (_lgamma(x + r) - _lgamma(r) - _lgamma(x + 1.0) - r * np.log1p(k * mu)
               + x * (np.log(np.where(k > 0, k * mu, 1.0)) - np.log1p(k * mu)))
    return np.where(k > 0, nb_, pois)


def ln_tail_reference(x, mu, k, upper, max_terms=200_000):
    """ln P(X >= x) or ln P(X <= x), by summing the exact mass in log space (slow; the
    specification ``ln_tail`` is tested against, exact everywhere)."""
    mu = max(float(mu), MU_MIN)
    k = max(float(k), 0.0)
    x = float(x)
    if upper:
        if x <= 0:
            return 0.0
        if x <= mu:  # complement of the lower tail
            return float(np.log1p(-np.exp(ln_tail_reference(x - 1, mu, k, False))))
        sd = math.sqrt(mu + k * mu * mu)
        hi = x + max(60.0 * sd, 200.0) + 40.0 * math.sqrt(x)
        js = np.arange(x, min(hi, x + max_terms))
        lp = logpmf_reference(js, mu, k)
        return float(np.logaddexp.reduce(lp))
    if x >= mu:
        return float(np.log1p(-np.exp(ln_tail_reference(x + 1, mu, k, True))))
    js = np.arange(0.0, x + 1.0)
    return float(np.logaddexp.reduce(logpmf_reference(js, mu, k)))


def surprise_reference(x, mu, k):
    mu = max(float(mu), MU_MIN)
    if x > mu:
        return min(-ln_tail_reference(x, mu, k, True) * LOG10E, S_MAX)
    if x < mu:
        return -min(-ln_tail_reference(x, mu, k, False) * LOG10E, S_MAX)
    return 0.0


# ---------------------------------------------------------------- the model, one window
# rows of the float32 state matrix [N_FIELDS, n_series]
F, LD, LW, KF, KD, KW, BASE, EF, ED, EW, HSUM, DSUM, PREV, MODE = range(14)
N_FIELDS = 14
N_PROFILE = 31        # 24 hour-of-day factors, then 7 day-of-week factors
FLAT, DAILY, WEEKLY = 0, 1, 2

HUBER_C = 3.0         # level updates see a count clipped to mu +- 3 sd
U_SCREEN = 1.5        # |x - mu| under 1.5 sd: surprise 0 (tail prob > ~0.07; score 0)
RUN_S = 2.0           # two same-direction windows past p = 0.01 are a run, not a burst
DISP_CAP_REL = 50.0   # a window moves k by at most max(50 k, 25) x the gain:
DISP_CAP_ABS = 25.0   # bursts rarer than 1 in 50 windows stay in the tail, incidents bounded
SWITCH_MARGIN = 0.9   # a baseline replaces the one in use when its error is 10 % lower
FACTOR_MIN = 0.02     # a rhythm factor never predicts less than 2 % of the level
WEEKLY_DAYS = 14      # day-of-week factors are used after two weeks
PROFILE_DAYS = 7      # hour-of-day factors average about a week of days
PROFILE_WEEKS = 4     # day-of-week factors about four weeks


def new_state(n: int) -> dict:
    """Fresh state arrays for n series (the detector grows them as series appear)."""
    st = np.zeros((N_FIELDS, n), np.float32)
    st[HSUM] = 24.0
    st[DSUM] = 7.0
    return {"st": st, "prof": np.ones((N_PROFILE, n), np.float32),
            "pcnt": np.zeros((N_PROFILE, n), np.uint16), "seen": np.zeros(n, np.int32)}


def model_params(alpha: float, window_seconds: float, warmup: int, seasonal: bool) -> tuple:
    """The kernel's scalar parameters, all derived from the config (never stored)."""
    wpd = max(86400.0 / window_seconds, 1.0)
    wph = max(3600.0 / window_seconds, 1.0)
    a_k = alpha / 8.0                      # dispersion: 8x the level's half-life
    a_b = 1.0 - 0.5 ** (1.0 / wpd)         # slow base of the profiles: a day
    a_e = 1.0 - 0.5 ** (4.0 / wpd)         # baseline comparison: 6 hours
    hcap = float(min(PROFILE_DAYS * wph, 65535))
    dcap = float(min(PROFILE_WEEKS * wpd, 65535))
    return (float(alpha), a_k, a_b, a_e, wpd, hcap, dcap, int(warmup), bool(seasonal))


def slots(start: float) -> tuple[int, int]:
    """(hour of day, day of week Monday = 0) in UTC of a window start (epoch seconds).
    Floor division: 1970-01-01 was a Thursday (day 3)."""
    hours = int(start // 3600)
    return hours % 24, (hours // 24 + 3) % 7


@nb.njit(cache=True, error_model="numpy", inline="always")
def _sd(mu, k):
    return math.sqrt(mu + k * mu * mu)


@nb.njit(cache=True, error_model="numpy", inline="always")
def _disp(k, x, mu, gain):
    """One robust step of the overdispersion k (variance mu + k mu^2): the unbiased
    moment ((x - mu)^2 - x) / mu^2, capped so one window moves k by a bounded amount."""
    e = ((x - mu) * (x - mu) - x) / (mu * mu)
    cap = max(DISP_CAP_REL * k, DISP_CAP_ABS)
    if e > cap:
        e = cap
    k = k + gain * (e - k)
    return k if k > 0.0 else 0.0


@nb.njit(cache=True, error_model="numpy", inline="always")
def _clip(x, mu, sd):
    lo = mu - HUBER_C * sd
    hi = mu + HUBER_C * sd
    return lo if x < lo else (hi if x > hi else x)


@nb.njit(cache=True, error_model="numpy")
def window_surprise(x, mu, k, prev):
    """Surprise of count x under NB(mu, k), with the persistence test: when the previous
    window was already past p = 0.01 the same way, the two windows' probabilities are
    combined (Fisher, doubled for looking twice). Returns (combined, single-window)."""
    sd = _sd(mu, k)
    if abs(x - mu) < U_SCREEN * sd:
        return 0.0, 0.0
    s1 = surprise(x, mu, k)
    s = s1
    if prev * s1 > 0.0 and abs(prev) >= RUN_S:
        lq = -(abs(prev) + abs(s1)) / LOG10E        # ln of the product of the two p
        lp = lq + math.log(1.0 - lq) + math.log(2.0)
        s2 = min(-lp * LOG10E, S_MAX)
        if s2 > abs(s1):
            s = s2 if s1 > 0 else -s2
    return s, s1


@nb.njit(cache=True, error_model="numpy")
def model_step(idx, x, st, prof, pcnt, seen, h, d, a_lvl, a_k, a_b, a_e, wpd, hcap, dcap,
               warmup, seasonal, s_out, mu_out, sd_out):
    """Score one window of the series ``idx`` (counts ``x``, aligned) and update them.

    Three baselines per series, all learnt all the time: flat (level F), daily (level LD
    times the hour-of-day factor) and weekly (LW times hour-of-day and day-of-week
    factors). The one in use is the one whose recent squared error is lowest, switching
    only for a 10 % gain; daily needs a day of history, weekly two weeks, and
    ``seasonal`` false keeps flat. Each baseline has its own overdispersion k.

    Robustness: levels learn from the count clipped to mu +- 3 sd (Huber), so one window
    moves a level by at most 3 sd x gain; k learns from a capped moment and not at all
    in the second and later windows of a run (sustained deviations are incidents, single
    windows are the series' burstiness). Profiles are running means of count / slow base
    per slot (exact averages over the first days, then about a week of memory).

    Writes s_out (signed surprise, 0 during warm-up), mu_out and sd_out (the prediction
    in use, before the update) at the positions of ``idx``.
    """
    n_days_weekly = WEEKLY_DAYS * wpd
    for j in range(idx.shape[0]):
        i = idx[j]
        xi = x[j]
        n = seen[i]
        if n == 0:
            for f in (F, LD, LW, BASE):
                st[f, i] = xi
            for f in (KF, KD, KW, EF, ED, EW, PREV, MODE):
                st[f, i] = 0.0
            seen[i] = 1
            s_out[j] = 0.0
            mu_out[j] = xi
            sd_out[j] = math.sqrt(xi)
            continue
        hf = max(prof[h, i] * 24.0 / st[HSUM, i], FACTOR_MIN)
        df = max(prof[24 + d, i] * 7.0 / st[DSUM, i], FACTOR_MIN)
        mus = (max(float(st[F, i]), MU_MIN), max(st[LD, i] * hf, MU_MIN),
               max(st[LW, i] * hf * df, MU_MIN))
        ks = (float(st[KF, i]), float(st[KD, i]), float(st[KW, i]))
        errs = (float(st[EF, i]), float(st[ED, i]), float(st[EW, i]))
        # which baseline: the current one unless another is clearly better
        mode = int(st[MODE, i])
        allowed = 1 if not seasonal else (3 if n >= n_days_weekly else (2 if n >= wpd else 1))
        if mode >= allowed:
            mode = 0
        best = mode
        for m in range(allowed):
            if errs[m] < errs[best]:
                best = m
        if best != mode and errs[best] < SWITCH_MARGIN * errs[mode]:
            mode = best
        st[MODE, i] = mode
        mu = mus[mode]
        k = ks[mode]
        sd = _sd(mu, k)
        mu_out[j] = mu
        sd_out[j] = sd
        prev = float(st[PREV, i])
        if n >= warmup:
            s, s1 = window_surprise(xi, mu, k, prev)
        else:
            s, s1 = 0.0, 0.0
        s_out[j] = s
        st[PREV, i] = s1
        in_run = prev * s1 > 0.0 and abs(prev) >= RUN_S and abs(s1) >= RUN_S
        # updates
        g = max(a_lvl, 1.0 / (n + 1.0))
        gk = 0.0 if in_run else max(a_k, 1.0 / (n + 1.0))
        ge = max(a_e, 1.0 / (n + 1.0))
        xc = _clip(xi, mu, sd)  # the count the shared parts learn from
        for m in range(3):
            mm = mus[m]
            xm = _clip(xi, mm, _sd(mm, ks[m]))
            err = (xc - mm) * (xc - mm)
            st[EF + m, i] = errs[m] + ge * (err - errs[m])
            if gk > 0.0:
                st[KF + m, i] = _disp(ks[m], xi, mm, gk)
            if m == 0:
                st[F, i] = st[F, i] + g * (xm - st[F, i])
            elif m == 1:
                st[LD, i] = st[LD, i] + g * (xm / hf - st[LD, i])
            else:
                st[LW, i] = st[LW, i] + g * (xm / (hf * df) - st[LW, i])
        base = float(st[BASE, i])
        base = base + max(a_b, 1.0 / (n + 1.0)) * (xc / (hf * df) - base)
        st[BASE, i] = base
        if base > MU_MIN:
            c = min(pcnt[h, i] + 1.0, hcap)
            pcnt[h, i] = c
            old = prof[h, i]
            new = old + (xc / (base * df) - old) / c
            prof[h, i] = new
            st[HSUM, i] = st[HSUM, i] + (new - old)
            c = min(pcnt[24 + d, i] + 1.0, dcap)
            pcnt[24 + d, i] = c
            old = prof[24 + d, i]
            new = old + (xc / (base * hf) - old) / c
            prof[24 + d, i] = new
            st[DSUM, i] = st[DSUM, i] + (new - old)
        seen[i] = n + 1
