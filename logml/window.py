"""Window stage: event-time tumbling windows, one robust clock per service.

Windows are aligned to multiples of the window length. Each service has its own clock, so
a service whose host clock runs an hour ahead of another never makes the other's lines
late, and one event with a wrong time never moves anyone's clock:

* **Robust clock.** A service's clock is the ``quorum``-th largest of its last
  ``HISTORY`` event times, so fewer than ``quorum`` outliers among them cannot move it.
  Its windows close ``lateness`` after the clock has passed their end; a record whose
  window has closed is ``late``.
* **Outliers.** An event more than ``ahead`` (plus ``quorum`` times the service's
  cadence, which its clock trails its newest event by) from its service's clock is not
  counted right away: if it is ahead, it is held until the clock (or the stream) reaches
  it (then it is counted) or until ``HISTORY`` more events of the service came first
  (then it is dead-lettered ``absurd_timestamp``); if it is that far behind, it is
  dead-lettered ``absurd_timestamp`` at once. A service's first clock is the median of
  its first ``2 quorum - 1`` events, which are held until then and judged by it, so a
  stray first line is not believed; at the end of input, a service too quiet to form a
  clock has its held events counted (they are all it said).
* **Silence.** The stream's own progress is measured on every service's clock relative
  to where it started (so clock offsets between services cancel out). A service that lags
  that progress by more than ``idle`` is silent: its clock moves on with the stream, so
  its windows close with zero counts and a drop shows. In live mode, wall time moves the
  stream on as well (``tick``), so windows close as time passes, once event times have
  agreed with the wall clock (a backlog replayed through a pipe is not live).
* **Gaps cost nothing.** After ``max_gap`` empty windows in a row a service's windows jump
  to its next data; the first window after the jump is flagged ``gap``. Memory and time
  follow the data, never the distance between timestamps.
* **Lines without a time** take their service's current clock (replay), or arrival time
  when the source is live (and arrival time agrees with the service's clock). The first
  lines of a replay, before any time is known, take the next time of their batch.

Everything that decides a record's fate runs record by record in one numba kernel, so the
result never depends on how the input was cut into batches (but for timeless first lines
of a replay, which look ahead within their batch).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numba as nb
import numpy as np

HISTORY = 32  # recent event times per service the robust clock looks at
_DENSE_SLACK = 4096  # a batch's keys spanning up to 4 n + this are counted by bincount
ACCEPT, LATE, HELD, ABSURD = 0, 1, 2, 3
_WHOLE_S = 1.0  # a window the input ends within this of its end counts as whole
_P, _LAST, _SEQ = 0, 1, 2  # slots of the kernel's global state


@nb.njit(cache=True, inline="always")
def _top_insert(top, k, v):
    """Put v into top[:k] (descending) when it is larger than the smallest kept."""
    if v > top[k - 1]:
        p = k - 1
        while p > 0 and top[p - 1] < v:
            top[p] = top[p - 1]
            p -= 1
        top[p] = v


@nb.njit(cache=True, inline="always")
def _top_fill(row, n, top):
    """``top`` = the len(top) largest of row[:n], descending, -inf padded."""
    k = top.shape[0]
    for j in range(k):
        top[j] = -np.inf
    for j in range(n):
        _top_insert(top, k, row[j])


@nb.njit(cache=True)
def cadence(row, n):
    """A service's typical time between events: the (lower) median gap between its recent
    event times, sorted. A stray time makes one or two gaps large, which the median
    ignores."""
    if n < 2:
        return 0.0
    x = np.sort(row[:n])
    return float(np.sort(x[1:] - x[:-1])[(n - 2) // 2])


def cadence_reference(row, n):
    """Numpy reference of ``cadence``."""
    if n < 2:
        return 0.0
    gaps = np.diff(np.sort(np.asarray(row[:n], np.float64)))
    return float(np.sort(gaps)[(n - 2) // 2])


@nb.njit(cache=True)
def top_of(ring, ring_n, top):
    """Every service's ``top`` row from its ring (the clock kernel keeps them up to date
    record by record; they are derived data, rebuilt after a restore)."""
    H = ring.shape[1]
    for s in range(ring.shape[0]):
        _top_fill(ring[s], min(ring_n[s], H), top[s])


def kth_largest_reference(ring, ring_n, quorum):
    """Numpy reference of a service's clock: the quorum-th largest of its ring (-inf with
    fewer than quorum times)."""
    n = min(int(ring_n), ring.shape[0])
    return -np.inf if n < quorum else float(np.sort(ring[:n])[::-1][quorum - 1])


@nb.njit(cache=True)
def clock_step(ts, service, live, now, ring, ring_n, top, est, anchor, limit, p_last,
               held_ts, held_seq, held_age, held_n, glob, w, lateness, ahead, idle, quorum,
               cap, out_ts, out_open, status, rel_seq, rel_status, jump_from):
    """Decide every record's fate, in order; all state arrays are updated in place.

    Per service s: ``ring[s]`` its recent event times (``ring_n[s]`` ever inserted),
    ``top[s]`` the ``quorum`` largest of them (descending), ``est[s]`` its robust clock
    (-inf until ``quorum`` times were seen), ``anchor[s]`` the offset that maps its clock
    onto the stream's progress ``glob[_P]``, ``limit[s]`` the start of its first window
    still open (never moves back), ``p_last[s]`` the progress at its last record; held
    records (ts, sequence number, age in records of the service). ``glob`` = [progress,
    last event time, next seq]. Writes ``out_ts`` (NaN filled), ``out_open`` (the start of
    the record's service's first window still open after it) and ``status``; held
    records resolved now go to ``rel_seq``/``rel_status``; returns how many. A service
    whose clock jumped ahead of the stream gets its clock before the jump in
    ``jump_from`` (NaN for the others).
    """
    n = ts.shape[0]
    H = ring.shape[1]
    n_rel = 0
    nxt = 0  # index of the batch's next record with a time (timeless first lines)
    for i in range(n):
        s = service[i]
        seq = glob[_SEQ]
        glob[_SEQ] = seq + 1
        e = est[s]
        # a silent service's clock moves on with the stream
        eff = e
        if e > -np.inf:
            adv = glob[_P] - (e - anchor[s]) - idle
            if adv > 0:  # else limit[s] already holds est[s]'s limit (set below)
                eff = e + adv
                lim = np.floor((eff - lateness) / w) * w
                if lim > limit[s]:
                    limit[s] = lim
        t = ts[i]
        observed = True
        if np.isnan(t):
            if live and (e == -np.inf or abs(now - e) <= ahead):
                t = now  # arrival time, unless it disagrees with the service's clock
            elif e > -np.inf:
                t = eff
                observed = False
            elif ring_n[s] > 0:
                t = ring[s, 0]
                for j in range(1, min(ring_n[s], H)):
                    if ring[s, j] > t:
                        t = ring[s, j]
                observed = False
            elif glob[_LAST] > -np.inf:
                t = glob[_LAST]
                observed = False
            else:  # nothing known yet: the next time of the batch, not today's date
                if nxt <= i:  # the cursor only moves on: a long timeless run stays O(n)
                    nxt = i + 1
                    while nxt < n and np.isnan(ts[nxt]):
                        nxt += 1
                t = now
                if nxt < n:
                    t = ts[nxt]
                    observed = False
        out_ts[i] = t
        if observed:
            slot = ring_n[s] % H
            old = ring[s, slot]
            ring[s, slot] = t
            ring_n[s] += 1
            glob[_LAST] = t
            q = top[s]
            if ring_n[s] > H and old >= q[quorum - 1]:
                _top_fill(ring[s], H, q)  # the time that left may have been among the top
            else:
                _top_insert(q, quorum, t)
            # the first clock needs 2 quorum - 1 times, so that it is their median and
            # neither quorum - 1 strays ahead nor as many behind can set it
            if ring_n[s] >= 2 * quorum - 1 or (e > -np.inf and ring_n[s] >= quorum):
                e = q[quorum - 1]
        moved = e > est[s]
        formed = est[s] == -np.inf and e > -np.inf
        if e != est[s]:
            if est[s] == -np.inf:
                anchor[s] = e - glob[_P]
            elif e < est[s]:
                # a quorum of its recent times agree on an earlier one: the clock stepped
                # back (a DST change in local time, an NTP step). Its place in the stream
                # stays where it was, so it is not taken for silent while its times
                # catch up (its windows then closed with zeros and every later line was
                # late, for good)
                anchor[s] += e - est[s]
            else:
                # a confirmed jump moves the stream by one window only; the stream's own
                # progress while the service was silent is no jump
                allowed = cap + max(glob[_P] - (est[s] - anchor[s]), 0.0)
                if e - est[s] > allowed:
                    anchor[s] += e - est[s] - allowed
                    if np.isnan(jump_from[s]):
                        jump_from[s] = est[s]
            est[s] = e
            norm = e - anchor[s]
            if norm > glob[_P]:
                glob[_P] = norm
        p_last[s] = glob[_P]
        # how far from its clock a time may be: ``ahead`` either side, and ahead of where
        # the stream is (a silent service's clock moves on with it); both widened by
        # quorum times the service's cadence, since its clock (the quorum-th largest
        # time) trails its newest event by about that much: a sparse service's next line
        # is no outlier. The cadence costs a sort, so it is only looked at when needed.
        lo = e - ahead
        hi = max(e, eff) + ahead
        if e > -np.inf and (formed or held_n[s] > 0 or (observed and not lo <= t <= hi)):
            slack = quorum * cadence(ring[s], min(ring_n[s], H))
            lo -= slack
            hi += slack
        if e > -np.inf:
            lim = np.floor((e - lateness) / w) * w
            if formed:  # the events held for the clock are not late by it
                for j in range(held_n[s]):
                    ht = held_ts[s, j]
                    if lo <= ht <= hi:
                        lim = min(lim, np.floor(ht / w) * w)
            if lim > limit[s]:
                limit[s] = lim
        # this record; before its service has a clock, a timed record waits for one
        # (replayed; live, unless it agrees with the arrival time): a stray first line is
        # judged when the clock forms, not believed
        unjudged = e == -np.inf and observed and (not live or abs(t - now) > ahead)
        if unjudged or (e > -np.inf and t > hi):
            if held_n[s] == H:  # full: the oldest held record is an outlier
                rel_seq[n_rel] = held_seq[s, 0]
                rel_status[n_rel] = ABSURD
                n_rel += 1
                for j in range(1, H):
                    held_ts[s, j - 1] = held_ts[s, j]
                    held_seq[s, j - 1] = held_seq[s, j]
                    held_age[s, j - 1] = held_age[s, j]
                held_n[s] -= 1
            k = held_n[s]
            held_ts[s, k] = t
            held_seq[s, k] = seq
            held_age[s, k] = ring_n[s]
            held_n[s] = k + 1
            status[i] = HELD
        elif e > -np.inf and t < lo:
            status[i] = ABSURD
        elif np.floor(t / w) * w < limit[s]:
            status[i] = LATE
        else:
            status[i] = ACCEPT
        out_open[i] = limit[s]
        # held records: counted once the clock (or the stream) reaches them, outliers once
        # they are old
        if held_n[s] > 0 and e > -np.inf and (moved or observed):
            k = 0
            for j in range(held_n[s]):
                ht = held_ts[s, j]
                if lo <= ht <= hi:
                    rel_seq[n_rel] = held_seq[s, j]
                    rel_status[n_rel] = LATE if np.floor(ht / w) * w < limit[s] else ACCEPT
                    n_rel += 1
                elif (moved and ht < lo) or ring_n[s] - held_age[s, j] > H:
                    rel_seq[n_rel] = held_seq[s, j]
                    rel_status[n_rel] = ABSURD
                    n_rel += 1
                else:
                    held_ts[s, k] = ht
                    held_seq[s, k] = held_seq[s, j]
                    held_age[s, k] = held_age[s, j]
                    k += 1
            held_n[s] = k
    return n_rel


@nb.njit(nb.int64[:](nb.int64[:], nb.int64, nb.int64), cache=True)
def first_k(pair, n_pairs, k):
    """Positions (in order) of the records among the first k of their pair id."""
    seen = np.zeros(n_pairs, np.int32)
    out = np.empty(pair.shape[0], np.int64)
    m = 0
    for i in range(pair.shape[0]):
        p = pair[i]
        c = seen[p]
        if c < k:
            out[m] = i
            m += 1
            seen[p] = c + 1
    return out[:m]


def first_k_reference(pair, k):
    """Numpy reference of ``first_k``: rank of each record within its pair < k."""
    order = np.argsort(pair, kind="stable")
    sp = pair[order]
    start = np.flatnonzero(np.r_[True, sp[1:] != sp[:-1]])
    rank = np.arange(len(sp)) - np.repeat(start, np.diff(np.r_[start, len(sp)]))
    return np.sort(order[rank < k])


def _dense_ids(key: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(id per record, distinct keys ascending, records per key): as np.unique with
    inverse and counts, by one bincount when the keys span a small range."""
    lo = int(key.min())
    span = int(key.max()) - lo + 1
    if span > 4 * n + _DENSE_SLACK:
        keys, ids, counts = np.unique(key, return_inverse=True, return_counts=True)
        return ids.reshape(-1), keys, counts
    off = key - lo
    counts = np.bincount(off, minlength=span)
    present = np.flatnonzero(counts)
    remap = np.empty(span, np.int64)
    remap[present] = np.arange(len(present))
    return remap[off], present + lo, counts[present]


