"""Score stage: closed windows to per-service scores and self-explaining anomalies.

One call per closed window runs the numba kernels of ``score`` over every template series,
every service's line count and every service's error ratio at once; Python then only
looks at the few series over a threshold.

Evidence is made comparable before thresholds apply. A service with m warm template
series gets m chances a window to cross a threshold by noise, so template z-scores are
corrected for that (``z_adj^2 = z^2 - 2 ln m``, the Bonferroni correction in z units for
Gaussian tails). Spikes and drops must also be large in relative terms (x2, /2), so a
noisy but harmless series does not page anyone.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .config import ScoreConfig
from .score import (HOURS_PER_WEEK, anomaly_score, ewma_step, hour_of_week, outage_probability,
                    ratio_step, seasonal_step, trend_step)
from .window import WindowFrame

SEVERITY_RANK = {"warning": 1, "critical": 2}
NEW_TEMPLATE_WINDOWS = 3  # a template counts as new for its first windows
OUTAGE_BIAS, OUTAGE_W_SCORE, OUTAGE_W_TREND = -3.5, 0.9, 1.5


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
    zscore: float
    score: float  # 0-100
    severity: str
    samples: list[str] = field(default_factory=list)
    incident_id: str = ""  # with the service name: "<service>-<first window, UTC>"


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


@dataclass
class Detection:
    windows: list[ServiceWindow]
    anomalies: list[Anomaly]
    template_z: np.ndarray  # z of every template series this window (for top-K gauges)


def _pad(a: np.ndarray, n: int, fill=0) -> np.ndarray:
    if len(a) >= n:
        return a[:n]
    out = np.full(n, fill, dtype=a.dtype)
    out[: len(a)] = a
    return out


def poisson_z(x: float, lam: float) -> float:
    """z-equivalent of a count x under Poisson(lam) (Wilson-Hilferty): the tail of a small
    count is heavier than a Gaussian's, so 7 against an expected 2 is z 2.6, not 3.5."""
    lam = max(lam, 1e-9)
    if x > lam:
        return 3.0 * math.sqrt(x) * (1.0 - 1.0 / (9.0 * x) - (lam / x) ** (1.0 / 3.0))
    y = x + 1.0
    return min(3.0 * math.sqrt(y) * (1.0 - 1.0 / (9.0 * y) - (lam / y) ** (1.0 / 3.0)), 0.0)


def _alpha(half_life: float) -> float:
    return 1.0 - 0.5 ** (1.0 / half_life)


def _severity(z_adj: float, cfg: ScoreConfig) -> str | None:
    a = abs(z_adj)
    if a > cfg.critical_z:
        return "critical"
    if a > cfg.warning_z:
        return "warning"
    return None


def _incident_stamp(t: float) -> str:
    import time
    return time.strftime("%Y%m%dT%H%MZ", time.gmtime(t))


