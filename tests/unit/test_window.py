import numpy as np
from hypothesis import example, given, settings, strategies as st

from logml.window import HISTORY, Windower

T_SVC = np.array([0, 0, 1], np.int32)  # templates 0, 1 belong to service 0, template 2 to 1


def feed(win, ts, tmpl=None, svc=None, err=None, n_s=2, live=False, now=0.0):
    ts = np.asarray(ts, dtype=float)
    n = len(ts)
    svc = np.zeros(n, np.int32) if svc is None else np.asarray(svc, np.int32)
    if tmpl is None:
        tmpl = np.where(svc == 0, 0, 2).astype(np.int32)
    tmpl = np.asarray(tmpl, np.int32)
    err = np.zeros(n, bool) if err is None else np.asarray(err, bool)
    return win.add(ts, tmpl, svc, err, T_SVC, n_s, lambda i: f"line {i}",
                   lambda i: i, live=live, now=now)


def starts(frames, service=0):
    return [f.start for f in frames if service in f.services.tolist()]


def lines_of(frames, service=0):
    return {f.start: int(f.lines[service]) for f in frames if service in f.services.tolist()}


def test_tumbling_windows_close_after_lateness():
    win = Windower(60, lateness_windows=2, quorum=1)
    feed(win, [0, 10, 59, 60, 130])
    assert win.close() == []  # clock 130 - 120 = 10: nothing closed yet
    feed(win, [185])
    frames = win.close()
    assert [(f.start, f.end) for f in frames] == [(0, 60)]
    assert frames[0].lines.tolist() == [3, 0]
    frames, late, held = win.finish()
    assert [f.start for f in frames] == [60, 120, 180] and late == held == []


def test_gap_windows_are_emitted_with_zero_counts():
    win = Windower(60, lateness_windows=0, quorum=1)
    feed(win, [5, 301])
    frames = win.close()
    assert [f.start for f in frames] == [0, 60, 120, 180, 240]
    assert [int(f.lines.sum()) for f in frames] == [1, 0, 0, 0, 0]


def test_late_records_are_returned_not_dropped_silently():
    win = Windower(60, lateness_windows=1, quorum=1)
    feed(win, [0, 200])
    win.close()
    out = feed(win, [10, 199, 70])
    assert out.late.tolist() == [0, 2]  # windows [0,60) and [60,120) closed already
    assert win.late == 2


def test_a_stray_first_event_is_judged_when_the_clock_forms():
    """A service's first event far from the rest (a host clock not yet set, a replayed
    line) used to be counted where it claimed, opening a window hours off and a run of
    zero windows up to it (false drops); now it waits for the clock and is dead-lettered."""
    for stray in (9 * 3600.0, -9 * 3600.0):
        win = Windower(60, lateness_windows=1, quorum=3)
        ts = np.r_[stray, np.arange(0, 3600, 10.0)]
        out = feed(win, ts)
        frames = win.close() + win.finish()[0]
        assert 0 in (out.absurd.tolist() + out.resolved_absurd)
        assert starts(frames) == [60.0 * k for k in range(60)]
        assert sum(lines_of(frames).values()) == len(ts) - 1


def test_the_events_held_for_a_first_clock_are_not_late_by_it():
    """A sparse service's first nine events span 20 minutes; the clock they form (their
    median) is 10 minutes past the first: the first ones are counted, not late."""
    win = Windower(60, lateness_windows=2, quorum=5)
    out = feed(win, [150.0 * k for k in range(10)])
    assert len(out.late) == 0 and out.resolved_late == [] and not win.held
    frames = win.close() + win.finish()[0]
    assert sum(lines_of(frames).values()) == 10


def _sparse(gap, hours, seed=7):
    """A cron-like service: one line every ``gap`` seconds (+-20 %) for ``hours``."""
    rng = np.random.default_rng(seed)
    return np.cumsum(gap * rng.uniform(0.8, 1.2, int(hours * 3600 / gap))) + 1.7e9


