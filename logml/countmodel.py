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
* ``family_pass`` / ``group_extreme``: per service, the weights of its series and its most
  surprising one (the detector corrects them, weighted Bonferroni), mapped to 0-100 by
  ``score_of``.

State is one float32 matrix per series group (rows = fields below, columns = series) plus a
float32 rhythm profile (24 hour-of-day and 7 day-of-week factors), their uint16 sample
counts and an int32 window count: 92 + 124 + 62 + 4 = 282 bytes a series (the benchmark
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
# ln_tail and _saddle_ln get one explicit signature: callers pass literal True/False and
# int or float counts, and each distinct type compiled them (and all below them) again.
_TAIL_SIG = nb.types.float64(nb.types.float64, nb.types.float64, nb.types.float64,
                             nb.types.boolean)


@nb.njit(cache=True, error_model="numpy", inline="always")
def _logpmf(x, mu, k):
    """Natural log of the NB(mu, k) (Poisson when k == 0) mass at integer x >= 0."""
    if k <= 0.0:
        return x * math.log(mu) - mu - math.lgamma(x + 1.0)
    lk = math.log1p(k * mu)
    if x * k < 1e-4:
        # ln Gamma(x + 1/k) - ln Gamma(1/k) + x ln k = the sum of ln(1 + j k), j < x, by
        # its series: the lgamma difference of two numbers near 1/k loses all precision
        # when k is tiny (at k = 1e-12 a burstier series came out more surprising)
        s1 = 0.5 * x * (x - 1.0)
        g = k * s1 - k * k * (x - 1.0) * x * (2.0 * x - 1.0) / 12.0 + k * k * k * s1 * s1 / 3.0
    else:
        g = math.lgamma(x + 1.0 / k) - math.lgamma(1.0 / k) + x * math.log(k)
    return x * math.log(mu) - math.lgamma(x + 1.0) + g - lk / k - x * lk


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
def ln_norm_sf(z):
    """ln P(Z > z) for a standard normal, without underflow far in the tail."""
    if z < 25.0:
        return math.log(0.5 * math.erfc(z / math.sqrt(2.0)))
    # asymptotic series: phi(z)/z * (1 - 1/z^2 + 3/z^4)
    z2 = z * z
    return (-0.5 * z2 - math.log(z) - 0.5 * math.log(2.0 * math.pi)
            + math.log1p(-1.0 / z2 + 3.0 / (z2 * z2)))


@nb.njit(_TAIL_SIG, cache=True, error_model="numpy")
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
    return ln_norm_sf(rs) if upper else ln_norm_sf(-rs)


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


@nb.njit(_TAIL_SIG, cache=True, error_model="numpy")
def ln_tail(x, mu, k, upper):
    """ln P(X >= x) (upper) or ln P(X <= x) for X ~ NB(mu, k), x a non-negative integer.

    Exact for mu <= MU_EXACT and k*mu <= KMU_EXACT; else the deviance approximation.
    Only the tail on x's side of the mean is ever needed (the other is >= 1/2), so the
    exact path sums at most x terms below the mean or a fast-shrinking series above it.
    """
    mu = max(mu, MU_MIN)
    if not k > 1e-12:  # Poisson (1/k would overflow)
        k = 0.0
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
    k = float(k) if float(k) > 1e-12 else 0.0
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
(F, TF, LD, LL, LW, KF, KD, KL, KW, EF, ED, EL, EW, HSUM, DSUM, MODE, PI, BM, BV, LB, RS,
 RN, LX) = range(23)
N_FIELDS = 23
LX_NONE = -30.0       # LX (log x / mu of the last window) of an empty one
N_MODELS = 4          # flat, daily-step, daily-linear, weekly (levels F, LD, LL, LW)
N_PROFILE = 31        # 24 hour-of-day means, then 7 day-of-week means
FLAT, DAILY_STEP, DAILY_LINEAR, WEEKLY = 0, 1, 2, 3

HUBER_C = 3.0         # levels learn from the count clipped to mu +- 3 sd
U_SCREEN = 1.5        # |x - mu| under 1.5 sd: surprise 0 (tail prob > ~0.07, score 0)
RUN_MIN = 1.3         # windows past p = 0.05 the same way form a run ...
RUN_DAMP = 0.25       # inside a run, levels learn at a quarter of their rate
RUN_ADAPT = 15.0      # ... for its first 15 windows; a longer one is a new normal
RUN_MAX = 64          # ... combined by Fisher's method over at most this many windows
BURST_S = 3.0         # a lone upward window past p = 0.001 under NB is a burst
PI_NULL = 0.0015      # burst rate a calibrated NB shows by chance (with margin)
BURST_WINDOWS = 2.0   # a burst lasts at most two windows
BURST_TAIL_SHARE = 0.7  # a run's third window under 0.7 x its burst's peak is its tail
RHYTHM_CHI2 = 4.0     # a day profile this far from flat (chi2 per hour) is a rhythm
PI_PRIOR_WINDOWS = 120.0  # the burst rate starts as a mean over this many windows
BURST_SD_MIN = 1.0   # spread of log burst sizes at least this
BURST_GAIN = 0.1      # burst size statistics: about the last ten bursts
DISP_CAP_REL = 50.0   # a window moves k by at most max(50 k, 25) x the gain
DISP_CAP_ABS = 25.0
TREND_BETA = 0.1      # flat baseline: damped additive trend (Holt), follows ramps
TREND_PHI = 0.98
TREND_MAX = 0.03      # ... of at most 3 % of the level a window (x6 an hour)
EXPLAIN_S = 2.0       # past p = 0.01 the other baselines are asked too ...
CREDIBLE = 1.25       # ... those whose recent error is at most 1.25x the one in use's
SWITCH_MARGIN = 0.9   # a baseline replaces the one in use when its error is 10 % lower
RHYTHM_HOLD = 0.75    # a service total leaves its rhythm for flat only for 25 % lower: a
# rhythm that fails for an hour or two is an incident (seasonal), not a new normal
FACTOR_MIN = 0.02     # a rhythm factor never predicts less than 2 % of the level
WEEKLY_DAYS = 14      # day-of-week factors are used after two weeks
PROFILE_DAYS = 7      # hour-of-day means average about a week of days
PROFILE_WEEKS = 4     # day-of-week means about four weeks


def new_state(n: int) -> dict:
    """Fresh state arrays for n series (the detector grows them as series appear)."""
    return {"st": np.zeros((N_FIELDS, n), np.float32),
            "prof": np.zeros((N_PROFILE, n), np.float32),
            "pcnt": np.zeros((N_PROFILE, n), np.uint16), "seen": np.zeros(n, np.int32)}


def grow_state(state: dict, n: int) -> dict:
    """The same state with room for n series (new columns fresh); capacity doubles."""
    have = state["seen"].shape[0]
    if have >= n:
        return state
    cap = max(n, 2 * have)
    fresh = new_state(cap)
    for key, arr in state.items():
        if arr.ndim == 1:
            fresh[key][:have] = arr
        else:
            fresh[key][:, :have] = arr
    return fresh


def inherit(st: np.ndarray, prof: np.ndarray, pcnt: np.ndarray, seen: np.ndarray) -> tuple:
    """The model of a series that is the sum of others (a template merged from its
    parents gets their lines), from the columns of those others (``st[:, j]``,
    ``prof[:, j]``, ``pcnt[:, j]``, ``seen[j]``: j over the parents): returns its
    (st column, prof column, pcnt column, seen). So the merged series is tested from its
    first window with what its parents knew, not after a warm-up of its own.

    Assumption: the parents are independent series, so means add and so do variances:
    mu = sum mu_p, and mu + k mu^2 = sum (mu_p + k_p mu_p^2) gives
    k = sum k_p mu_p^2 / (sum mu_p)^2 for each baseline (mu_p its level). Parents that
    rise and fall together have a larger sum variance than this; the merged series'
    own windows then teach its k (as they teach every series).

    Rows: levels F, LD, LL, LW and trend TF add (a sum's trend is the sum of trends);
    squared errors EF..EW add (independent errors), so the baselines compare as before;
    the day profile's slot means add (a parent without samples in a slot counts its flat
    level there), its sums HSUM/DSUM are those of the summed profile and a slot's sample
    count is the smallest of the parents' (a slot one parent barely knew learns fast);
    ``seen`` is the smallest: the sum is known only as well as its least known part (a
    sibling born a window before the merge has a level from one, maybe partial, window),
    so the merged series is warm when all its parents were, and until then learns at the
    young part's pace.

    Cannot be combined: MODE (which baseline is in use) is the largest parent's; the
    burst statistics PI, BM, BV are the parent's whose bursts add the most lines (excess
    rate x share of the mean), its log burst size diluted by that share (a burst of x M
    in a part with share w is one of x 1 + (M - 1) w of the sum): whether several parents
    burst together is not known, so their rates are not added. A pending burst (LB) and
    the run accumulators RS, RN, LX start afresh: a run of one parent is no run of the sum.
    """
    f64 = np.float64
    st = np.asarray(st, f64).reshape(N_FIELDS, -1)
    prof = np.asarray(prof, f64).reshape(N_PROFILE, -1)
    pcnt = np.asarray(pcnt).reshape(N_PROFILE, -1)
    out = np.zeros(N_FIELDS)
    levels = [np.maximum(st[F] + TREND_PHI * st[TF], 0.0)] + \
        [np.maximum(st[f], 0.0) for f in (LD, LL, LW)]
    for f in (F, TF, LD, LL, LW, EF, ED, EL, EW):
        out[f] = st[f].sum()
    for m, mu in enumerate(levels):
        total = mu.sum()
        out[KF + m] = (st[KF + m] * mu * mu).sum() / (total * total) if total > 0.0 else \
            st[KF + m].max()
    filled = np.where(pcnt > 0, prof, np.maximum(st[F], 0.0))
    prof_c = filled.sum(axis=1)
    out[HSUM] = prof_c[:24].sum()
    out[DSUM] = prof_c[24:].sum()
    biggest = int(np.argmax(levels[0]))
    out[MODE] = st[MODE, biggest]
    share = levels[0] / max(levels[0].sum(), MU_MIN)
    excess = np.where(st[BV] > 0.0, np.maximum(st[PI] - PI_NULL, 0.0), 0.0) * share
    b = int(np.argmax(excess)) if excess.max() > 0.0 else biggest
    out[PI] = st[PI, b]
    out[BM] = math.log1p(math.expm1(st[BM, b]) * share[b]) if excess[b] > 0.0 else st[BM, b]
    out[BV] = st[BV, b]
    # LB, RS, RN, LX stay 0
    return (out.astype(np.float32), prof_c.astype(np.float32),
            pcnt.min(axis=1).astype(np.uint16), int(np.min(seen)))


def model_params(alpha: float, window_seconds: float, warmup: int, seasonal: bool,
                 rhythm_first: bool = False) -> tuple:
    """The kernel's scalar parameters, all derived from the config (never stored).
    ``rhythm_first``: a series whose first day shows a clear daily rhythm starts the second
    day on the daily-linear baseline (flat must then be 10 % better to take over); used for
    service totals, where a rhythm that fails to happen (a seasonal incident) shows."""
    wpd = max(86400.0 / window_seconds, 1.0)
    wph = max(3600.0 / window_seconds, 1.0)
    a_k = alpha / 8.0                      # dispersion: 8x the level's half-life
    a_e = 1.0 - 0.5 ** (2.0 / wpd)         # baseline comparison: 12 hours
    a_pi = 1.0 - 0.5 ** (1.0 / wpd)        # burst rate: a day
    hcap = float(min(PROFILE_DAYS * wph, 65535))
    dcap = float(min(PROFILE_WEEKS * wpd, 65535))
    return (float(alpha), a_k, a_e, a_pi, wpd, hcap, dcap, int(warmup), bool(seasonal),
            bool(rhythm_first))


def slots(start: float, end: float) -> tuple[float, int]:
    """(hour of day as a float at the window's middle, day of week Monday = 0), UTC, of a
    window [start, end) in epoch seconds. 1970-01-01 was a Thursday (day 3)."""
    mid = 0.5 * (start + end)
    day = int(mid // 86400)
    return (mid - day * 86400.0) / 3600.0, (day + 3) % 7


@nb.njit(cache=True, error_model="numpy", inline="always")
def line_slots(hpos):
    """(h0, h1, weight of h1): the two hour slots whose middles (hour h holds h + 1/2)
    hour of day ``hpos`` lies between, as the daily-linear baseline joins them."""
    p = hpos - 0.5
    h0 = int(math.floor(p))
    wgt = p - h0
    return h0 % 24, (h0 + 1) % 24, wgt


def _windows_a_day(window_seconds: float) -> int:
    return max(int(86400.0 / window_seconds), 1)


def _day_profiled(pcnt: np.ndarray, seen, window_seconds: float):
    """Whether a full day of history has filled every hour slot: of one series (a column
    of ``pcnt``, an int ``seen``) or of several (columns, an array)."""
    return (np.asarray(seen) >= _windows_a_day(window_seconds)) & (pcnt[:24].min(axis=0) > 0)


def usual_count(prof: np.ndarray, pcnt: np.ndarray, seen: int, hpos: float, d: int,
                window_seconds: float) -> float:
    """A series' usual count at this time of day, from its rhythm profile (one column of
    ``prof`` / ``pcnt``): the hour means joined by lines through the hours' middles, as
    the daily-linear baseline has them, times the day-of-week factor once the hour means
    are of count / that factor (after a week, as ``model_step`` learns them); 0 before a
    full day of history. Not a level that follows what it sees:
    what this hour usually holds."""
    if not _day_profiled(pcnt, seen, window_seconds):
        return 0.0
    n_day = _windows_a_day(window_seconds)
    h0, h1, wgt = line_slots(hpos)
    c = (1.0 - wgt) * float(prof[h0]) + wgt * float(prof[h1])
    dsum = float(prof[24:].sum())
    if seen >= 7 * n_day and dsum > 0.0:
        c *= float(prof[24 + d]) * 7.0 / dsum
    return max(c, 0.0)


JOB_CONTRAST = 8.0  # two adjacent hours at 8x a series' median hour: a daily job


def job_hours(prof: np.ndarray, pcnt: np.ndarray, seen: np.ndarray, hpos: float,
              window_seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """Of several series at once (columns of ``prof`` / ``pcnt``, their ``seen``): whether
    the time of day ``hpos`` lies within an hour of a daily job's hours, and the job's
    count a window while it runs, from their rhythm profiles. A job runs in two adjacent
    hours whose mean is at least JOB_CONTRAST x the series' median hour (so a template
    that also logs all day, as one merged from a job's message and another does, still
    has it). A one-hour job at a time that is not on the hour splits over two hour slots:
    it runs at their two means summed, and where in those hours it starts and ends the
    hour means cannot say. (False, 0.0) for any other series, or before a full day."""
    m = prof[:24].astype(np.float64)
    pair = m + np.roll(m, -1, axis=0)
    p = np.argmax(pair, axis=0)
    rate = np.take_along_axis(pair, p[None, :], axis=0)[0]
    job = (_day_profiled(pcnt, seen, window_seconds) & (rate > 0.0)
           & (rate >= 2.0 * JOB_CONTRAST * np.median(m, axis=0)))
    near = job & np.isin((int(hpos) - p) % 24, (23, 0, 1, 2))
    return near, np.where(job, rate, 0.0)


@nb.njit(cache=True, error_model="numpy", inline="always")
def nb_var(mu, k):
    """The negative binomial's variance around mu with overdispersion k."""
    return mu + k * mu * mu


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
def _clip(x, mu, var):
    """x clipped to mu +- HUBER_C sd (var = sd^2; the root only when it clips)."""
    dx = x - mu
    if dx * dx <= HUBER_C * HUBER_C * var:
        return x
    return mu + math.copysign(HUBER_C * math.sqrt(var), dx)


@nb.njit(cache=True, error_model="numpy")
def fisher_surprise(total, n):
    """-log10 P(chi2 with 2n df >= 2 ln(10) total): n windows whose surprises sum to
    ``total`` (Fisher's method), i.e. -log10 of e^-y sum_{j<n} y^j / j!, y = total ln 10."""
    y = total / LOG10E
    n = min(n, RUN_MAX)
    term = 1.0
    acc = 1.0
    for j in range(1, n):
        term *= y / j
        acc += term
    return min((y - math.log(acc)) * LOG10E, S_MAX)


@nb.njit(cache=True, error_model="numpy", inline="always")
def _burst_tail(rn, s1, x, mu, pi, lb):
    """The third window of an upward run in a series with bursts, well below the peak of
    the burst pending since the run's first window (lb, its log size): one burst lit
    three windows (one of 90 s can straddle two boundaries, its middle window takes the
    most) and this is its tail: the run is as surprising as that burst's peak, no more."""
    return (rn == 3.0 and s1 > 0.0 and pi > PI_NULL and lb > 0.0
            and x < BURST_TAIL_SHARE * mu * math.exp(lb))


def same_level_many(lx, x, mu, slack=0.0):
    """same_level over arrays; ``slack`` (log units, per element) widens the band."""
    with np.errstate(divide="ignore", invalid="ignore"):
        lvl = np.log(np.where(x > 0, x, 1.0) / mu)
    return (x > 0) & (np.abs(lvl - lx) <= -math.log(BURST_TAIL_SHARE) + slack)


@nb.njit(cache=True, error_model="numpy", inline="always")
def same_level(lx, x, mu):
    """This window's level (log x / mu) within 1 / BURST_TAIL_SHARE of the last's (lx)."""
    return x > 0.0 and abs(math.log(x / mu) - lx) <= -math.log(BURST_TAIL_SHARE)


@nb.njit(cache=True, error_model="numpy", inline="always")
def _level_holds(rn, s1, x, mu, pi, lb, lx):
    """The third window of an upward run in a series with bursts, where the level the run
    rose to (its peak so far, lb) holds: the second and this window within a factor
    1 / BURST_TAIL_SHARE of it. A spike is a step that holds; bursts come and go, and two
    in a row (or one on another) rarely hold one level."""
    return (rn == 3.0 and s1 > 0.0 and pi > PI_NULL and lb > 0.0
            and lx >= lb + math.log(BURST_TAIL_SHARE) and same_level(lb, x, mu))


@nb.njit(cache=True, error_model="numpy")
def burst_surprise(s_nb, x, mu, pi, bm, bv):
    """Upward surprise under the mixture (1 - pe) NB + pe Burst, pe = pi - PI_NULL: a
    burst multiplies the mean by M, log M exponential with mean bm and spread sqrt(bv)
    (a Pareto tail: bursts are heavy-tailed) learnt from the series' own lone bursts.
    Without excess bursts (pe <= 0) it is the NB surprise."""
    pe = pi - PI_NULL
    if pe <= 0.0 or s_nb <= 0.0:
        return s_nb
    lam = max(math.sqrt(bv), BURST_SD_MIN)
    a = math.log1p(-pe) - s_nb / LOG10E
    b = math.log(pe) + min(0.0, -(math.log(x / mu) - (bm - lam)) / lam)
    hi = max(a, b)
    return -(hi + math.log1p(math.exp(min(a, b) - hi))) * LOG10E


@nb.njit(cache=True, error_model="numpy")
def model_step(idx, x, st, prof, pcnt, seen, hpos, d, a_lvl, a_k, a_e, a_pi, wpd, hcap, dcap,
               warmup, seasonal, rhythm_first, s_out, mu_out, sd_out):
    """Score one window of the series ``idx`` (counts ``x``, aligned) and update them.

    ``hpos`` is the hour of day (float) at the window's middle, ``d`` the day of week.

    Baselines: four per series, all learnt all the time: flat (level F with a damped
    trend TF), daily-step (LD x the mean of this hour), daily-linear (LL x the hourly
    means joined by lines through the hours' middles: smooth rhythms) and weekly (LW x
    daily-linear x the day-of-week factor). Step suits jobs that run at set hours, linear
    business-day ramps. The one in use has the lowest recent squared error and changes
    only for a 10 % gain; daily ones need a day of history, weekly two weeks; ``seasonal``
    false keeps flat. Each baseline has its own overdispersion k. Hour means are of the
    count / its day factor, day means of count / its hour factor; both normalised to mean
    1: exact averages over the first days, then about a week (four weeks) of memory.

    Evidence: the signed surprise of the count under NB(mu, k) (screened: within 1.5 sd
    it is 0); past p = 0.01, the least surprise under any credible rhythm baseline (recent
    error at most 1.25x the one in use's), so a rhythm not yet in use still explains.
    Upward, it is softened by the series' own bursts (``burst_surprise``); a run of
    same-way windows past p = 0.05 is combined (Fisher, doubled for looking twice);
    in a series with bursts, two windows up count as the weaker one twice at most (a
    burst straddles a window boundary unevenly, a spike lifts both alike), and a third
    that falls well below the peak of the burst the run began with is that burst's tail
    (``_burst_tail``): the run then counts as the peak alone.

    Mode: the baselines' squared errors are capped at (3 sd)^2 of the one in use, so
    bursts do not decide. ``rhythm_first`` (service totals): a clear day-one rhythm
    starts day two on daily-linear, and flat replaces a rhythm only for a 25 % gain
    (``RHYTHM_HOLD``): a ramp that fails for an hour or two is a seasonal incident, and
    with the 10 % margin flat took over in the middle of every one.

    Robustness: levels learn from the count clipped to mu +- 3 sd (Huber), so a window
    moves them by at most 3 sd x gain; inside a run (a sustained deviation: an incident)
    at a quarter of that for its first 15 windows, and k and trend not at all; k learns
    from a capped moment, so lone bursts teach it the series' burstiness. A rhythm level
    learns in proportion to the traffic its factor expects.

    Writes s_out (signed surprise; 0 during warm-up), mu_out and sd_out (the prediction
    in use, before the update) at the positions of ``idx``.
    """
    n_weekly = WEEKLY_DAYS * wpd
    n_day = max(int(wpd), 1)
    h = min(int(hpos), 23)  # the hour slot this window updates
    h0, h1, wgt = line_slots(hpos)  # the linear factor at hpos: between the slots' middles
    mus = np.empty(N_MODELS)
    ks = np.empty(N_MODELS)
    errs = np.empty(N_MODELS)
    fac = np.empty(N_MODELS)  # what the level is multiplied by
    wl = np.empty(N_MODELS)   # how much the level may learn from this window
    for j in range(idx.shape[0]):
        i = idx[j]
        xi = x[j]
        n = seen[i]
        full = n >= n_day  # every hour of the day has been seen
        hsum = st[HSUM, i]
        hs_raw = 1.0
        hl_raw = 1.0
        h_low = 1.0
        if full and hsum > 0.0:
            scale = 24.0 / hsum
            hs_raw = prof[h, i] * scale
            hl_raw = ((1.0 - wgt) * prof[h0, i] + wgt * prof[h1, i]) * scale
            h_low = min(prof[h0, i], prof[h1, i]) * scale
        dsum = st[DSUM, i]
        df_raw = prof[24 + d, i] * 7.0 / dsum if (n >= 7 * n_day and dsum > 0.0) else 1.0
        hs = max(hs_raw, FACTOR_MIN)
        hl = max(hl_raw, FACTOR_MIN)
        df = max(df_raw, FACTOR_MIN)
        fac[0] = 1.0
        fac[1] = hs
        fac[2] = hl
        fac[3] = hl * df
        wl[0] = 1.0
        wl[1] = min(hs_raw, 1.0)
        wl[2] = min(h_low, 1.0)
        wl[3] = min(h_low * df_raw, 1.0)
        if n == n_day:
            # the day profile is complete: the rhythm's levels start at its mean (learnt
            # so far against a flat profile, they would start far off)
            lvl = max(hsum / 24.0, 0.0)
            st[LD, i] = lvl
            st[LL, i] = lvl
            st[LW, i] = lvl
            # ... and their errors start from the flat one's (on day one they could only
            # be a flat baseline without a trend)
            st[ED, i] = st[EF, i]
            st[EL, i] = st[EF, i]
            st[EW, i] = st[EF, i]
            if rhythm_first and seasonal and lvl > 0.0:
                chi = 0.0
                for hh in range(24):
                    dv = prof[hh, i] - lvl
                    chi += pcnt[hh, i] * dv * dv
                if chi >= 24.0 * RHYTHM_CHI2 * nb_var(lvl, st[KF, i]):
                    st[MODE, i] = DAILY_LINEAR
        elif n == 7 * n_day:  # so is the week's: the weekly level starts at the daily one
            st[LW, i] = st[LL, i]
        if n == 0:
            st[F, i] = xi
            st[LD, i] = xi
            st[LL, i] = xi
            st[LW, i] = xi
            s_out[j] = 0.0
            mu_out[j] = xi
            sd_out[j] = math.sqrt(xi)
            mu = max(xi, MU_MIN)
            var = mu
        else:
            mus[0] = max(st[F, i] + TREND_PHI * st[TF, i], MU_MIN)
            for m in range(1, N_MODELS):
                mus[m] = max(st[LD + m - 1, i] * fac[m], MU_MIN)
            for m in range(N_MODELS):
                ks[m] = st[KF + m, i]
                errs[m] = st[EF + m, i]
            mode = int(st[MODE, i])
            allowed = 1
            if seasonal:
                allowed = 4 if n >= n_weekly else (3 if full else 1)
            if mode >= allowed:
                mode = 0
            best = mode
            for m in range(allowed):
                if errs[m] < errs[best]:
                    best = m
            margin = SWITCH_MARGIN
            if rhythm_first and mode != FLAT and best == FLAT:
                margin = RHYTHM_HOLD
            if best != mode and errs[best] < margin * errs[mode]:
                mode = best
            st[MODE, i] = mode
            mu = mus[mode]
            k = ks[mode]
            var = nb_var(mu, k)
            mu_out[j] = mu
            sd_out[j] = math.sqrt(var)
            # evidence
            s = 0.0
            s_nb = 0.0
            rs = 0.0
            rn = 0.0
            if n >= warmup and (xi - mu) * (xi - mu) >= U_SCREEN * U_SCREEN * var:
                s_nb = surprise(xi, mu, k)
                if abs(s_nb) >= EXPLAIN_S:
                    # a window another credible rhythm explains is not surprising (flat
                    # never explains away what a rhythm in use finds)
                    for m in range(1, allowed):
                        if m != mode and errs[m] <= CREDIBLE * errs[mode]:
                            sm = surprise(xi, mus[m], ks[m])
                            if abs(sm) < abs(s_nb):
                                s_nb = sm
                s1 = burst_surprise(s_nb, xi, mu, st[PI, i], st[BM, i], st[BV, i])
                s = s1
                if abs(s1) >= RUN_MIN:
                    prs = float(st[RS, i])
                    if prs * s1 > 0.0:
                        rs = prs + s1
                        rn = st[RN, i] + 1.0
                    else:
                        rs = s1
                        rn = 1.0
                    if rn >= 2.0:
                        sr = fisher_surprise(abs(rs), int(rn)) - math.log10(2.0)
                        if rn == 2.0 and s1 > 0.0 and st[PI, i] > PI_NULL:
                            # a series that bursts: two windows up may be one burst
                            # straddling a window boundary. Split unevenly, it is one
                            # burst: as surprising as its larger part. At one level, it
                            # may be a step: the weaker window counts twice at most
                            if same_level(st[LX, i], xi, mu):
                                sr = min(sr, 2.0 * min(s1, prs))
                            else:
                                sr = min(sr, max(s1, prs))
                        elif _burst_tail(rn, s1, xi, mu, st[PI, i], st[LB, i]):
                            # a float, as every count here: surprise compiles for one signature
                            xp = float(math.floor(mu * math.exp(st[LB, i]) + 0.5))
                            sr = min(sr, burst_surprise(surprise(xp, mu, k), xp, mu, st[PI, i],
                                                        st[BM, i], st[BV, i]))
                        elif _level_holds(rn, s1, xi, mu, st[PI, i], st[LB, i], st[LX, i]):
                            # longer than any burst lasts: no burst explains it, the NB
                            # alone judges it
                            sr = max(sr, s_nb - math.log10(2.0))
                        if sr > abs(s1):
                            s = sr if s1 > 0.0 else -sr
            s_out[j] = s
            st[RS, i] = rs
            st[RN, i] = rn
            st[LX, i] = math.log(xi / mu) if xi > 0.0 and mu > 0.0 else LX_NONE
            in_run = rn >= 2.0
            # burst statistics: an upward episode past p = 0.001 under the NB is a burst
            # once it is over within BURST_WINDOWS windows (longer, it is an incident)
            if n >= warmup:
                lb = float(st[LB, i])
                up_run = rn >= 2.0 and rs > 0.0
                burst = False
                if lb > 0.0:
                    if not up_run:
                        burst = True
                        st[LB, i] = 0.0
                    elif rn > BURST_WINDOWS:
                        st[LB, i] = 0.0
                    elif s_nb > 0.0:
                        st[LB, i] = max(lb, math.log(xi / mu))
                elif s_nb >= BURST_S and rn <= 1.0:
                    st[LB, i] = math.log(xi / mu)
                gp = max(a_pi, 1.0 / (n - warmup + PI_PRIOR_WINDOWS))
                st[PI, i] = st[PI, i] + gp * ((1.0 if burst else 0.0) - st[PI, i])
                if burst:
                    if st[BV, i] <= 0.0:
                        st[BM, i] = lb
                        st[BV, i] = BURST_SD_MIN * BURST_SD_MIN
                    else:
                        dm = lb - st[BM, i]
                        st[BM, i] = st[BM, i] + BURST_GAIN * dm
                        st[BV, i] = st[BV, i] + BURST_GAIN * (dm * dm - st[BV, i])
            # baselines
            g = max(a_lvl, 1.0 / (n + 1.0))
            gk = max(a_k, 1.0 / (n + 1.0))
            ge = max(a_e, 1.0 / (n + 1.0))
            gt = g * TREND_BETA
            if s_nb >= BURST_S:  # a burst: the burst model learns it, not k (a burst
                gk = 0.0          # must not make a silence right after it look normal)
            if in_run:  # an incident: levels learn slowly, k and trend not at all (the
                # baselines' errors still learn: a run is how a missing rhythm shows)
                if rn <= RUN_ADAPT:  # ... until it lasts long enough to be the new normal
                    g *= RUN_DAMP
                gk = 0.0
                gt = 0.0
            xc = _clip(xi, mu, var)
            ecap = HUBER_C * HUBER_C * var
            for m in range(N_MODELS):
                mm = mus[m]
                vm = nb_var(mm, ks[m])
                # squared errors capped at (3 sd of the baseline in use)^2, the same cap
                # for all: bursts do not drown the difference between baselines
                st[EF + m, i] = errs[m] + ge * (min((xi - mm) * (xi - mm), ecap) - errs[m])
                if gk > 0.0:
                    st[KF + m, i] = _disp(ks[m], xi, mm, gk)
                xm = _clip(xi, mm, vm)
                if m == 0:
                    e0 = xm - mm
                    st[F, i] = st[F, i] + TREND_PHI * st[TF, i] + g * e0
                    tf = TREND_PHI * st[TF, i] + gt * e0
                    lim = TREND_MAX * max(st[F, i], 0.0)
                    st[TF, i] = max(min(tf, lim), -lim)
                else:
                    lv = st[LD + m - 1, i]
                    st[LD + m - 1, i] = lv + g * wl[m] * (xm / fac[m] - lv)
        # rhythm profiles learn from the clipped count (the first day as it comes)
        xc = _clip(xi, mu, var) if full else xi
        c = min(pcnt[h, i] + 1.0, hcap)
        pcnt[h, i] = c
        old = prof[h, i]
        new = old + (xc / df - old) / c
        prof[h, i] = new
        st[HSUM, i] = st[HSUM, i] + (new - old)
        if full:
            c = min(pcnt[24 + d, i] + 1.0, dcap)
            pcnt[24 + d, i] = c
            old = prof[24 + d, i]
            new = old + (xc / hs - old) / c
            prof[24 + d, i] = new
            st[DSUM, i] = st[DSUM, i] + (new - old)
        seen[i] = n + 1


# ---------------------------------------------------------------- from surprise to score
SCORE_PER_DECADE = 25.0   # score = 25 (s - 1) up to 75 at s = 4 ...
SCORE_SOFT = 4.0          # ... then 75 + 25 (1 - exp(-(s - 4) / 4)): still ranks, never 100


@nb.njit(cache=True, error_model="numpy")
def score_of(s, out):
    """0-100 score of a corrected surprise s = -log10 p (sign ignored): 0 up to p = 0.1,
    25 at 1e-2, 50 at 1e-3, 75 at 1e-4 (Elastic ML's bands), then slowly towards 100
    (86 at 1e-6, 94 at 1e-10, 100 only where 25 e^-(s-4)/4 rounds away), so strong
    evidence still ranks above weak."""
    for i in range(s.shape[0]):
        a = abs(s[i])
        if a <= 1.0:
            out[i] = 0.0
        elif a <= 4.0:
            out[i] = SCORE_PER_DECADE * (a - 1.0)
        else:
            out[i] = 75.0 + 25.0 * (1.0 - math.exp(-(a - 4.0) / SCORE_SOFT))


def score_reference(s):
    a = np.abs(np.asarray(s, np.float64))
    return np.where(a <= 1.0, 0.0, np.where(a <= 4.0, SCORE_PER_DECADE * (a - 1.0),
                                            75.0 + 25.0 * (1.0 - np.exp(-(a - 4.0) / SCORE_SOFT))))


def surprise_for_score(score: float) -> float:
    """Inverse of ``score_of`` (for thresholds given as scores)."""
    if score <= 0.0:
        return 0.0
    if score <= 75.0:
        return 1.0 + score / SCORE_PER_DECADE
    if score >= 100.0:
        return math.inf
    return 4.0 - SCORE_SOFT * math.log1p(-(score - 75.0) / 25.0)


@nb.njit(cache=True, error_model="numpy")
def group_extreme(group, s, n_groups):
    """Per group: the position of its most surprising member (largest |s|; -1 if none)
    and how many members it has. group[j] is the group of s[j]."""
    best = np.full(n_groups, -1, np.int64)
    count = np.zeros(n_groups, np.int64)
    for j in range(s.shape[0]):
        g = group[j]
        count[g] += 1
        b = best[g]
        if b < 0 or abs(s[j]) > abs(s[b]):
            best[g] = j
    return best, count


@nb.njit(cache=True, error_model="numpy")
def z_equivalent(s, out):
    """The z of a standard normal with the same one-sided tail as surprise s (signed),
    for tables and gauges that think in z: Newton on ln P(Z > z) = -s ln 10."""
    for i in range(s.shape[0]):
        a = abs(s[i])
        if a <= 0.0:
            out[i] = 0.0
            continue
        target = -a / LOG10E
        z = math.sqrt(max(-2.0 * target - math.log(max(-4.0 * math.pi * target, 1e-300)), 0.0))
        for _ in range(3):  # Newton from the asymptote: 1e-6 after three steps
            f = ln_norm_sf(z) - target
            # d/dz ln P(Z > z) = -phi(z) / P(Z > z)
            slope = -math.exp(-0.5 * z * z - 0.5 * math.log(2.0 * math.pi) - ln_norm_sf(z))
            z = z - f / slope
        out[i] = z if s[i] > 0.0 else -z


# ---------------------------------------------------------------- numpy reference
_surprise_v = np.vectorize(lambda x, mu, k: surprise(x, mu, k), otypes=[np.float64])
_burst_v = np.vectorize(lambda s, x, mu, pi, bm, bv: burst_surprise(s, x, mu, pi, bm, bv),
                        otypes=[np.float64])
_fisher_v = np.vectorize(lambda t, n: fisher_surprise(t, int(n)), otypes=[np.float64])


def model_step_reference(idx, x, state: dict, hpos: float, d: int, params: tuple):
    """numpy spec of ``model_step`` (idx without repeats): returns (new state dict, s, mu,
    sd) and mutates nothing. Tail probabilities come from ``surprise``/``burst_surprise``/
    ``fisher_surprise``, whose own references are tested separately; everything else is
    written again with masks over all series at once (float32 state, float64 arithmetic,
    as the kernel)."""
    a_lvl, a_k, a_e, a_pi, wpd, hcap, dcap, warmup, seasonal, rhythm_first = params
    st = state["st"].copy()
    prof = state["prof"].copy()
    pcnt = state["pcnt"].copy()
    seen = state["seen"].copy()
    idx = np.asarray(idx, np.int64)
    x = np.asarray(x, np.float64)
    f64 = np.float64
    n_day = max(int(wpd), 1)
    n_weekly = WEEKLY_DAYS * wpd
    h = min(int(hpos), 23)
    h0, h1, wgt = line_slots(hpos)

    def get(f):
        return st[f, idx].astype(f64)

    def put(f, v, where=None):
        if where is None:
            st[f, idx] = v
        else:
            st[f, idx[where]] = np.asarray(v)[where] if np.ndim(v) else v

    n = seen[idx].astype(np.int64)
    full = n >= n_day
    hsum = get(HSUM)
    ok = full & (hsum > 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(ok, 24.0 / np.where(ok, hsum, 1.0), 0.0)
    p_h, p0, p1 = (prof[k, idx].astype(f64) for k in (h, h0, h1))
    hs_raw = np.where(ok, p_h * scale, 1.0)
    hl_raw = np.where(ok, ((1.0 - wgt) * p0 + wgt * p1) * scale, 1.0)
    h_low = np.where(ok, np.minimum(p0, p1) * scale, 1.0)
    dsum = get(DSUM)
    okd = (n >= 7 * n_day) & (dsum > 0.0)
    df_raw = np.where(okd, prof[24 + d, idx].astype(f64) * 7.0 / np.where(okd, dsum, 1.0), 1.0)
    hs, hl, df = (np.maximum(v, FACTOR_MIN) for v in (hs_raw, hl_raw, df_raw))
    fac = [np.ones_like(hs), hs, hl, hl * df]
    wl = [np.ones_like(hs), np.minimum(hs_raw, 1.0), np.minimum(h_low, 1.0),
          np.minimum(h_low * df_raw, 1.0)]
    day1 = n == n_day
    lvl = np.maximum(hsum / 24.0, 0.0)
    for f in (LD, LL, LW):
        put(f, lvl, day1)
    ef = get(EF)
    for f in (ED, EL, EW):
        put(f, ef, day1)
    if rhythm_first and seasonal:
        pr = prof[:24, idx].astype(f64)
        chi = (pcnt[:24, idx].astype(f64) * (pr - lvl) ** 2).sum(axis=0)
        strong = day1 & (lvl > 0.0) & (chi >= 24.0 * RHYTHM_CHI2 * (lvl + get(KF) * lvl * lvl))
        put(MODE, float(DAILY_LINEAR), strong)
    put(LW, get(LL), (n == 7 * n_day) & ~day1)

    first = n == 0
    for f in (F, LD, LL, LW):
        put(f, x, first)
    s_out = np.zeros(len(idx))
    mu_out = x.copy()
    sd_out = np.sqrt(np.maximum(x, 0.0))
    rest = ~first
    mus = [np.maximum(get(F) + TREND_PHI * get(TF), MU_MIN)]
    mus += [np.maximum(get(LD + m - 1) * fac[m], MU_MIN) for m in range(1, N_MODELS)]
    ks = [get(KF + m) for m in range(N_MODELS)]
    errs = [get(EF + m) for m in range(N_MODELS)]
    allowed = np.ones(len(idx), np.int64)
    if seasonal:
        allowed = np.where(n >= n_weekly, 4, np.where(full, 3, 1))
    mode = get(MODE).astype(np.int64)
    mode = np.where(mode >= allowed, 0, mode)
    E = np.stack(errs)
    M = np.stack(mus)
    K = np.stack(ks)
    cols = np.arange(len(idx))
    best = mode.copy()
    for m in range(N_MODELS):
        better = (m < allowed) & (E[m] < E[best, cols])
        best = np.where(better, m, best)
    margin = np.where(rhythm_first & (mode != FLAT) & (best == FLAT), RHYTHM_HOLD,
                      SWITCH_MARGIN)
    switch = (best != mode) & (E[best, cols] < margin * E[mode, cols])
    mode = np.where(switch, best, mode)
    put(MODE, mode.astype(f64), rest)
    mu = np.where(rest, M[mode, cols], np.maximum(x, MU_MIN))
    k = np.where(rest, K[mode, cols], 0.0)
    var = mu + k * mu * mu
    mu_out = np.where(rest, mu, mu_out)
    sd_out = np.where(rest, np.sqrt(var), sd_out)
    # evidence
    test = rest & (n >= warmup) & ((x - mu) ** 2 >= U_SCREEN * U_SCREEN * var)
    s_nb = np.zeros(len(idx))
    s_nb[test] = _surprise_v(x[test], mu[test], k[test])
    ask = test & (np.abs(s_nb) >= EXPLAIN_S)
    for m in range(1, N_MODELS):
        cand = ask & (m < allowed) & (mode != m) & (E[m] <= CREDIBLE * E[mode, cols])
        if cand.any():
            sm = np.zeros(len(idx))
            sm[cand] = _surprise_v(x[cand], M[m][cand], K[m][cand])
            s_nb = np.where(cand & (np.abs(sm) < np.abs(s_nb)), sm, s_nb)
    pi, bm, bv = get(PI), get(BM), get(BV)
    s1 = np.zeros(len(idx))
    s1[test] = _burst_v(s_nb[test], x[test], mu[test], pi[test], bm[test], bv[test])
    s = s1.copy()
    prs, prn = get(RS), get(RN)
    runs = test & (np.abs(s1) >= RUN_MIN)
    cont = runs & (prs * s1 > 0.0)
    rs = np.where(cont, prs + s1, np.where(runs, s1, 0.0))
    rn = np.where(cont, prn + 1.0, np.where(runs, 1.0, 0.0))
    two = runs & (rn >= 2.0)
    sr = np.zeros(len(idx))
    sr[two] = _fisher_v(np.abs(rs[two]), rn[two]) - math.log10(2.0)
    span2 = two & (rn == 2.0) & (s1 > 0.0) & (pi > PI_NULL)
    pair = np.where(same_level_many(get(LX), x, mu), 2.0 * np.minimum(s1, prs),
                    np.maximum(s1, prs))
    sr = np.where(span2, np.minimum(sr, pair), sr)
    lb0 = get(LB)
    with np.errstate(over="ignore"):
        tail = (two & (rn == 3.0) & (s1 > 0.0) & (pi > PI_NULL) & (lb0 > 0.0)
                & (x < BURST_TAIL_SHARE * mu * np.exp(lb0)))
    xp = np.floor(mu * np.exp(np.where(tail, lb0, 0.0)) + 0.5)
    sr2 = np.zeros(len(idx))
    sr2[tail] = _burst_v(_surprise_v(xp[tail], mu[tail], k[tail]), xp[tail], mu[tail], pi[tail],
                         bm[tail], bv[tail])
    sr = np.where(tail, np.minimum(sr, sr2), sr)
    holds = (two & (rn == 3.0) & (s1 > 0.0) & (pi > PI_NULL) & (lb0 > 0.0) & ~tail
             & (get(LX) >= lb0 + math.log(BURST_TAIL_SHARE)) & same_level_many(lb0, x, mu))
    sr = np.where(holds, np.maximum(sr, s_nb - math.log10(2.0)), sr)
    s = np.where(two & (sr > np.abs(s1)), np.copysign(sr, s1), s)
    s_out = np.where(rest, s, 0.0)
    put(RS, rs, rest)
    put(RN, rn, rest)
    with np.errstate(divide="ignore", invalid="ignore"):
        put(LX, np.where((x > 0) & (mu > 0), np.log(np.where(x > 0, x, 1.0) / mu), LX_NONE),
            rest)
    in_run = rn >= 2.0
    # bursts
    bz = rest & (n >= warmup)
    lb = get(LB)
    up_run = (rn >= 2.0) & (rs > 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        lx = np.log(np.where(x > 0, x, 1.0) / mu)
    pend = bz & (lb > 0.0)
    burst = pend & ~up_run
    cancel = pend & up_run & (rn > BURST_WINDOWS)
    grow = pend & up_run & ~(rn > BURST_WINDOWS) & (s_nb > 0.0)
    start = bz & ~pend & (s_nb >= BURST_S) & (rn <= 1.0)
    put(LB, 0.0, burst | cancel)
    put(LB, np.maximum(lb, lx), grow)
    put(LB, lx, start)
    gp = np.maximum(a_pi, 1.0 / (n - warmup + PI_PRIOR_WINDOWS))
    put(PI, pi + gp * (burst.astype(f64) - pi), bz)
    newb = burst & (bv <= 0.0)
    put(BM, lb, newb)
    put(BV, BURST_SD_MIN * BURST_SD_MIN, newb)
    oldb = burst & ~(bv <= 0.0)
    dm = lb - bm
    put(BM, bm + BURST_GAIN * dm, oldb)
    put(BV, bv + BURST_GAIN * (dm * dm - bv), oldb)
    # baselines
    g = np.maximum(a_lvl, 1.0 / (n + 1.0))
    gk = np.maximum(a_k, 1.0 / (n + 1.0))
    ge = np.maximum(a_e, 1.0 / (n + 1.0))
    gt = g * TREND_BETA
    g = np.where(in_run & (rn <= RUN_ADAPT), g * RUN_DAMP, g)
    gk = np.where(in_run | (s_nb >= BURST_S), 0.0, gk)
    gt = np.where(in_run, 0.0, gt)

    def clip(v, c, vv):
        lim = HUBER_C * np.sqrt(vv)
        return np.where((v - c) ** 2 <= HUBER_C * HUBER_C * vv, v, c + np.copysign(lim, v - c))

    def disp(kk, mm, gain):
        e = ((x - mm) ** 2 - x) / (mm * mm)
        e = np.minimum(e, np.maximum(DISP_CAP_REL * kk, DISP_CAP_ABS))
        return np.maximum(kk + gain * (e - kk), 0.0)

    for m in range(N_MODELS):
        mm = M[m]
        vm = mm + K[m] * mm * mm
        put(EF + m, E[m] + ge * (np.minimum((x - mm) ** 2, HUBER_C * HUBER_C * var) - E[m]),
            rest)
        put(KF + m, disp(K[m], mm, gk), rest & (gk > 0.0))
        xm = clip(x, mm, vm)
        if m == 0:
            e0 = xm - mm
            put(F, get(F) + TREND_PHI * get(TF) + g * e0, rest)
            tf = TREND_PHI * get(TF) + gt * e0
            lim = TREND_MAX * np.maximum(get(F), 0.0)
            put(TF, np.maximum(np.minimum(tf, lim), -lim), rest)
        else:
            lv = get(LD + m - 1)
            put(LD + m - 1, lv + g * wl[m] * (xm / fac[m] - lv), rest)
    # profiles
    xc = np.where(full, clip(x, mu, var), x)
    c = np.minimum(pcnt[h, idx].astype(f64) + 1.0, hcap)
    pcnt[h, idx] = c
    old = prof[h, idx].astype(f64)
    new = old + (xc / df - old) / c
    prof[h, idx] = new
    put(HSUM, get(HSUM) + (new - old))
    if full.any():
        fi = idx[full]
        c = np.minimum(pcnt[24 + d, fi].astype(f64) + 1.0, dcap)
        pcnt[24 + d, fi] = c
        old = prof[24 + d, fi].astype(f64)
        new = old + (xc[full] / hs[full] - old) / c
        prof[24 + d, fi] = new
        st[DSUM, fi] = st[DSUM, fi].astype(f64) + (new - old)
    seen[idx] = n + 1
    return {"st": st, "prof": prof, "pcnt": pcnt, "seen": seen}, s_out, mu_out, sd_out


@nb.njit(cache=True, error_model="numpy")
def family_pass(group, seen, warm_from, s, mu, v_min, n_groups, x, sd, up_cap, rise_cap):
    """One pass over a window's series for the per-service Bonferroni weights: per group
    (service) its warm members' count and the sum of their weights sqrt(max(mu, v_min));
    the positions of the warm members with a surprise; and the weighted drop statistic,
    D = sum (x - mu) mu / var with its variance V = sum mu^2 / var: the efficient test of
    a service-wide proportional drop. A total's noise is dominated by its bursty
    templates; here each template weighs by how steady it is, so the steady part of the
    traffic going down shows while the total is still within its burst-inflated noise.
    Upward deviations count at most ``up_cap`` sd, so a burst does not mask a drop.
    Also the sums a service's common rise is made of (``detect.common_rise``): its warm
    members' counts, each at most ``rise_cap`` x its expectation (one sibling's burst
    moves it little), and their expectations. group < 0: not scored."""
    n_warm = np.zeros(n_groups, np.int64)
    w = np.zeros(n_groups)
    d = np.zeros(n_groups)
    v = np.zeros(n_groups)
    rx = np.zeros(n_groups)
    rm = np.zeros(n_groups)
    nz = np.empty(s.shape[0], np.int64)
    c = 0
    for j in range(s.shape[0]):
        g = group[j]
        if g < 0 or seen[j] < warm_from:
            continue
        n_warm[g] += 1
        w[g] += math.sqrt(max(mu[j], v_min))
        if s[j] != 0.0:
            nz[c] = j
            c += 1
        m = max(mu[j], MU_MIN)
        var = max(sd[j] * sd[j], MU_MIN)
        d[g] += min(x[j] - m, up_cap * sd[j]) * m / var
        v[g] += m * m / var
        rx[g] += min(x[j], rise_cap * m)
        rm[g] += m
    return n_warm, w, nz[:c], d, v, rx, rm


def family_pass_reference(group, seen, warm_from, s, mu, v_min, n_groups, x, sd, up_cap,
                          rise_cap):
    member = (group >= 0) & (seen >= warm_from)
    g = group[member]
    m = np.maximum(mu[member], MU_MIN)
    var = np.maximum(sd[member] ** 2, MU_MIN)
    dev = np.minimum(x[member] - m, up_cap * sd[member])
    return (np.bincount(g, minlength=n_groups),
            np.bincount(g, weights=np.sqrt(np.maximum(mu[member], v_min)), minlength=n_groups),
            np.flatnonzero(member & (s != 0.0)),
            np.bincount(g, weights=dev * m / var, minlength=n_groups),
            np.bincount(g, weights=m * m / var, minlength=n_groups),
            np.bincount(g, weights=np.minimum(x[member], rise_cap * m), minlength=n_groups),
            np.bincount(g, weights=m, minlength=n_groups))