class Detector:
    """Baselines of all series as arrays; ``score(frame)`` per closed window, in order."""

    def __init__(self, config: ScoreConfig | None = None, window_seconds: float = 60.0):
        self.cfg = config or ScoreConfig()
        self.w = float(window_seconds)
        self.alpha = _alpha(self.cfg.half_life_windows)
        self.alpha_anomalous = self.alpha / 10.0
        # template count series
        self.t_mean = np.zeros(0)
        self.t_var = np.zeros(0)
        self.t_seen = np.zeros(0, dtype=np.int64)
        self.t_reported = np.zeros(0, dtype=bool)  # new_template raised already
        # service line counts, error ratio and its trend
        self.s_mean = np.zeros(0)
        self.s_var = np.zeros(0)
        self.s_seen = np.zeros(0, dtype=np.int64)
        self.r_mean = np.zeros(0)
        self.r_var = np.zeros(0)
        self.r_seen = np.zeros(0, dtype=np.int64)
        self.r_level = np.zeros(0)
        self.r_slope = np.zeros(0)
        self.alive = np.zeros(0, dtype=bool)  # has logged at least once
        # service -> (first window stamp of its open incident, last anomalous window start)
        self.incident: dict[int, tuple[str, float]] = {}

    def _resize(self, n_templates: int, n_services: int) -> None:
        if len(self.t_mean) < n_templates:
            self.t_mean = _pad(self.t_mean, n_templates)
            self.t_var = _pad(self.t_var, n_templates)
            self.t_seen = _pad(self.t_seen, n_templates)
            self.t_reported = _pad(self.t_reported, n_templates)
        if len(self.s_mean) < n_services:
            self.s_mean = _pad(self.s_mean, n_services)
            self.s_var = _pad(self.s_var, n_services)
            self.s_seen = _pad(self.s_seen, n_services)
            self.r_mean = _pad(self.r_mean, n_services)
            self.r_var = _pad(self.r_var, n_services)
            self.r_seen = _pad(self.r_seen, n_services)
            self.r_level = _pad(self.r_level, n_services, np.nan)
            self.r_slope = _pad(self.r_slope, n_services)
            self.alive = _pad(self.alive, n_services)

    def score(self, frame: WindowFrame, template_service: np.ndarray,
              n_services: int) -> Detection:
        """template_service[t] is the service of template t (one entry per template)."""
        cfg = self.cfg
        T = len(template_service)
        self._resize(T, n_services)
        counts = _pad(frame.template_counts, T).astype(np.float64)
        terrors = _pad(frame.template_errors, T)
        lines = _pad(frame.lines, n_services).astype(np.float64)
        errors = _pad(frame.errors, n_services).astype(np.float64)
        self.alive |= lines > 0
        # only the services closing this window are scored (each has its own clock)
        if frame.services is None:
            in_s = np.ones(n_services, dtype=bool)
        else:
            in_s = np.zeros(n_services, dtype=bool)
            in_s[frame.services] = True
        in_t = in_s[template_service]
        # a template series exists from its first line; a service from its first line
        t_live = ((self.t_seen > 0) | (counts > 0)) & in_t
        t_idx = np.flatnonzero(t_live)
        # a template is young for its first few windows: then it may raise new_template once
        young = t_idx[(self.t_seen[t_idx] < NEW_TEMPLATE_WINDOWS) & ~self.t_reported[t_idx]
                      & (counts[t_idx] > 0)]
        t_prior_mean = self.t_mean.copy()
        z_t = self._count_step(self.t_mean, self.t_var, self.t_seen, counts, t_idx)
        s_prior = (self.s_mean.copy(), self.s_var.copy(), self.s_seen.copy())
        z_s = self._count_step(self.s_mean, self.s_var, self.s_seen, lines,
                               np.flatnonzero(self.alive & in_s))
        if cfg.seasonal:
            slot = hour_of_week(frame.start)
            z_t, t_prior_mean = self._seasonal("t", counts, slot, z_t, t_prior_mean, T, in_t)
            z_s, s_prior = self._seasonal_services(lines, slot, z_s, s_prior, n_services,
                                                   in_s)

        r_prior = self.r_mean.copy()
        z_r = np.zeros(n_services)
        ratio_step(errors, lines, self.r_mean, self.r_var, self.r_seen, self.alpha,
                   self.alpha_anomalous, cfg.error_ratio_floor / 2, cfg.warmup_windows,
                   cfg.warning_z, z_r)
        ratio = np.divide(errors, lines, out=np.full(n_services, np.nan), where=lines > 0)
        slope = np.zeros(n_services)
        trend_step(ratio, self.r_level, self.r_slope, 0.5, 0.3, slope)

        anomalies: list[Anomaly] = []
        evidence = np.zeros(n_services)  # max |z_adj| per service
        outage_ev = np.zeros(n_services)
        warm = t_idx[self.t_seen[t_idx] > cfg.warmup_windows]
        warm_templates = np.bincount(template_service[warm], minlength=n_services)
        penalty = 2.0 * np.log(np.maximum(warm_templates, 1))

        def adj(z, svc):
            return math.copysign(math.sqrt(max(z * z - penalty[svc], 0.0)), z)

        def add(svc, kind, template, actual, expected, std, z, z_adj, samples):
            sev = _severity(z_adj, cfg)
            if sev is None:
                return
            evidence[svc] = max(evidence[svc], abs(z_adj))
            anomalies.append(Anomaly(
                int(svc), kind, frame.start, frame.end, int(template), float(actual),
                float(expected), float(max(expected - cfg.warning_z * std, 0.0)),
                float(expected + cfg.warning_z * std), float(z), 0.0, sev,
                list(samples)[: cfg.sample_lines]))

        # service drops (including silence) outrank the drops of its templates
        dropped = set()
        for svc in np.flatnonzero(z_s < -cfg.warning_z).tolist():
            exp = s_prior[0][svc]
            if lines[svc] <= 0.5 * exp:
                std = math.sqrt(max(s_prior[1][svc], exp, 1.0))
                z_count = max(z_s[svc], poisson_z(lines[svc], exp))
                add(svc, "drop", -1, lines[svc], exp, std, z_s[svc], z_count, [])
                outage_ev[svc] = max(outage_ev[svc], -z_s[svc])
                dropped.add(svc)
        # template spikes and drops
        for t in np.flatnonzero(np.abs(z_t) > cfg.warning_z).tolist():
            svc = int(template_service[t])
            exp = t_prior_mean[t]
            x = counts[t]
            if z_t[t] > 0 and x < 2.0 * exp:
                continue
            if z_t[t] < 0 and (x > 0.5 * exp or svc in dropped):
                continue
            std = (x - exp) / z_t[t] if z_t[t] else 1.0
            z = z_t[t]
            z_count = max(z, poisson_z(x, exp)) if z < 0 else min(z, poisson_z(x, exp))
            add(svc, "spike" if z > 0 else "drop", t, x, exp, std, z, adj(z_count, svc),
                frame.samples.get(t, []))
        # new templates, weighted by volume and level, once the service has a baseline:
        # min_lines lines make a warning, three times as much weight a critical
        least = max(cfg.new_template_min_lines, 1)
        for t in young.tolist():
            svc = int(template_service[t])
            if self.s_seen[svc] <= cfg.warmup_windows:
                continue
            x = counts[t]
            weighted = x * (1.0 + 2.0 * terrors[t] / x)
            if weighted < least:
                continue
            z = cfg.warning_z + 0.01 + (cfg.critical_z - cfg.warning_z) * (weighted - least) \
                / (2.0 * least)
            self.t_reported[t] = True
            add(svc, "new_template", t, x, 0.0, 1.0, z, z, frame.samples.get(t, []))
        # error ratio
        for svc in np.flatnonzero(z_r > cfg.warning_z).tolist():
            exp = r_prior[svc]
            r = ratio[svc]
            if r < max(2.0 * exp, exp + cfg.error_ratio_floor):
                continue
            std = (r - exp) / z_r[svc]
            err_templates = [t for t in np.flatnonzero(terrors > 0).tolist()
                             if template_service[t] == svc]
            samples = [line for t in err_templates for line in frame.samples.get(t, [])]
            add(svc, "error_rate", -1, r, exp, std, z_r[svc], z_r[svc], samples)
            outage_ev[svc] = max(outage_ev[svc], z_r[svc])

        scores = anomaly_score(evidence)
        # rising error ratio: slope in units of the error-ratio floor per window
        trend = np.maximum(slope / max(cfg.error_ratio_floor, 1e-9), 0.0)
        p_out = outage_probability(np.maximum(outage_ev, 0.0), trend, OUTAGE_BIAS,
                                   OUTAGE_W_SCORE, OUTAGE_W_TREND)
        p_out[~self.alive] = 0.0
        self._join_incidents(anomalies, frame.start, scores)
        windows = [ServiceWindow(int(s), frame.start, frame.end, int(lines[s]), int(errors[s]),
                                 0.0 if np.isnan(ratio[s]) else float(ratio[s]),
                                 float(z_r[s]), float(scores[s]), float(p_out[s]),
                                 float(s_prior[0][s]), float(r_prior[s]))
                   for s in np.flatnonzero(self.alive & in_s).tolist()]
        return Detection(windows, anomalies, z_t)

    def _count_step(self, mean, var, seen, x, idx) -> np.ndarray:
        """One window of the live count series idx (baselines updated in place); z of all."""
        cfg = self.cfg
        z = np.zeros(len(x))
        z_live = np.zeros(len(idx))
        m, v, s = mean[idx], var[idx], seen[idx]
        ewma_step(x[idx], m, v, s, self.alpha, self.alpha_anomalous, cfg.count_floor,
                  cfg.warmup_windows, cfg.warning_z, z_live)
        mean[idx], var[idx], seen[idx] = m, v, s
        z[idx] = z_live
        return z

    def _seasonal(self, name: str, x: np.ndarray, slot: int, z: np.ndarray,
                  prior: np.ndarray, n: int, in_frame: np.ndarray):
        """Hour-of-week baselines: where this hour of the week has its own warm baseline,
        its z and mean replace the plain ones (so Monday 9:00 is compared with Mondays)."""
        key = f"seasonal_{name}"
        state = getattr(self, key, None)
        if state is None or state[0].shape[0] < n:
            fresh = [np.zeros((n, HOURS_PER_WEEK), order="F") for _ in range(2)]
            seen = np.zeros((n, HOURS_PER_WEEK), dtype=np.int64, order="F")
            if state is not None:
                for new, old in zip((*fresh, seen), state):
                    new[: old.shape[0]] = old
            state = (*fresh, seen)
            setattr(self, key, state)
        mean, var, seen = state
        before = mean[:n, slot].copy()
        z_season = np.zeros(n)
        # rows of the services in this frame only (others keep their baselines)
        rows = np.flatnonzero(in_frame[:n])
        m, v, sn = (np.asfortranarray(a[rows]) for a in state)
        live = (x[rows] > 0) | (sn.sum(axis=1) > 0)
        z_rows = np.zeros(len(rows))
        seasonal_step(np.where(live, x[rows], 0.0), slot, m, v, sn, self.alpha,
                      self.alpha_anomalous, self.cfg.count_floor, self.cfg.warmup_windows,
                      self.cfg.warning_z, z_rows)
        mean[rows], var[rows], seen[rows] = m, v, sn
        z_season[rows] = z_rows
        warm = seen[:n, slot] > self.cfg.warmup_windows
        return np.where(warm, z_season, z), np.where(warm, before, prior)

    def _seasonal_services(self, lines, slot, z_s, s_prior, n, in_frame):
        z, mean = self._seasonal("s", lines, slot, z_s, s_prior[0][:n], n, in_frame)
        return z, (mean, s_prior[1], s_prior[2])

    def _join_incidents(self, anomalies: list[Anomaly], start: float, scores) -> None:
        """Anomalies of one service in adjacent windows share one incident id."""
        gap = (self.cfg.incident_gap_windows + 1) * self.w
        for a in anomalies:
            a.score = float(scores[a.service])
            known = self.incident.get(a.service)
            if known is None or start - known[1] > gap:
                known = (_incident_stamp(start), start)
            self.incident[a.service] = (known[0], start)
            a.incident_id = known[0]

    # baselines are data; alpha, thresholds and the window length come from the config
    _ARRAYS = ("t_mean", "t_var", "t_seen", "t_reported", "s_mean", "s_var", "s_seen",
               "r_mean", "r_var", "r_seen", "r_level", "r_slope", "alive")

    def state(self) -> dict:
        state = {k: getattr(self, k) for k in self._ARRAYS}
        state["incident"] = {str(s): [stamp, start] for s, (stamp, start)
                             in self.incident.items()}
        for name in ("seasonal_t", "seasonal_s"):
            if getattr(self, name, None) is not None:
                state[name] = list(getattr(self, name))
        return state

    @classmethod
    def from_state(cls, state: dict, config: ScoreConfig | None = None,
                   window_seconds: float = 60.0) -> "Detector":
        d = cls(config, window_seconds)
        for k in cls._ARRAYS:
            setattr(d, k, np.array(state[k]))
        d.incident = {int(s): (v[0], float(v[1])) for s, v in state["incident"].items()}
        for name in ("seasonal_t", "seasonal_s"):
            if name in state:
                setattr(d, name, tuple(np.asfortranarray(a) for a in state[name]))
        return d