def test_a_sparse_service_loses_no_line():
    """A service that logs every 20 minutes to every 3 hours, alone or beside a busy one:
    its clock (the 5th largest of its times) trails its newest line by hours, and every
    such line was more than max_ahead from it: the first ones dead-lettered absurd when the
    first clock formed, the last ones at the end of input, others late (a line every 90
    minutes: 13 of 18 lost). Far from the clock is now measured in the service's cadence."""
    for gap in (1200.0, 5400.0, 3 * 3600.0):
        sparse = _sparse(gap, 30)
        for busy in (False, True):
            ts = np.r_[sparse, np.arange(sparse[0], sparse[-1], 2.0)] if busy else sparse
            svc = np.r_[np.zeros(len(sparse)), np.ones(len(ts) - len(sparse))]
            order = np.argsort(ts, kind="stable")
            win = Windower(60, lateness_windows=2, quorum=5, max_ahead_windows=60)
            out = feed(win, ts[order], svc=svc[order])
            frames, late, absurd = win.finish()
            assert len(out.late) == len(out.absurd) == 0, (gap, busy)
            assert out.resolved_late == out.resolved_absurd == late == absurd == [], (gap, busy)
            assert sum(lines_of(win.close() + frames).values()) == len(sparse), (gap, busy)


def test_a_sparse_service_still_has_its_strays_caught():
    """The cadence widens how far from its clock a line may be by quorum lines' worth,
    not more: a line 9 hours off in a service that logs every 20 minutes, first or
    later, is still an outlier, and the other lines' windows are those without it."""
    sparse = _sparse(1200.0, 6)

    def run(ts):
        win = Windower(60, lateness_windows=2, quorum=5, max_ahead_windows=60)
        out = feed(win, ts)
        frames, late, absurd = win.finish()
        dead = out.absurd.tolist() + out.resolved_absurd + absurd + out.late.tolist()
        return lines_of(win.close() + frames), dead
    clean, _ = run(sparse)
    for pos in (0, 9):
        for sign in (1, -1):
            windows, dead = run(np.insert(sparse, pos, sparse[pos] + sign * 9 * 3600.0))
            assert dead == [pos] and windows == clean, (pos, sign)


def test_cadence_matches_reference():
    from logml.window import cadence, cadence_reference
    rng = np.random.default_rng(3)
    for n in range(0, 33):
        row = rng.exponential(600.0, 32).cumsum()
        rng.shuffle(row)
        row[rng.integers(0, 32)] += rng.choice([-1, 1]) * 9e4 * (n % 2)
        assert cadence(row, n) == cadence_reference(row, n)


def test_a_service_too_quiet_for_a_clock_is_counted_at_the_end():
    win = Windower(60, quorum=5)
    out = feed(win, [10.0, 20.0, 30.0, 40.0])
    assert out.held.tolist() == [0, 1, 2, 3] and len(out.absurd) == 0
    frames, late, absurd = win.finish()
    assert late == absurd == [] and lines_of(frames) == {0.0: 4}


def test_a_record_for_a_window_closed_at_the_end_is_late_after_a_restore():
    """The end of input closes every window; a later run from that state (a file that grew,
    the same lines piped again) must dead-letter a record for one of them, not count it
    into a window that is never emitted again (it was lost without a trace)."""
    win = Windower(60, lateness_windows=2, quorum=1)
    feed(win, [0, 10, 50])
    assert [f.start for f in win.finish()[0]] == [0]
    saved = win.state()
    for state in (saved, {**saved, "limit": np.full(2, -np.inf)}):  # also as saved before
        again = Windower.from_state(state, seconds=60, quorum=1)
        out = feed(again, [55, 65])
        assert out.late.tolist() == [0]
        assert [(f.start, int(f.lines[0])) for f in again.finish()[0]] == [(60, 1)]


def test_counts_per_template_service_and_errors():
    win = Windower(60, lateness_windows=0, idle_windows=0, quorum=1)
    feed(win, [1, 2, 3, 4, 70, 70], tmpl=[0, 1, 1, 2, 0, 2], svc=[0, 0, 0, 1, 0, 1],
         err=[False, True, True, False, False, False])
    (f,) = win.close()
    assert f.services.tolist() == [0, 1]
    assert f.template_counts.tolist() == [1, 2, 1]
    assert f.template_errors.tolist() == [0, 2, 0]
    assert f.lines.tolist() == [3, 1] and f.errors.tolist() == [2, 0]
    assert f.error_ratio.tolist() == [2 / 3, 0.0]
    assert f.samples[1] == ["line 1", "line 2"]


