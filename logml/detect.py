"""Score stage: closed windows to calibrated scores and self-explaining anomalies.

Every series (each template's count, each service's lines) has a count model
(``countmodel``): a negative binomial around a robust baseline that is flat, daily or
weekly, whichever predicts the series best. A window's evidence is the probability of a
count at least as extreme, as a surprise s = -log10 p. One call per closed window runs the
kernel over every series of the services in the frame; Python then only looks at the few
series past a threshold.

Per service, its series (every warm template and the total) form one family of tests,
corrected by weighted Bonferroni (weights sqrt(expected count)), so a service with 200
templates is not 200 times as likely to page and its busy series keep most of the
sensitivity. The family's surprise, its most surprising member after the correction,
is the window's ``anomaly_score`` (0-100, written for every window) and gives each
anomaly its score and severity (``score.warning_score``/``critical_score``).
Spikes and drops must also be large in relative terms (templates x2 and /2, a service's
lines -30 %), so a noisy but harmless series does not page anyone.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from . import countmodel as cm
from . import shortfall
from .config import ScoreConfig
from .score import outage_probability, ratio_step, trend_step
from .window import WindowFrame

NEW_TEMPLATE_WINDOWS = 3  # a template counts as new for its first windows
OUTAGE_BIAS, OUTAGE_W_SCORE, OUTAGE_W_TREND = -3.5, 0.9, 1.5
NEW_TEMPLATE_S = 3.75  # surprise of new_template_min_lines weighted lines of a new template
ERROR_WEIGHT = 3.0     # an error-level line of a new template weighs three
RATIO_DAMP_Z = 3.0     # an error ratio this far out updates its baseline 10x slower
DROP_RATIO = 0.7       # a service drop is at least 30 % below expected
JOB_SHARE = 0.2        # ... judged without a daily job's usual lines where they are a fifth of it
V_MIN = 0.01           # a series' Bonferroni weight is sqrt(max(expected count, this))
WEIGHTED_UP_CAP = 1.5  # the weighted drop test counts a template's rise at most 1.5 sd
WEIGHTED_SD = 1.25     # ... and its z spread (measured 1.13-1.3 off incidents on the tuning seeds)
RISE_MIN_LINES = 10.0  # siblings expected to hold fewer lines say nothing of their service
RISE_CAP = 3.0  # ... and a sibling's count counts at most 3x its expectation (bursts)
LEVELS = [cm.F, cm.LD, cm.LL, cm.LW]  # the level row of each baseline, by mode
BURST_STEP_DECADES = 1.0  # see _at_level
BURST_RUN_WARNING = 2.0 * cm.BURST_WINDOWS  # a series that bursts: an upward run this short
# is at most a warning (a burst lasts at most BURST_WINDOWS; two back to back, which bursts
# a few times an hour do now and then, light up four windows)


@dataclass
class Anomaly:
    service: int
    type: str  # spike | drop | new_template | error_rate
    start: float
    end: float
    template: int  # global template index, -1 for service-level anomalies
    actual: float
    expected: float
    lower: float
    upper: float
    zscore: float  # z of a normal with the same tail probability (signed)
    score: float  # 0-100, from the probability corrected for the service's m tests
    severity: str
    samples: list[str] = field(default_factory=list)
    incident_id: str = ""  # with the service name: "<service>-<first window, UTC>"
    probability: float = 1.0  # corrected tail probability


@dataclass
class ServiceWindow:
    service: int
    start: float
    end: float
    lines: int
    errors: int
    error_ratio: float
    error_ratio_z: float
    anomaly_score: float
    outage_probability: float
    expected_lines: float
    expected_error_ratio: float
    covered: float = 1.0  # share of the window the input covered (WindowFrame.covered)


@dataclass
class Detection:
    windows: list[ServiceWindow]
    anomalies: list[Anomaly]
    template_z: np.ndarray  # z of every template's corrected probability this window (gauges)


def _pad(a: np.ndarray, n: int, fill=0) -> np.ndarray:
    if len(a) >= n:
        return a[:n]
    out = np.full(n, fill, dtype=a.dtype)
    out[: len(a)] = a
    return out


def _fold(counts: np.ndarray, errors: np.ndarray, into: np.ndarray) -> tuple:
    """Counts of templates merged into others (into[t] >= 0) added to the template they
    resolve to now (through every later merge): lines of a window still open at a merge
    were counted under the parents' ids."""
    moved = np.flatnonzero((into >= 0) & ((counts > 0) | (errors > 0)))
    if not len(moved):
        return counts, errors
    final = into[moved]
    while (into[final] >= 0).any():
        final = np.where(into[final] >= 0, into[final], final)
    counts, errors = counts.copy(), errors.copy()
    np.add.at(counts, final, counts[moved])
    np.add.at(errors, final, errors[moved])
    counts[moved] = 0
    errors[moved] = 0
    return counts, errors