@dataclass
class WindowFrame:
    """Counts of one closed window for the services in ``services`` (all when None).

    Arrays are indexed by global template index and service index; entries of services
    not in the frame are 0 and must not be scored. ``gap[k]`` says that services[k]
    jumped over a long silence just before this window."""
    start: float
    end: float
    template_counts: np.ndarray  # int64 [n_templates]
    template_errors: np.ndarray  # int64 [n_templates]
    lines: np.ndarray  # int64 [n_services]
    errors: np.ndarray  # int64 [n_services]
    samples: dict[int, list[str]] = field(default_factory=dict)  # template -> sample lines
    services: np.ndarray | None = None  # int32 services closing this window
    gap: np.ndarray | None = None  # bool, aligned with services
    # share of the window the input covered, aligned with services: below 1 only for the
    # window a finite input ends in, when it ends inside it (None: every window whole)
    covered: np.ndarray | None = None

    def only(self, keep: np.ndarray) -> "WindowFrame":
        """This window for the services where ``keep`` (aligned with services) is set."""
        pick = lambda a: None if a is None else a[keep]  # noqa: E731
        return dataclasses.replace(self, services=self.services[keep], gap=pick(self.gap),
                                   covered=pick(self.covered))

    @property
    def error_ratio(self) -> np.ndarray:
        return np.divide(self.errors, self.lines, out=np.zeros(len(self.lines)),
                         where=self.lines > 0)