def test_services_have_independent_clocks():
    """A service whose clock runs an hour ahead makes nobody else late."""
    win = Windower(60, lateness_windows=1, quorum=3)
    t = np.arange(0, 600, 1.0)
    ts = np.empty(2 * len(t))
    ts[0::2], ts[1::2] = t + 3600, t  # service 0 an hour ahead of service 1
    svc = np.tile([0, 1], len(t))
    out = feed(win, ts, svc=svc)
    assert len(out.late) == 0 and len(out.absurd) == 0
    assert out.held.tolist() == list(range(8))  # each service's first four, until its
    assert not win.held  # clock formed with the fifth (2 quorum - 1): counted
    frames = win.close()
    assert sum(lines_of(frames, 1).values()) > 400  # service 1's own windows closed too
    frames += win.finish()[0]
    assert sum(lines_of(frames, 0).values()) == 600 == sum(lines_of(frames, 1).values())


def test_one_event_far_ahead_is_held_then_dead_lettered_absurd():
    win = Windower(60, lateness_windows=1, quorum=3, max_ahead_windows=60)
    base = np.arange(0, 300, 1.0)
    ts = np.r_[base[:100], 23 * 3600.0, base[100:]]
    out = feed(win, ts)
    assert len(out.late) == 0 and out.held.tolist() == [0, 1, 2, 3, 100]  # 0-3: no clock yet
    assert out.resolved_absurd == [100]  # held for HISTORY records, never confirmed
    frames = win.close() + win.finish()[0]
    assert sum(lines_of(frames).values()) == 300
    assert max(f.start for f in frames) < 300


def test_a_real_clock_jump_is_confirmed_and_loses_nothing():
    win = Windower(60, lateness_windows=1, quorum=3, max_ahead_windows=60, max_gap_windows=5)
    ts = np.r_[np.arange(0, 300, 1.0), np.arange(0, 300, 1.0) + 86400]
    out = feed(win, ts)
    assert len(out.late) == 0 and len(out.absurd) == 0 and out.resolved_absurd == []
    assert out.held.tolist() == [0, 1, 2, 3, 300, 301]  # until the quorum of 3 agreed
    frames = win.close() + win.finish()[0]
    assert sum(lines_of(frames).values()) == 600
    # the day of silence costs 5 empty windows, then a jump flagged as a gap
    assert len(frames) < 20
    jumped = [f for f in frames if f.gap.any()]
    assert len(jumped) == 1 and jumped[0].start == 86400


def test_a_far_gap_costs_bounded_windows_and_memory():
    """2000-01-01 then now: not one window per minute of the gap."""
    win = Windower(60, quorum=1, max_gap_windows=10)
    out = feed(win, [946684800.0, 1.8e9, 1.8e9 + 1, 1.8e9 + 2])
    frames = win.close() + win.finish()[0]
    assert len(frames) <= 10 + 6  # the old window, 10 empty ones, then the new data's
    assert sum(int(f.lines.sum()) for f in frames) + len(out.absurd) == 4


def test_lines_without_time_take_their_services_clock_when_replayed():
    win = Windower(60, lateness_windows=1, quorum=3)
    out = feed(win, [1000, 1001, 1002, 1003, 1004, np.nan, 1005], now=5e9)
    assert out.ts[5] == 1002  # the clock: 3rd largest of the recent times
    assert len(out.late) == 0


def test_lines_without_time_take_arrival_time_when_live():
    win = Windower(60, quorum=1)
    out = feed(win, [np.nan, np.nan], live=True, now=1e9)
    assert out.ts.tolist() == [1e9, 1e9]


def test_a_service_that_falls_silent_counts_zeros():
    win = Windower(60, lateness_windows=0, idle_windows=2, quorum=1)
    feed(win, [0, 10], svc=[0, 1])
    feed(win, [65, 130, 190, 250, 310], svc=[0, 0, 0, 0, 0])
    frames = win.close()
    assert lines_of(frames, 1) == {0: 1, 60: 0, 120: 0}  # silent while 0 moved on
    assert lines_of(frames, 0) == {0: 1, 60: 1, 120: 1, 180: 1, 240: 1}