def _at_level(lx: np.ndarray, x: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """This window's level log(x / mu) within 1 / BURST_TAIL_SHARE of the last window's
    (lx), as countmodel.same_level, widened by one standard error of the two counts'
    log-ratio (Poisson): at 40 lines a step that holds differs by 20 % from window to
    window. In a series that bursts, a rise off that level is a burst coming or going
    and needs BURST_STEP_DECADES more evidence (docs/detection.md, count models)."""
    x_prev = np.maximum(mu * np.exp(lx), 0.5)
    with np.errstate(divide="ignore"):
        se = np.sqrt(1.0 / x + 1.0 / x_prev)
    return cm.same_level_many(lx, x, mu, se)


def common_rise(rise_x: float, rise_m: float, x: float, mu: float) -> float:
    """How far a template's siblings rose together this window, at least 1: the sums of
    the service's warm templates' counts (each at most RISE_CAP x its expectation, so one
    sibling's burst moves it little) and expectations (``countmodel.family_pass``), less
    the template's own, as a ratio. Siblings expected to hold fewer than RISE_MIN_LINES
    lines say nothing."""
    m = max(mu, cm.MU_MIN)
    rest = rise_m - m
    if rest < RISE_MIN_LINES:
        return 1.0
    return max((rise_x - min(x, RISE_CAP * m)) / rest, 1.0)


def _model(tree: dict, name: str) -> dict:
    """A saved group of series models (countmodel.new_state's arrays), checked: the kernels
    index them without bounds checks, so a state of another shape must not reach them."""
    model = {k: np.asarray(tree[k]) for k in ("st", "prof", "pcnt", "seen")}
    n = len(model["seen"])
    want = {"st": ((cm.N_FIELDS, n), np.float32), "prof": ((cm.N_PROFILE, n), np.float32),
            "pcnt": ((cm.N_PROFILE, n), np.uint16), "seen": ((n,), np.int32)}
    for k, (shape, dtype) in want.items():
        a = model[k]
        if a.shape != shape or a.dtype != dtype:
            raise ValueError(f"detector {name} {k} is {a.dtype}{list(a.shape)}, expected "
                             f"{np.dtype(dtype)}{list(shape)}")
    return model


def _alpha(half_life: float) -> float:
    return 1.0 - 0.5 ** (1.0 / half_life)


def _incident_stamp(t: float) -> str:
    return time.strftime("%Y%m%dT%H%MZ", time.gmtime(t))


def new_template_rate(min_lines: int) -> float:
    """The per-window rate of a never-seen template's lines under which ``min_lines`` of
    them have surprise NEW_TEMPLATE_S (mid-warning): new templates then share the count
    model's probabilities (3 lines: warning; 3 error lines, weighing 9: critical)."""
    lo, hi = 1e-9, float(max(min_lines, 1))
    for _ in range(100):
        mid = math.sqrt(lo * hi)
        if -cm.ln_tail(float(min_lines), mid, 0.0, True) * cm.LOG10E > NEW_TEMPLATE_S:
            lo = mid
        else:
            hi = mid
    return math.sqrt(lo * hi)


class Detector:
    """Count models of all series as arrays; ``score(frame)`` per closed window, in order."""

    def __init__(self, config: ScoreConfig | None = None, window_seconds: float = 60.0):
        self.cfg = config or ScoreConfig()
        self.w = float(window_seconds)
        cfg = self.cfg
        self.alpha = _alpha(cfg.half_life_windows)
        self.params = cm.model_params(self.alpha, self.w, cfg.warmup_windows, cfg.seasonal)
        self.params_s = cm.model_params(self.alpha, self.w, cfg.warmup_windows, cfg.seasonal,
                                        rhythm_first=True)
        self.s_warn = cm.surprise_for_score(cfg.warning_score)
        self.slow_gain = 1.0 - 0.5 ** (self.w / (shortfall.SLOW_HOURS * 3600.0))
        self.s_crit = cm.surprise_for_score(cfg.critical_score)
        self.new_rate = new_template_rate(cfg.new_template_min_lines)
        self.n_t = 0  # template series in use (the model arrays may be larger)
        self.n_s = 0
        self.tm = cm.new_state(0)  # template count models
        self.sm = cm.new_state(0)  # service line-count models
        self.t_reported = np.zeros(0, dtype=bool)  # new_template raised already
        # error ratio baseline and its trend, per service
        self.r_mean = np.zeros(0)
        self.r_var = np.zeros(0)
        self.r_seen = np.zeros(0, dtype=np.int64)
        self.r_level = np.zeros(0)
        self.r_slope = np.zeros(0)
        self.alive = np.zeros(0, dtype=bool)  # has logged at least once
        # error-rate run: surprises of consecutive windows past p = 0.05 and their number
        self.e_rs = np.zeros(0)
        self.e_rn = np.zeros(0)
        self.short = shortfall.new_state(0)  # sustained shortfall of service totals
        # service -> (first window stamp of its open incident, last anomalous window start)
        self.incident: dict[int, tuple[str, float]] = {}

    def _resize(self, n_templates: int, n_services: int) -> None:
        if self.n_t < n_templates:
            self.tm = cm.grow_state(self.tm, n_templates)
            self.t_reported = _pad(self.t_reported, n_templates)
            self.n_t = n_templates
        if self.n_s < n_services:
            self.sm = cm.grow_state(self.sm, n_services)
            self.r_mean = _pad(self.r_mean, n_services)
            self.r_var = _pad(self.r_var, n_services)
            self.r_seen = _pad(self.r_seen, n_services)
            self.r_level = _pad(self.r_level, n_services, np.nan)
            self.r_slope = _pad(self.r_slope, n_services)
            self.alive = _pad(self.alive, n_services)
            self.e_rs = _pad(self.e_rs, n_services)
            self.e_rn = _pad(self.e_rn, n_services)
            self.short = shortfall.grow(self.short, n_services)
            self.n_s = n_services

    def _step(self, model: dict, idx: np.ndarray, x: np.ndarray, hpos: float, day: int,
              params: tuple):
        s, mu, sd = np.empty(len(idx)), np.empty(len(idx)), np.empty(len(idx))
        cm.model_step(idx, x, model["st"], model["prof"], model["pcnt"], model["seen"],
                      hpos, day, *params, s, mu, sd)
        return s, mu, sd

    def _job_lines(self, sel: np.ndarray, t_idx: np.ndarray, counts: np.ndarray,
                   template_service: np.ndarray, hpos: float, day: int) -> np.ndarray:
        """Per service of ``sel``: the lines its daily jobs' templates (``cm.job_hours``,
        within an hour of the job) usually log in a window at this time of day
        (``cm.usual_count``) and do not log now."""
        t = t_idx[np.isin(template_service[t_idx], sel)]
        near, _ = cm.job_hours(self.tm["prof"][:, t], self.tm["pcnt"][:, t],
                               self.tm["seen"][t], hpos, self.w)
        missing = np.zeros(len(sel))
        for tt in t[near].tolist():
            usual = cm.usual_count(self.tm["prof"][:, tt], self.tm["pcnt"][:, tt],
                                   int(self.tm["seen"][tt]), hpos, day, self.w)
            i = int(np.searchsorted(sel, template_service[tt]))
            missing[i] += max(usual - float(counts[tt]), 0.0)
        return missing

    def _inherit(self, t_idx: np.ndarray, into: np.ndarray) -> None:
        """Templates of t_idx scored for the first time that were merged from others
        (``into[p] == t``) start from their parents' models summed (``cm.inherit``), so
        the merged series is tested from its first window on. A parent never scored
        (merged again before a window closed, or without lines) stands for its own
        parents; one without any adds nothing."""
        seen = self.tm["seen"]
        fresh = t_idx[seen[t_idx] == 0]
        if not len(fresh):
            return
        for t in fresh[np.isin(fresh, into)].tolist():
            src, todo = [], [t]
            while todo:
                for p in np.flatnonzero(into == todo.pop()).tolist():
                    (src if seen[p] > 0 else todo).append(p)
            if src:
                st, prof, pcnt, n = cm.inherit(self.tm["st"][:, src], self.tm["prof"][:, src],
                                               self.tm["pcnt"][:, src], seen[src])
                self.tm["st"][:, t], self.tm["prof"][:, t] = st, prof
                self.tm["pcnt"][:, t], seen[t] = pcnt, n

    def score(self, frame: WindowFrame, template_service: np.ndarray,
              n_services: int, derived: np.ndarray | None = None,
              retired: np.ndarray | None = None,
              merged_into: np.ndarray | None = None) -> Detection:
        """template_service[t] is the service of template t (one entry per template).
        Lineage (optional arrays): derived[t], t was made from known templates (its
        lineage has parents), so its lines are not new: it never raises new_template;
        retired[t], t was merged into another that gets its lines now: its series ends
        (no drop to zero, no update); merged_into[t], the template t was merged into (-1:
        none): a merged template continues its parents' series (their lines of this
        window count as its own, and it starts from their models, ``_inherit``)."""
        cfg = self.cfg
        T = len(template_service)
        self._resize(T, n_services)
        if frame.services is None:
            svcs = np.arange(n_services)
        else:
            svcs = np.asarray(frame.services, dtype=np.int64)
        in_s = np.zeros(n_services, dtype=bool)
        in_s[svcs] = True
        lines_all = _pad(frame.lines, n_services)
        self.alive[svcs] |= lines_all[svcs] > 0
        svcs = np.sort(svcs[self.alive[svcs]])  # a service exists from its first line
        if frame.gap is not None and frame.services is not None and frame.gap.any():
            # no persistence test across a jump over silence
            jumped = np.asarray(frame.services)[frame.gap]
            self.sm["st"][cm.RS, jumped] = 0.0
            self.sm["st"][cm.RN, jumped] = 0.0
            t_jumped = np.flatnonzero(np.isin(template_service, jumped))
            self.tm["st"][cm.RS, t_jumped] = 0.0
            self.tm["st"][cm.RN, t_jumped] = 0.0
            self.e_rs[jumped] = 0.0
            self.e_rn[jumped] = 0.0
            shortfall.reset(self.short, jumped)
        counts = _pad(frame.template_counts, T)
        terrors = _pad(frame.template_errors, T)
        into = None
        if merged_into is not None:
            into = _pad(np.asarray(merged_into), T, -1)
            counts, terrors = _fold(counts, terrors, into)
            if retired is None:
                retired = into >= 0
        # a template series exists from its first line
        exists = (self.tm["seen"][:T] > 0) | (counts > 0)
        if frame.services is not None:
            exists &= in_s[template_service]
        if retired is not None:
            exists &= ~_pad(np.asarray(retired, dtype=bool), T)
        t_idx = np.flatnonzero(exists)
        if into is not None:
            self._inherit(t_idx, into)
        hpos, day = cm.slots(frame.start, frame.end)

        # before model_step updates them (indexing by t_idx copies): each series' windows
        # seen and its last window's level
        t_seen_before = self.tm["seen"][t_idx]
        t_lx_before = self.tm["st"][cm.LX, t_idx]
        # a template is young for its first few windows: then it may raise new_template once
        young = t_idx[t_seen_before < NEW_TEMPLATE_WINDOWS]
        young = young[~self.t_reported[young] & (counts[young] > 0)]
        if derived is not None:
            young = young[~_pad(np.asarray(derived, dtype=bool), T)[young]]
        s_t, mu_t, sd_t = self._step(self.tm, t_idx, counts[t_idx].astype(np.float64),
                                     hpos, day, self.params)
        lines = lines_all[svcs].astype(np.float64)
        s_seen_before = self.sm["seen"][svcs].copy()
        mode_before = self.sm["st"][cm.MODE, svcs]
        level_before = self.sm["st"][LEVELS][:, svcs]
        s_s, mu_s, sd_s = self._step(self.sm, svcs, lines, hpos, day, self.params_s)
        # the shortfall test: against the expectation with a slow level (a rhythm in use)
        mode = self.sm["st"][cm.MODE, svcs].astype(np.int64)
        col = np.arange(len(svcs))
        mu_short = shortfall.slow_expectation(
            self.short, svcs, mu_s, level_before[mode, col].astype(np.float64),
            self.sm["st"][LEVELS][:, svcs][mode, col].astype(np.float64), mode != cm.FLAT,
            mode != mode_before, self.slow_gain)
        s_short = shortfall.step(self.short, svcs, lines, mu_short, s_seen_before,
                                 86400.0 / self.w, self.s_warn)

        # error ratio: baseline, trend, and the error count's tail under that baseline
        errors_all = _pad(frame.errors, n_services).astype(np.float64)
        lines_f = lines_all.astype(np.float64)
        r_prior = self.r_mean.copy()
        r_var_prior = self.r_var.copy()
        r_seen_prior = self.r_seen.copy()
        mask_l = np.where(in_s, lines_f, 0.0)  # services outside the frame: no observation
        z_r = np.zeros(n_services)
        ratio_step(errors_all, mask_l, self.r_mean, self.r_var, self.r_seen, self.alpha,
                   self.alpha / 10.0, cfg.error_ratio_floor / 2, cfg.warmup_windows,
                   RATIO_DAMP_Z, z_r)
        ratio = np.divide(errors_all, lines_f, out=np.full(n_services, np.nan),
                          where=(lines_f > 0) & in_s)
        slope = np.zeros(n_services)
        trend_step(ratio, self.r_level, self.r_slope, 0.5, 0.3, slope)

        # families: per service, its warm templates and (with more than one) its total,
        # tested together with weighted Bonferroni: p_i is compared with alpha v_i / W,
        # v_i = sqrt(expected count), W their sum, so busy series (where incidents show)
        # get more of the family's alpha than its many tiny templates. The error-rate
        # test is gated by size (x2 and + error_ratio_floor) and shares the total's weight.
        pos_of = np.full(n_services, -1, np.int64)
        pos_of[svcs] = np.arange(len(svcs))
        group = pos_of[template_service[t_idx]]
        n_warm, W, nz, d_w, v_w, rise_x, rise_m = cm.family_pass(
            group, t_seen_before, cfg.warmup_windows, s_t, mu_t, V_MIN, len(svcs),
            counts[t_idx].astype(np.float64), sd_t, WEIGHTED_UP_CAP, RISE_CAP)
        # the total (where a service-wide change shows) gets half the family's alpha
        many = n_warm > 1
        v_s = np.where(many, W, 1.0)
        W = 2.0 * W
        f_s = np.where(many, W / v_s, 1.0)
        # only the few surprising series need their correction
        g_nz = group[nz]
        f_t = np.where(many[g_nz], W[g_nz] / np.sqrt(np.maximum(mu_t[nz], V_MIN)), 1.0)
        # a series that bursts, rising in a window off the level of the one before: a
        # burst coming or going (a spike is a step that holds), ten times the evidence
        t_nz = t_idx[nz]
        off = ((s_t[nz] > 0.0) & (self.tm["st"][cm.PI, t_nz] > cm.PI_NULL)
               & ~_at_level(t_lx_before[nz], counts[t_nz].astype(np.float64), mu_t[nz]))
        f_t = np.where(off, f_t * 10.0 ** BURST_STEP_DECADES, f_t)
        s_nz = np.sign(s_t[nz]) * np.maximum(np.abs(s_t[nz]) - np.log10(f_t), 0.0)
        best, _ = cm.group_extreme(g_nz, s_nz, len(svcs))
        best_s = np.where(best >= 0, s_nz[np.maximum(best, 0)] if len(nz) else 0.0, 0.0)

        s_err = np.zeros(len(svcs))
        for k, svc in enumerate(svcs.tolist()):
            n, e, r0 = lines_f[svc], errors_all[svc], r_prior[svc]
            if r_seen_prior[svc] < cfg.warmup_windows or n <= 0:
                continue
            r = e / n
            if r < max(2.0 * r0, r0 + cfg.error_ratio_floor):
                continue
            base = max(r0, 1e-4)
            mu_e = n * base
            k_e = max((r_var_prior[svc] - base * (1 - base) / n) / (base * base), 0.0)
            s_err[k] = -cm.ln_tail(e, mu_e, k_e, True) * cm.LOG10E
        # a sustained rise of the error rate: consecutive windows past p = 0.05 are
        # combined (Fisher, doubled for looking twice), as a series' runs are; error
        # lines come in bursts, so one window of a gradual rise is rarely enough
        s_svc = np.asarray(svcs, dtype=np.int64)
        run = s_err >= cm.RUN_MIN
        self.e_rs[s_svc] = np.where(run, self.e_rs[s_svc] + s_err, 0.0)
        self.e_rn[s_svc] = np.where(run, self.e_rn[s_svc] + 1.0, 0.0)
        for k in np.flatnonzero(self.e_rn[s_svc] >= 2.0).tolist():
            svc = int(svcs[k])
            sr = cm.fisher_surprise(self.e_rs[svc], int(self.e_rn[svc])) - math.log10(2.0)
            s_err[k] = max(s_err[k], sr)

        # a service-wide drop, its steady templates weighted most (d_w, v_w from
        # cm.family_pass): a further test of the family, sharing the total's alpha
        # (hence log10 2 more)
        s_w = np.zeros(len(svcs))
        low = many & (v_w > 0.0) & (d_w < 0.0)
        if low.any():
            z_w = -d_w[low] / np.sqrt(v_w[low]) / WEIGHTED_SD
            s_w[low] = [-math.log10(max(0.5 * math.erfc(z / math.sqrt(2.0)), 1e-300))
                        - math.log10(2.0) for z in z_w.tolist()]

        # near a daily job's hours a service's expectation holds the job's usual lines
        # (its hour means cannot say to the window when the job starts or ends): where
        # the job's missing lines are a fair share of the shortfall, the total's drop is
        # judged by the window alone against the rest (a run's evidence would add up the
        # job's edge window after window)
        mu_d, sd_d = mu_s.copy(), sd_s.copy()
        drop_k = np.flatnonzero((s_s < -self.s_warn) | (s_w >= self.s_warn))
        if len(drop_k):
            job_s = self._job_lines(svcs[drop_k], t_idx, counts, template_service, hpos, day)
            k_mode = self.sm["st"][cm.KF + mode, svcs]
            for i, k in enumerate(drop_k.tolist()):
                if job_s[i] <= 0.0 or job_s[i] < JOB_SHARE * (mu_s[k] - lines[k]):
                    continue
                mu_d[k] = max(mu_s[k] - job_s[i], 0.0)
                sd_d[k] = math.sqrt(cm.nb_var(mu_d[k], float(k_mode[k])))
                s_own = cm.surprise(lines[k], mu_d[k], float(k_mode[k]))
                s_s[k] = max(s_s[k], min(s_own, 0.0))

        # the family's surprise: its most surprising member after the correction
        log_fs = np.log10(f_s)
        fam = np.maximum(np.abs(s_s) - log_fs, 0.0)
        fam = np.maximum(fam, s_err - log_fs)
        fam = np.maximum(fam, s_w - log_fs)
        fam = np.maximum(fam, s_short - log_fs)
        fam = np.maximum(fam, np.abs(best_s))
        new_s = np.zeros(len(svcs))  # new templates: their own probability

        anomalies: list[Anomaly] = []
        outage_ev = np.zeros(n_services)

        def add(k, kind, template, actual, expected, sd, s_raw, samples, factor=1.0,
                max_warning=False):
            svc = int(svcs[k])
            s_c = max(abs(s_raw) - math.log10(factor), 0.0)
            if s_c < self.s_warn:
                return
            severity = "critical" if s_c >= self.s_crit and not max_warning else "warning"
            sc = np.empty(1)
            cm.score_of(np.array([s_c]), sc)
            z = np.empty(1)
            cm.z_equivalent(np.array([math.copysign(s_c, s_raw)]), z)
            # bounds: where a count would reach the warning level, about
            zw = np.empty(1)
            cm.z_equivalent(np.array([self.s_warn + math.log10(factor)]), zw)
            anomalies.append(Anomaly(
                svc, kind, frame.start, frame.end, int(template), float(actual),
                float(expected), float(max(expected - zw[0] * sd, 0.0)),
                float(expected + zw[0] * sd), float(z[0]), float(sc[0]), severity,
                list(samples)[: cfg.sample_lines], probability=float(10.0 ** -s_c)))

        # service drops (including silence) outrank the drops of its templates
        dropped = set()
        for k in np.flatnonzero(s_s < -self.s_warn).tolist():
            if s_seen_before[k] < cfg.warmup_windows or lines[k] > DROP_RATIO * mu_d[k]:
                continue
            add(k, "drop", -1, lines[k], mu_d[k], sd_d[k], s_s[k], [], f_s[k])
            outage_ev[svcs[k]] = max(outage_ev[svcs[k]], abs(s_s[k]))
            dropped.add(int(svcs[k]))
        for k in np.flatnonzero(s_w >= self.s_warn).tolist():
            if (int(svcs[k]) in dropped or s_seen_before[k] < cfg.warmup_windows
                    or lines[k] > DROP_RATIO * mu_d[k]):
                continue
            # a warning: the first sign, the total's own test makes it critical
            add(k, "drop", -1, lines[k], mu_d[k], sd_d[k], -s_w[k], [], f_s[k], True)
            outage_ev[svcs[k]] = max(outage_ev[svcs[k]], s_w[k])
            dropped.add(int(svcs[k]))
        shortfall.reset(self.short, np.array(sorted(dropped), dtype=np.int64))
        for k in np.flatnonzero(s_short >= self.s_warn).tolist():
            if int(svcs[k]) in dropped:
                continue
            add(k, "drop", -1, lines[k], mu_short[k], sd_s[k], -s_short[k], [], f_s[k], True)
            outage_ev[svcs[k]] = max(outage_ev[svcs[k]], s_short[k])
            dropped.add(int(svcs[k]))
        # template spikes and drops. A spike is at least twice what its own model
        # expects, twice its siblings' common rise over theirs (traffic returning after
        # an incident, a ramp the models lag: the whole service moved, not the template)
        # and twice its usual count at this time of day; near a daily job's hours, twice
        # the job's own rate and past the warning level against it (Poisson), and a job's
        # template has no drop there (its start and end are known to the hour only).
        cand = np.flatnonzero(np.abs(s_t[nz]) >= self.s_warn)
        t_cand = t_idx[nz[cand]]
        near_jobs, job_rates = cm.job_hours(self.tm["prof"][:, t_cand],
                                            self.tm["pcnt"][:, t_cand],
                                            self.tm["seen"][t_cand], hpos, self.w)
        for c, q in enumerate(cand.tolist()):
            j = int(nz[q])
            t = int(t_idx[j])
            svc = int(template_service[t])
            x, exp = float(counts[t]), mu_t[j]
            near_job, job_rate = bool(near_jobs[c]), float(job_rates[c])
            if s_t[j] > 0:
                g = group[j]  # j is warm (nz holds warm series only): its own sums less it
                floor = max(exp * common_rise(rise_x[g], rise_m[g], x, exp),
                            cm.usual_count(self.tm["prof"][:, t], self.tm["pcnt"][:, t],
                                           int(self.tm["seen"][t]), hpos, day, self.w),
                            job_rate if near_job else 0.0)
                if x < 2.0 * floor:
                    continue
                if near_job and (cm.surprise(x, job_rate, 0.0) - math.log10(f_t[q])
                                 < self.s_warn):
                    continue  # a small job's own noise: judged against its rate
            if s_t[j] < 0 and (x > 0.5 * exp or svc in dropped or near_job):
                continue
            # a series that bursts: an upward episode no longer than two bursts back to
            # back is at most a warning; critical needs persistence, a level that holds
            # from one window to the next (bursts in a cluster come and go)
            burst_like = (s_t[j] > 0 and self.tm["st"][cm.PI, t] > cm.PI_NULL
                          and (self.tm["st"][cm.RN, t] <= BURST_RUN_WARNING
                               or not cm.same_level(float(t_lx_before[j]), x, float(exp))))
            add(int(pos_of[svc]), "spike" if s_t[j] > 0 else "drop", t, x, exp, sd_t[j], s_t[j],
                frame.samples.get(t, []), f_t[q], burst_like)
        # new templates, weighted by level, once the service has a baseline
        for t in young.tolist():
            svc = int(template_service[t])
            k = int(pos_of[svc])
            if k < 0 or s_seen_before[k] < cfg.warmup_windows:
                continue
            x = float(counts[t])
            weighted = x + (ERROR_WEIGHT - 1.0) * float(terrors[t])
            s_new = -cm.ln_tail(math.floor(weighted), self.new_rate, 0.0, True) * cm.LOG10E
            new_s[k] = max(new_s[k], s_new)
            if s_new < self.s_warn:
                continue
            self.t_reported[t] = True
            add(k, "new_template", t, x, 0.0, math.sqrt(self.new_rate), s_new,
                frame.samples.get(t, []))
        # error ratio
        for k in np.flatnonzero(s_err > 0).tolist():
            svc = int(svcs[k])
            n = lines_f[svc]
            r, r0 = errors_all[svc] / n, r_prior[svc]
            sd_r = math.sqrt(max(r_var_prior[svc], r0 * (1 - r0) / n, 1e-12))
            err_t = [t for t in t_idx[terrors[t_idx] > 0].tolist() if template_service[t] == svc]
            samples = [line for t in err_t for line in frame.samples.get(t, [])]
            add(k, "error_rate", -1, r, r0, sd_r, s_err[k], samples, f_s[k])
            outage_ev[svc] = max(outage_ev[svc], s_err[k])

        # every window's score: the family's, or a new template's if higher
        svc_s = np.maximum(fam, new_s)
        scores = np.empty(len(svcs))
        cm.score_of(svc_s, scores)
        # outage: drop / error evidence in z units; rising error ratio
        ev = np.empty(n_services)
        cm.z_equivalent(outage_ev, ev)
        trend = np.maximum(slope / max(cfg.error_ratio_floor, 1e-9), 0.0)
        p_out = outage_probability(ev, trend, OUTAGE_BIAS, OUTAGE_W_SCORE, OUTAGE_W_TREND)
        self._join_incidents(anomalies, frame.start)
        windows = [ServiceWindow(int(s), frame.start, frame.end, int(lines_all[s]),
                                 int(errors_all[s]),
                                 0.0 if np.isnan(ratio[s]) else float(ratio[s]),
                                 float(z_r[s]), float(scores[k]), float(p_out[s]),
                                 float(mu_s[k]), float(r_prior[s]))
                   for k, s in enumerate(svcs.tolist())]
        # gauges: z of the corrected probability, so |z| >= 3 is rare for the service too
        template_z = np.zeros(T)
        z_t = np.empty(len(nz))
        cm.z_equivalent(s_nz, z_t)
        template_z[t_idx[nz]] = z_t
        return Detection(windows, anomalies, template_z)

    def _join_incidents(self, anomalies: list[Anomaly], start: float) -> None:
        """Anomalies of one service in adjacent windows share one incident id."""
        gap = (self.cfg.incident_gap_windows + 1) * self.w
        for a in anomalies:
            known = self.incident.get(a.service)
            if known is None or start - known[1] > gap:
                known = (_incident_stamp(start), start)
            self.incident[a.service] = (known[0], start)
            a.incident_id = known[0]

    # models are data; alpha, thresholds and the window length come from the config
    _ARRAYS = ("t_reported", "r_mean", "r_var", "r_seen", "r_level", "r_slope", "alive")
    _RUN_ARRAYS = ("e_rs", "e_rn")  # format 3; absent in format 2: no run open

    def state(self) -> dict:
        def trim(model, n):
            return {k: (v[:n] if v.ndim == 1 else v[:, :n]) for k, v in model.items()}
        state = {k: getattr(self, k) for k in self._ARRAYS + self._RUN_ARRAYS}
        state["templates"] = trim(self.tm, self.n_t)
        state["services"] = trim(self.sm, self.n_s)
        state["shortfall"] = {k: v[:self.n_s] for k, v in self.short.items()}
        state["incident"] = {str(s): [stamp, start] for s, (stamp, start)
                             in self.incident.items()}
        return state

    @classmethod
    def from_state(cls, state: dict, config: ScoreConfig | None = None,
                   window_seconds: float = 60.0) -> "Detector":
        d = cls(config, window_seconds)
        for k in cls._ARRAYS:
            setattr(d, k, np.array(state[k]))
        for k in cls._RUN_ARRAYS:
            setattr(d, k, _pad(np.array(state[k], np.float64), len(d.alive)) if k in state
                    else np.zeros(len(d.alive)))
        d.tm = _model(state["templates"], "templates")
        d.sm = _model(state["services"], "services")
        d.n_t = len(d.tm["seen"])
        d.n_s = len(d.sm["seen"])
        d.short = {k: np.array(state["shortfall"][k], np.float64) for k in shortfall.FIELDS}
        for k, v in d.short.items():  # the sums are indexed by service: sizes must agree
            if v.shape != shortfall.shape(k, d.n_s):
                raise ValueError(f"detector shortfall {k} has shape {v.shape}, expected "
                                 f"{shortfall.shape(k, d.n_s)}")
        # the kernels index these by series without bounds checks: sizes must agree
        for k in cls._ARRAYS + cls._RUN_ARRAYS:
            n = d.n_t if k == "t_reported" else d.n_s
            if getattr(d, k).shape != (n,):
                raise ValueError(f"detector {k} has shape {getattr(d, k).shape}, expected "
                                 f"({n},)")
        d.incident = {int(s): (v[0], float(v[1])) for s, v in state["incident"].items()}
        return d
