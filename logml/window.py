"""Window stage: event-time tumbling windows with allowed lateness and watermarks.

Windows are aligned to multiples of the window length; every service shares their bounds
so that a silent service shows as zeros. Each service has its own watermark (its latest
event time): a window closes when every service has passed its end by the allowed
lateness, except services that lag the others by more than ``idle`` (silent, or stuck) -
they no longer hold windows open and count zero. The close limit is tracked record by
record, so the result does not depend on how the input was cut into batches. A record
whose window had closed before it arrived is late: it is counted and returned, never
silently dropped.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numba as nb
import numpy as np


@nb.njit(cache=True)
def close_limits(ts, service, marks, latest, limit, w, lateness, idle):
    """Per record: the start of the first window still open after it arrived.

    marks[s] (each service's latest event time, -inf before its first record) is updated
    in place; returns (limits, latest, limit) with the overall latest time and the limit,
    which never moves back."""
    n = ts.shape[0]
    out = np.empty(n)
    for i in range(n):
        s = service[i]
        if ts[i] > marks[s]:
            marks[s] = ts[i]
        if ts[i] > latest:
            latest = ts[i]
        floor = latest - lateness - idle
        low = np.inf
        for k in range(marks.shape[0]):
            if marks[k] > -np.inf:
                m = marks[k] - lateness
                if m < floor:
                    m = floor
                if m < low:
                    low = m
        cand = np.floor(low / w) * w
        if cand > limit:
            limit = cand
        out[i] = limit
    return out, latest, limit


@dataclass
class WindowFrame:
    """Counts of one closed window: per template (global template index) and per service."""
    start: float
    end: float
    template_counts: np.ndarray  # int64 [n_templates]
    template_errors: np.ndarray  # int64 [n_templates]
    lines: np.ndarray  # int64 [n_services]
    errors: np.ndarray  # int64 [n_services]
    samples: dict[int, list[str]] = field(default_factory=dict)  # template -> sample lines

    @property
    def error_ratio(self) -> np.ndarray:
        return np.divide(self.errors, self.lines, out=np.zeros(len(self.lines)),
                         where=self.lines > 0)


@dataclass
class _Open:
    template_counts: np.ndarray
    template_errors: np.ndarray
    lines: np.ndarray
    errors: np.ndarray
    samples: dict[int, list[str]]


def _grow(a: np.ndarray, n: int) -> np.ndarray:
    if len(a) >= n:
        return a
    out = np.zeros(max(n, 2 * len(a)), dtype=a.dtype)
    out[: len(a)] = a
    return out


class Windower:
    """Accumulates batches into open windows and hands back the windows that closed."""

    def __init__(self, seconds: int = 60, lateness_windows: int = 2, sample_lines: int = 3,
                 idle_windows: int = 3):
        self.w = float(seconds)
        self.lateness = lateness_windows * self.w
        self.idle = idle_windows * self.w
        self.sample_lines = sample_lines
        self.watermark = -np.inf  # latest event time seen (any service)
        self.marks = np.full(0, -np.inf)  # latest event time per service
        self.limit = -np.inf  # windows starting before this are closed (or closable)
        self.next_start: float | None = None  # start of the earliest window not yet closed
        self.open: dict[float, _Open] = {}
        self.late = 0

    def add(self, ts: np.ndarray, template: np.ndarray, service: np.ndarray,
            is_error: np.ndarray, n_templates: int, n_services: int,
            sample_text=None) -> np.ndarray:
        """Count a batch; returns the positions of late records (not counted in a window).

        sample_text(i) gives record i's text; it is called for at most ``sample_lines``
        records per template and window.
        """
        if len(ts) == 0:
            return np.empty(0, dtype=np.int64)
        starts = np.floor(ts / self.w) * self.w
        if len(self.marks) < n_services:
            self.marks = np.concatenate((self.marks, np.full(n_services - len(self.marks),
                                                             -np.inf)))
        limits, self.watermark, self.limit = close_limits(
            ts, service, self.marks, self.watermark, self.limit, self.w, self.lateness,
            self.idle)
        late = starts < limits
        if self.next_start is not None:
            late |= starts < self.next_start
        late_pos = np.flatnonzero(late)
        self.late += len(late_pos)
        ok = ~late
        for s in np.unique(starts[ok]).tolist():
            sel = np.flatnonzero(ok & (starts == s))
            acc = self.open.get(s)
            if acc is None:
                acc = self.open[s] = _Open(np.zeros(n_templates, np.int64),
                                           np.zeros(n_templates, np.int64),
                                           np.zeros(n_services, np.int64),
                                           np.zeros(n_services, np.int64), {})
            acc.template_counts = _grow(acc.template_counts, n_templates)
            acc.template_errors = _grow(acc.template_errors, n_templates)
            acc.lines = _grow(acc.lines, n_services)
            acc.errors = _grow(acc.errors, n_services)
            t, e, sv = template[sel], is_error[sel], service[sel]
            acc.template_counts[: n_templates] += np.bincount(t, minlength=n_templates)
            acc.template_errors[: n_templates] += np.bincount(t[e], minlength=n_templates)
            acc.lines[: n_services] += np.bincount(sv, minlength=n_services)
            acc.errors[: n_services] += np.bincount(sv[e], minlength=n_services)
            if sample_text is not None and self.sample_lines > 0:
                self._sample(acc, t, sel, sample_text)
        return late_pos

    def _sample(self, acc: _Open, t: np.ndarray, sel: np.ndarray, sample_text) -> None:
        order = np.argsort(t, kind="stable")
        sorted_t = t[order]
        firsts = np.flatnonzero(np.r_[True, sorted_t[1:] != sorted_t[:-1]])
        for f in firsts.tolist():
            tid = int(sorted_t[f])
            have = acc.samples.setdefault(tid, [])
            k = f
            while len(have) < self.sample_lines and k < len(order) and sorted_t[k] == tid:
                have.append(sample_text(int(sel[order[k]])))
                k += 1

    def close(self, final: bool = False) -> list[WindowFrame]:
        """Windows the watermark has passed (all open ones when final), gaps included."""
        if self.next_start is None and not self.open:
            return []
        if final:
            if not self.open:
                return []
            limit = max(self.open) + self.w
        else:
            limit = self.limit
        frames = []
        s = self.next_start if self.next_start is not None else min(self.open)
        while s + self.w <= limit:
            acc = self.open.pop(s, None)
            if acc is None:
                z = np.zeros(0, np.int64)
                frames.append(WindowFrame(s, s + self.w, z, z, z, z, {}))
            else:
                frames.append(WindowFrame(s, s + self.w, acc.template_counts,
                                          acc.template_errors, acc.lines, acc.errors,
                                          acc.samples))
            s += self.w
        if frames:
            self.next_start = s
        return frames

    # state is plain data: the pipeline snapshots it with everything else
    def state(self) -> dict:
        return {"w": self.w, "lateness": self.lateness, "idle": self.idle,
                "watermark": self.watermark, "marks": self.marks, "limit": self.limit,
                "next_start": self.next_start, "open": self.open, "late": self.late,
                "sample_lines": self.sample_lines}

    @classmethod
    def from_state(cls, state: dict) -> "Windower":
        win = cls(1, 0, state["sample_lines"])
        win.w, win.lateness, win.idle = state["w"], state["lateness"], state["idle"]
        win.watermark, win.next_start = state["watermark"], state["next_start"]
        win.marks, win.limit = state["marks"], state["limit"]
        win.open, win.late = state["open"], state["late"]
        return win