def test_live_wall_time_closes_windows_without_new_lines():
    win = Windower(60, lateness_windows=1, idle_windows=1, quorum=1)
    feed(win, [1000.0], live=True, now=1000.0)
    assert win.close() == []
    win.tick(1000.0)
    win.tick(1300.0)
    assert [f.start for f in win.close()][:1] == [960.0]


def test_wall_time_does_not_move_a_backlog_replayed_through_a_pipe():
    """Lines six hours old through a pipe: a stall in their delivery is no silence (wall
    time moved the stream on: every service dropped to zero, the lines after the stall
    were late)."""
    win = Windower(60, lateness_windows=1, idle_windows=1, quorum=1)
    now = 30000.0
    feed(win, np.arange(0.0, 300.0, 1.0) + 1000.0, live=True, now=now)
    win.tick(now)
    win.tick(now + 420.0)  # seven minutes without a line
    out = feed(win, np.arange(300.0, 600.0, 1.0) + 1000.0, live=True, now=now + 421.0)
    assert len(out.late) == 0
    frames = win.close() + win.finish()[0]
    assert all(int(f.lines[0]) > 0 for f in frames)


def test_a_stall_in_a_recent_backlog_is_no_silence():
    """A Kafka partition caught up on lines 20 minutes old is live (nothing left to read)
    but its lines are not: wall time anchored on them (within max_ahead, an hour), so a
    10-minute stall in their delivery closed windows with zeros and the lines after it
    were late."""
    win = Windower(60, lateness_windows=2, idle_windows=3, quorum=5)
    now = 1.764e9
    backlog = now - 1200.0 + np.arange(0.0, 600.0, 0.5)  # 20 to 10 minutes ago
    feed(win, backlog, live=True, now=now)
    win.tick(now)
    win.tick(now + 600.0)  # ten minutes without a line
    rest = now - 600.0 + np.arange(0.0, 1200.0, 0.5)  # 10 minutes ago to 10 minutes on
    out = feed(win, rest, live=True, now=now + 601.0)
    assert len(out.late) == 0
    frames = win.close() + win.finish()[0]
    assert all(int(f.lines[0]) > 0 for f in frames)
    assert sum(int(f.lines[0]) for f in frames) == len(backlog) + len(rest)


def test_the_window_the_input_ends_in_is_cut_even_with_a_stray_held_ahead():
    """The input ends 15 s into a window; a stray 9 hours ahead among the last lines is
    held (then dead-lettered). Taken for where the input ends, it made the cut window
    whole, judged as a whole window: a drop at the end of the run."""
    for stray in (False, True):
        win = Windower(60, lateness_windows=2, quorum=5)
        ts = np.arange(0, 3615, 1.0)
        if stray:
            ts = np.insert(ts, len(ts) - 5, 9 * 3600.0)
        feed(win, ts)
        frames, _, absurd = win.finish()
        assert len(absurd) == stray and frames[-1].start == 3600.0
        assert frames[-1].covered is not None and abs(frames[-1].covered[0] - 0.25) < 0.02


def test_state_round_trip_continues_identically():
    ts = np.r_[np.arange(0, 400, 0.5), 5e4, np.arange(400, 800, 0.5)]
    win = Windower(60, quorum=3)
    a = feed(win, ts[:700])
    state = win.state()
    again = Windower.from_state(state, seconds=60, quorum=3)
    one = win.close() + win.finish()[0]
    b = feed(again, ts[700:])
    two = again.close() + again.finish()[0]
    ref = Windower(60, quorum=3)
    feed(ref, ts[:700])
    feed(ref, ts[700:])
    whole = ref.close() + ref.finish()[0]
    assert a is not None and b is not None and len(one) > 0
    assert [(f.start, f.lines.tolist()) for f in two] == \
        [(f.start, f.lines.tolist()) for f in whole if f.start >= two[0].start]