@dataclass
class _Open:
    """One service's counts in one open window; templates by the service's local index."""
    counts: np.ndarray
    errors: np.ndarray
    lines: int = 0
    error_lines: int = 0
    samples: dict[int, list[str]] = field(default_factory=dict)


def _grow(a: np.ndarray, n: int) -> np.ndarray:
    if len(a) >= n:
        return a
    out = np.zeros(max(n, 2 * len(a)), dtype=a.dtype)
    out[: len(a)] = a
    return out


@dataclass
class Outcome:
    """What the window stage decided about a batch (positions into the batch), and about
    records held from earlier batches (their payloads, as given to ``add``)."""
    ts: np.ndarray  # event time used for each record (lines without a time filled in)
    # per record, the start of its service's first window still open after it: a window
    # before it cannot change any more, wherever the batch ends
    open_from: np.ndarray
    late: np.ndarray
    absurd: np.ndarray
    held: np.ndarray
    resolved_late: list = field(default_factory=list)
    resolved_absurd: list = field(default_factory=list)


class Windower:
    """Accumulates batches into each service's open windows and hands back closed ones."""

    def __init__(self, seconds: int = 60, lateness_windows: int = 2, sample_lines: int = 3,
                 idle_windows: int = 3, max_gap_windows: int = 10, quorum: int = 5,
                 max_ahead_windows: int = 60):
        if not 1 <= quorum <= HISTORY // 2:
            raise ValueError(f"quorum must be in 1..{HISTORY // 2}")
        self.w = float(seconds)
        self.lateness = lateness_windows * self.w
        self.idle = idle_windows * self.w
        self.ahead = max(max_ahead_windows, lateness_windows + 1) * self.w
        self.max_gap = max(int(max_gap_windows), 1)
        self.quorum = int(quorum)
        self.sample_lines = sample_lines
        self.glob = np.array([0.0, -np.inf, 0.0])
        self._resize_services(0)
        self.local = np.zeros(0, np.int32)  # global template -> index within its service
        self.members: list[list[int]] = []  # per service: its global template indices
        self._members_np: dict[int, np.ndarray] = {}  # derived: members as arrays
        self.open: list[dict[float, _Open]] = []
        self.next_start: list[float | None] = []
        self.gap_pending: list[bool] = []
        self.empty_run: list[int] = []
        # live: the windows a service's clock jumped over, ahead of wall time (local time
        # at the start of daylight saving time), [first, last + 1): skipped, not zeros
        self.jump_at: list[list[float] | None] = []
        self.held: dict[int, tuple] = {}  # seq -> (ts, template, service, error, text, payload)
        self.late = 0
        self.wall = None  # (wall time, progress) anchor of live mode

    # ---------------------------------------------------------------- services, templates
    def _resize_services(self, n: int) -> None:
        old = getattr(self, "est", np.zeros(0))
        k = len(old)
        if k >= n and k:
            return

        def grow(a, fill, shape=()):
            out = np.full((n, *shape), fill, dtype=a.dtype if k else type(fill))
            out[:k] = a
            return out
        if k == 0:
            z = np.zeros(0)
            self.ring, self.held_ts = np.zeros((0, HISTORY)), np.zeros((0, HISTORY))
            self.ring_n = self.held_n = np.zeros(0, np.int64)
            self.held_seq = self.held_age = np.zeros((0, HISTORY), np.int64)
            self.est = self.anchor = self.limit = self.p_last = z
            self.top = np.zeros((0, self.quorum))
        self.ring = grow(self.ring, 0.0, (HISTORY,))
        self.top = grow(self.top, -np.inf, (self.quorum,))
        self.ring_n = grow(self.ring_n, np.int64(0))
        self.est = grow(self.est, -np.inf)
        self.anchor = grow(self.anchor, 0.0)
        self.limit = grow(self.limit, -np.inf)
        self.p_last = grow(self.p_last, 0.0)
        self.held_ts = grow(self.held_ts, 0.0, (HISTORY,))
        self.held_seq = grow(self.held_seq, np.int64(0), (HISTORY,))
        self.held_age = grow(self.held_age, np.int64(0), (HISTORY,))
        self.held_n = grow(self.held_n, np.int64(0))

    def _sync(self, template_service: np.ndarray, n_services: int) -> None:
        self._resize_services(n_services)
        while len(self.open) < n_services:
            self.open.append({})
            self.next_start.append(None)
            self.gap_pending.append(False)
            self.empty_run.append(0)
            self.jump_at.append(None)
            self.members.append([])
        known = len(self.local)
        if len(template_service) > known:
            new = np.asarray(template_service[known:], dtype=np.int64)
            local = np.empty(len(new), np.int32)
            for k, s in enumerate(new.tolist()):
                local[k] = len(self.members[s])
                self.members[s].append(known + k)
            self.local = np.concatenate((self.local, local))

    # ---------------------------------------------------------------- input
    def add(self, ts: np.ndarray, template: np.ndarray, service: np.ndarray,
            is_error: np.ndarray, template_service: np.ndarray, n_services: int,
            sample_text=None, payload=None, live: bool = False,
            now: float | None = None) -> Outcome:
        """Count a batch. ``template_service[t]`` is the service of global template t;
        ``sample_text(i)`` gives record i's text (called for at most ``sample_lines``
        records per template and window); ``payload(i)`` is kept with a held record and
        handed back if it is resolved late or absurd."""
        n = len(ts)
        self._sync(template_service, n_services)
        if n == 0:
            return Outcome(np.zeros(0), np.zeros(0), *(np.zeros(0, np.int64) for _ in range(3)))
        import time
        now = time.time() if now is None else now
        out_ts = np.empty(n)
        out_open = np.empty(n)
        status = np.empty(n, np.int8)
        rel_seq = np.empty(n + HISTORY * n_services, np.int64)
        rel_status = np.empty(len(rel_seq), np.int8)
        first_seq = int(self.glob[_SEQ])
        jump_from = np.full(len(self.est), np.nan)
        n_rel = clock_step(np.asarray(ts, np.float64), np.asarray(service, np.int32), live,
                           now, self.ring, self.ring_n, self.top, self.est, self.anchor,
                           self.limit, self.p_last, self.held_ts, self.held_seq,
                           self.held_age, self.held_n, self.glob, self.w, self.lateness,
                           self.ahead, self.idle, self.quorum, self.w, out_ts, out_open, status,
                           rel_seq, rel_status, jump_from)
        if self.wall is not None:  # live: a jump ahead of wall time is the clock's, no silence
            for s in np.flatnonzero(~np.isnan(jump_from)).tolist():
                self.jump_at[s] = [float(np.floor(jump_from[s] / self.w) * self.w + self.w),
                                   float(np.floor(self.est[s] / self.w) * self.w)]
        held = np.flatnonzero(status == HELD)
        for i in held.tolist():
            self.held[first_seq + i] = (
                float(out_ts[i]), int(template[i]), int(service[i]), bool(is_error[i]),
                sample_text(i) if sample_text else "", payload(i) if payload else None)
        late = np.flatnonzero(status == LATE)
        self.late += len(late)
        outcome = Outcome(out_ts, out_open, late, np.flatnonzero(status == ABSURD), held)
        ok = np.flatnonzero(status == ACCEPT)
        self._count(out_ts[ok], template[ok], service[ok], is_error[ok], ok, sample_text)
        confirmed = []
        for seq, st in zip(rel_seq[:n_rel].tolist(), rel_status[:n_rel].tolist()):
            rec = self.held.pop(seq)
            if st == ACCEPT:
                confirmed.append(rec)
            elif st == LATE:
                self.late += 1
                outcome.resolved_late.append(rec[5])
            else:
                outcome.resolved_absurd.append(rec[5])
        self._count_held(confirmed)
        return outcome

    def _count_held(self, recs: list) -> None:
        """Count held records (ts, template, service, error, text, payload), in one batch
        (at the end of an input of many quiet services, all its records may be held)."""
        for texts in (True, False):  # records kept with a sample text, and without
            part = [r for r in recs if bool(r[4]) == texts]
            if part:
                cols = list(zip(*part))
                self._count(np.array(cols[0], np.float64), np.array(cols[1], np.int64),
                            np.array(cols[2], np.int64), np.array(cols[3], bool),
                            np.arange(len(part)), cols[4].__getitem__ if texts else None)

    def _count(self, ts, template, service, is_error, pos, sample_text) -> None:
        """Add records to their services' open windows: one bincount over (window, service,
        template) for the whole batch, then one step per window and service touched."""
        n = len(ts)
        if n == 0:
            return
        n_s, n_t = len(self.open), len(self.local)
        wi = np.floor(ts / self.w).astype(np.int64)
        gid, keys, glines = _dense_ids(wi * n_s + service, n)
        n_g = len(keys)
        gerr = np.bincount(gid[is_error], minlength=n_g).tolist()
        pair = gid * n_t + template
        if n_g * n_t <= 4 * n + 16 * _DENSE_SLACK:  # small: counts per (group, global template)
            n_pairs = n_g * n_t
            tc = np.bincount(pair, minlength=n_pairs).reshape(n_g, n_t)
            te = np.bincount(pair[is_error], minlength=n_pairs).reshape(n_g, n_t)
        else:  # groups spread far: only the (group, template) pairs present
            upair, pair, pc = np.unique(pair, return_inverse=True, return_counts=True)
            n_pairs = len(upair)
            pe = np.bincount(pair[is_error], minlength=n_pairs)
            cut = np.searchsorted(upair, np.arange(n_g + 1) * n_t)
            ploc = self.local[upair % n_t]
        accs = []
        for g, (key, lines) in enumerate(zip(keys.tolist(), glines.tolist())):
            w_idx, s = divmod(key, n_s)
            start = float(w_idx) * self.w
            n_local = len(self.members[s])
            acc = self.open[s].get(start)
            if acc is None:
                acc = self.open[s][start] = _Open(np.zeros(n_local, np.int64),
                                                  np.zeros(n_local, np.int64))
            elif len(acc.counts) < n_local:
                acc.counts = _grow(acc.counts, n_local)
                acc.errors = _grow(acc.errors, n_local)
            if n_pairs == n_g * n_t:
                members = self._members_of(s)
                acc.counts[:n_local] += tc[g, members]
                acc.errors[:n_local] += te[g, members]
            else:
                a, b = cut[g], cut[g + 1]
                acc.counts[ploc[a:b]] += pc[a:b]
                acc.errors[ploc[a:b]] += pe[a:b]
            acc.lines += lines
            acc.error_lines += gerr[g]
            accs.append(acc)
        if sample_text is not None and self.sample_lines > 0:
            self._sample(pair, n_pairs, gid, template, pos, accs, sample_text)

    def _sample(self, pair, n_pairs, gid, template, pos, accs, sample_text) -> None:
        """Up to ``sample_lines`` lines per template and window, the first ones to come;
        the kernel picks each (window, template) pair's first lines of the batch."""
        k_max = self.sample_lines
        picks = first_k(pair, n_pairs, k_max)
        picks = picks[np.argsort(pair[picks], kind="stable")]  # by window, then template
        p_sorted = pair[picks]
        firsts = np.flatnonzero(np.r_[True, p_sorted[1:] != p_sorted[:-1]])
        ends = np.r_[firsts[1:], len(picks)].tolist()
        firsts = firsts.tolist()
        at = picks[firsts]
        pos_p = pos[picks].tolist()
        for f, e, g, tid in zip(firsts, ends, gid[at].tolist(), template[at].tolist()):
            samples = accs[g].samples
            have = samples.get(tid)
            if have is None:
                samples[tid] = [sample_text(i) for i in pos_p[f:e]]
            elif len(have) < k_max:
                have.extend(sample_text(i) for i in pos_p[f:min(e, f + k_max - len(have))])

    def _members_of(self, s: int) -> np.ndarray:
        """Service s's global template indices in local order, as an array (cached)."""
        m = self.members[s]
        got = self._members_np.get(s)
        if got is None or len(got) != len(m):
            got = self._members_np[s] = np.asarray(m, np.int64)
        return got

    # ---------------------------------------------------------------- time passing
    def tick(self, now: float) -> None:
        """Live mode: wall time moves the stream on, so silent services' windows close;
        from when a service's clock first agrees with it (within ``idle`` + ``lateness``:
        the time it takes to call a service silent): a backlog replayed through a pipe or
        from a caught-up Kafka partition, even one twenty minutes old, is moved on by its
        own times, so a stall in its delivery is no silence (within ``ahead``, a 10-minute
        stall of a 20-minute-old backlog made its lines late)."""
        p = float(self.glob[_P])
        agree = self.idle + self.lateness
        if self.wall is None and not np.any(np.abs(self.est - now) <= agree):
            return
        if self.wall is None or p > self.wall[1] + (now - self.wall[0]):
            self.wall = (now, p)
        self.glob[_P] = max(p, self.wall[1] + (now - self.wall[0]))

    def _advance_idle(self) -> None:
        """Apply the stream's progress to every service's close limit (as the kernel does
        lazily when a service's next record comes)."""
        k = np.flatnonzero(self.est > -np.inf)
        est = self.est[k]
        adv = np.maximum(self.glob[_P] - (est - self.anchor[k]) - self.idle, 0.0)
        lim = np.floor((est + adv - self.lateness) / self.w) * self.w
        self.limit[k] = np.maximum(self.limit[k], lim)

    def close(self, final: bool = False, template_service: np.ndarray | None = None
              ) -> list[WindowFrame]:
        """Windows whose service's clock has passed them (all open ones when final),
        silences included up to ``max_gap`` windows."""
        self._advance_idle()
        closed: dict[float, list] = {}
        for s, windows in enumerate(self.open):
            if final:
                if not windows:
                    continue
                limit = max(windows) + self.w
            else:
                limit = float(self.limit[s])
            nxt = self.next_start[s]
            if nxt is None:  # nothing closed yet: start at the earliest window
                if not windows or min(windows) + self.w > limit:
                    continue
                nxt = min(windows)
            run = self.empty_run[s]  # empty windows in a row, across calls
            while nxt + self.w <= limit:
                acc = windows.pop(nxt, None)
                jump = self.jump_at[s]
                if jump is not None and nxt >= jump[1]:
                    jump = self.jump_at[s] = None
                if acc is None:
                    run += 1
                    over = jump is not None and nxt >= jump[0]
                    if over or run > self.max_gap:
                        # over the jump of a clock, or a long silence: no more empty windows
                        self.jump_at[s] = None
                        ahead = [k for k in windows if k > nxt]
                        nxt = (float(min(ahead + [jump[1]])) if over
                               else float(min(min(ahead) if ahead else limit, limit)))
                        self.gap_pending[s] = True
                        continue
                else:
                    run = 0
                closed.setdefault(nxt, []).append((s, acc, self.gap_pending[s]))
                self.gap_pending[s] = False
                nxt += self.w
            self.empty_run[s] = run
            self.next_start[s] = nxt
            if nxt > self.limit[s]:  # closed at the end: a record for them now is late
                self.limit[s] = nxt
        return [self._frame(start, closed[start], template_service)
                for start in sorted(closed)]

    def _frame(self, start: float, parts: list, template_service) -> WindowFrame:
        n_t = len(self.local)
        n_s = len(self.open)
        counts, errors = np.zeros(n_t, np.int64), np.zeros(n_t, np.int64)
        lines, err_lines = np.zeros(n_s, np.int64), np.zeros(n_s, np.int64)
        samples: dict[int, list[str]] = {}
        for s, acc, _ in parts:
            if acc is None:
                continue
            members = np.asarray(self.members[s], np.int64)
            k = min(len(members), len(acc.counts))
            counts[members[:k]] = acc.counts[:k]
            errors[members[:k]] = acc.errors[:k]
            lines[s], err_lines[s] = acc.lines, acc.error_lines
            samples.update(acc.samples)
        services = np.array([p[0] for p in parts], np.int32)
        gap = np.array([p[2] for p in parts], bool)
        return WindowFrame(start, start + self.w, counts, errors, lines, err_lines, samples,
                           services, gap)

    def finish(self) -> tuple[list[WindowFrame], list, list]:
        """End of input: every open window closes. Held records were never confirmed, so
        they are outliers, except those of a service too quiet to form a clock: they are
        all it said, counted (or late, for a window a run before closed). Returns the
        frames and the payloads of the records to dead-letter late and absurd."""
        newest = self._newest_unheld()
        late, absurd, quiet = [], [], []
        for rec in self.held.values():
            t, svc, payload = rec[0], rec[2], rec[5]
            if self.est[svc] > -np.inf:
                absurd.append(payload)
            elif np.floor(t / self.w) * self.w < self.limit[svc]:
                late.append(payload)
            else:
                quiet.append(rec)
        self._count_held(quiet)
        self.late += len(late)
        self.held.clear()
        self.held_n[:] = 0
        # where the input ends, on each service's clock: the latest time of any service
        # with a clock, moved by its offset; a window past it was cut short (a service
        # without a clock has no offset: its windows count as whole)
        known = self.est > -np.inf
        end = np.full(len(self.est), np.inf)
        last = newest[known] - self.anchor[known]
        if np.isfinite(last).any():
            end[known] = np.max(last[np.isfinite(last)]) + self.anchor[known]
        frames = self.close(final=True)
        for f in frames:
            cov = np.clip((end[f.services] - f.start) / self.w, 0.0, 1.0)
            cov[cov >= 1.0 - _WHOLE_S / self.w] = 1.0
            if (cov < 1.0).any():
                f.covered = cov
        return frames, late, absurd

    def _newest_unheld(self) -> np.ndarray:
        """Each service's latest time that was not held: a stray held far ahead is no
        sign of where the input ends (taken for it, the window the input ends in was
        judged as whole: a drop)."""
        newest = self.top[:, 0].copy()
        for s in np.flatnonzero(self.held_n > 0).tolist():
            times = self.ring[s, :min(int(self.ring_n[s]), HISTORY)]
            times = times[~np.isin(times, self.held_ts[s, :self.held_n[s]])]
            newest[s] = times.max() if len(times) else -np.inf
        return newest

    # ---------------------------------------------------------------- state (plain data)
    def state(self) -> dict:
        services = []
        for s, windows in enumerate(self.open):
            services.append({
                "next_start": self.next_start[s], "gap": self.gap_pending[s],
                "empty_run": self.empty_run[s],
                "windows": [{"start": start, "counts": acc.counts, "errors": acc.errors,
                             "lines": acc.lines, "error_lines": acc.error_lines,
                             "samples": {str(k): v for k, v in acc.samples.items()}}
                            for start, acc in sorted(windows.items())]})
            if self.jump_at[s] is not None:  # rare and short-lived: only when there is one
                services[-1]["jump_at"] = self.jump_at[s]
        return {
            "seconds": self.w, "glob": self.glob, "ring": self.ring, "ring_n": self.ring_n,
            "est": self.est, "anchor": self.anchor, "limit": self.limit,
            "p_last": self.p_last, "held_ts": self.held_ts, "held_seq": self.held_seq,
            "held_age": self.held_age, "held_n": self.held_n, "late": self.late,
            "local": self.local, "members": [list(m) for m in self.members],
            "services": services,
            "held": [{"seq": seq, "ts": r[0], "template": r[1], "service": r[2],
                      "error": r[3], "text": r[4], "payload": r[5]}
                     for seq, r in sorted(self.held.items())],
        }

    @classmethod
    def from_state(cls, state: dict, **params) -> "Windower":
        """Rebuild from ``state`` with the current settings (``params`` as for the
        constructor); the window length is the one thing that cannot change."""
        win = cls(**params)
        if float(state["seconds"]) != win.w:
            raise ValueError(f"window.seconds: the state holds {state['seconds']:g} s "
                             f"windows, the pipeline file says {win.w:g} s")
        for key in ("glob", "ring", "ring_n", "est", "anchor", "limit", "p_last", "held_ts",
                    "held_seq", "held_age", "held_n", "local"):
            setattr(win, key, np.array(state[key]))
        win.top = np.empty((len(win.ring), win.quorum))  # derived: not part of the state
        top_of(win.ring, win.ring_n, win.top)
        win.late = int(state["late"])
        win.members = [list(m) for m in state["members"]]
        for svc in state["services"]:
            win.next_start.append(svc["next_start"])
            win.gap_pending.append(bool(svc["gap"]))
            win.empty_run.append(int(svc["empty_run"]))
            win.jump_at.append(svc.get("jump_at"))
            win.open.append({float(w["start"]): _Open(
                np.array(w["counts"], np.int64), np.array(w["errors"], np.int64),
                int(w["lines"]), int(w["error_lines"]),
                {int(k): list(v) for k, v in w["samples"].items()})
                for w in svc["windows"]})
        # a state saved before final closes moved the limit has windows closed past it
        closed = np.array([np.nan if n is None else n for n in win.next_start], np.float64)
        win.limit = np.fmax(win.limit, closed) if len(closed) else win.limit
        win.held = {int(h["seq"]): (float(h["ts"]), int(h["template"]), int(h["service"]),
                                    bool(h["error"]), h["text"], h["payload"])
                    for h in state["held"]}
        return win