def test_window_length_change_is_refused():
    state = Windower(60).state()
    try:
        Windower.from_state(state, seconds=30)
    except ValueError as e:
        assert "window.seconds" in str(e)
    else:
        raise AssertionError("a state of 60 s windows loaded as 30 s windows")


def _run(ts, svc, bounds, **kw):
    win = Windower(60, lateness_windows=1, idle_windows=2, **kw)
    frames, late, absurd = [], [], []
    for a, b in zip(bounds[:-1], bounds[1:]):
        out = feed(win, ts[a:b], svc=svc[a:b])
        late += (out.late + a).tolist()
        absurd += (out.absurd + a).tolist() + list(out.resolved_absurd)
        frames += win.close()
    more, late_held, held = win.finish()
    return frames + more, sorted(late + late_held), sorted(absurd + held)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 2000, allow_nan=False), min_size=1, max_size=200),
       st.lists(st.integers(1, 199), max_size=5))
def test_result_does_not_depend_on_batching(ts, cuts):
    """Windows, counts and late records are the same however the input is split."""
    ts = np.asarray(ts)
    svc = np.random.default_rng(len(ts)).integers(0, 2, len(ts))
    whole = _run(ts, svc, [0, len(ts)], quorum=2)
    parts = _run(ts, svc, sorted({0, len(ts), *[c for c in cuts if c < len(ts)]}), quorum=2)
    def key(r):  # per service, in order (frames of different services may interleave)
        per = sorted((s, f.start, int(f.lines[s]), f.template_counts[T_SVC == s].tolist())
                     for f in r[0] for s in f.services.tolist())
        return per, r[1], r[2]
    assert key(whole) == key(parts)


@settings(max_examples=80, deadline=None)
@given(st.integers(50, 400), st.floats(0.2, 5.0), st.integers(0, 2 ** 32 - 1),
       st.lists(st.tuples(st.integers(0, 10 ** 6), st.sampled_from([-1, 1]),
                          st.floats(2 * 3600, 3e8)), min_size=1, max_size=4))
def test_outliers_never_change_the_windows_of_the_other_events(n, rate, seed, outliers):
    """For a stream plus k < quorum outliers placed anywhere (k events together, or
    spread), the windows of the other events equal those without the outliers."""
    rng = np.random.default_rng(seed)
    base = np.cumsum(rng.exponential(1.0 / rate, n)) + 1.7e9
    base += rng.normal(0, 5, n)  # a little disorder, well within the lateness
    svc = rng.integers(0, 2, n)
    ts, sv, is_outlier = list(base), list(svc), [False] * n
    for pos, sign, dist in sorted(outliers, reverse=True):
        p = pos % (n + 1)
        ts.insert(p, base[min(p, n - 1)] + sign * dist)
        sv.insert(p, int(rng.integers(0, 2)))
        is_outlier.insert(p, True)
    ts, sv, is_outlier = np.array(ts), np.array(sv), np.array(is_outlier)
    clean_frames, clean_late, _ = _run(base, svc, [0, n], quorum=5)
    frames, late, absurd = _run(ts, sv, [0, len(ts)], quorum=5)
    normal = np.flatnonzero(~is_outlier)
    assert sorted(np.searchsorted(normal, [x for x in late if not is_outlier[x]])) == \
        clean_late
    assert all(is_outlier[x] for x in absurd)  # payloads are positions here

    def windows(frames):
        out = {}
        for f in frames:
            for s in f.services.tolist():
                if f.lines[s]:
                    out[(s, f.start)] = int(f.lines[s])
        return out
    clean = windows(clean_frames)
    got = windows(frames)
    # every window of the clean run is there with the same count, except where an
    # outlier itself was counted (one more line there at most per outlier)
    extra = {k: got.get(k, 0) - v for k, v in clean.items()}
    assert all(d >= 0 for d in extra.values())
    assert sum(extra.values()) + sum(v for k, v in got.items() if k not in clean) \
        <= int(is_outlier.sum())
    assert HISTORY >= 2 * 5


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.one_of(
    st.floats(0, 5000, allow_nan=False), st.integers(0, 12).map(lambda x: 100.0 * x),
    st.just(np.nan))), min_size=1, max_size=300), st.integers(1, 8),
    st.lists(st.integers(1, 299), max_size=4))
@example([(0, 3000.0 - 10 * i) for i in range(80)], 1, [])  # every eviction a top time
@example([(0, 300.0 * (i % 3 == 0)) for i in range(80)], 3, [40])  # ties
def test_clock_kernel_keeps_the_quorum_largest_of_each_ring(recs, quorum, cuts):
    """The kernel's incremental top list (ties, evictions, NaN, restores) against the
    numpy reference: every service's clock is the quorum-th largest of its ring."""
    from logml.window import kth_largest_reference, top_of
    svc = np.array([r[0] for r in recs])
    ts = np.array([r[1] for r in recs])
    win = Windower(60, quorum=quorum)
    bounds = sorted({0, len(ts), *[c for c in cuts if c < len(ts)]})
    for a, b in zip(bounds[:-1], bounds[1:]):
        feed(win, ts[a:b], svc=svc[a:b], tmpl=np.zeros(b - a), n_s=3)
        win = Windower.from_state(win.state(), seconds=60, quorum=quorum) if a % 2 else win
        for s in range(len(win.est)):
            want = kth_largest_reference(win.ring[s], win.ring_n[s], quorum)
            if win.ring_n[s] >= 2 * quorum - 1:  # the first clock: the median of 2q - 1
                assert win.est[s] == want
            else:
                assert win.est[s] == -np.inf
            assert win.top[s][quorum - 1] == want or win.ring_n[s] < quorum
        rebuilt = np.empty_like(win.top)
        top_of(win.ring, win.ring_n, rebuilt)
        assert np.array_equal(win.top, rebuilt)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 6), max_size=200), st.integers(1, 4))
def test_first_k_matches_reference(pairs, k):
    from logml.window import first_k, first_k_reference
    pair = np.asarray(pairs, np.int64)
    got = first_k(pair, 7, k)
    assert got.tolist() == first_k_reference(pair, k).tolist()


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2 ** 32 - 1), st.integers(1, 300), st.floats(1, 1e6),
       st.booleans())
def test_counts_and_samples_match_a_plain_count(seed, n, spread, dense):
    """Windows' counts, errors and samples against counting record by record in Python,
    by the bincount path and by the sparse path (keys spread far)."""
    import logml.window as wmod
    rng = np.random.default_rng(seed)
    ts = np.sort(rng.uniform(0, spread, n)) + 1.7e9
    svc = rng.integers(0, 2, n)
    tmpl = np.where(svc == 0, rng.integers(0, 2, n), 2)
    err = rng.random(n) < 0.3
    old = wmod._DENSE_SLACK
    wmod._DENSE_SLACK = old if dense else -10 ** 12
    try:
        win = Windower(60, lateness_windows=1, quorum=1, max_ahead_windows=10 ** 9,
                       max_gap_windows=10 ** 6)
        out = feed(win, ts, tmpl, svc, err)
        frames = win.close() + win.finish()[0]
    finally:
        wmod._DENSE_SLACK = old
    bad = set(out.late.tolist()) | set(out.absurd.tolist()) | set(out.held.tolist())
    want = {}
    for i in range(n):
        if i in bad:
            continue
        w = want.setdefault((int(svc[i]), np.floor(ts[i] / 60) * 60),
                            [np.zeros(3, int), np.zeros(3, int), {}])
        w[0][tmpl[i]] += 1
        w[1][tmpl[i]] += int(err[i])
        have = w[2].setdefault(int(tmpl[i]), [])
        if len(have) < 3:
            have.append(f"line {i}")
    got = {}
    for f in frames:
        for s in f.services.tolist():
            if f.lines[s]:
                mine = T_SVC == s
                got[(s, f.start)] = [np.where(mine, f.template_counts, 0),
                                     np.where(mine, f.template_errors, 0),
                                     {t: v for t, v in f.samples.items() if T_SVC[t] == s}]
                assert f.lines[s] == f.template_counts[mine].sum()
                assert f.errors[s] == f.template_errors[mine].sum()
    assert sorted(got) == sorted(want)
    for key, (c, e, smp) in want.items():
        assert got[key][0].tolist() == c.tolist() and got[key][1].tolist() == e.tolist()
        assert got[key][2] == smp
