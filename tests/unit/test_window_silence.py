"""A service that falls silent while others keep logging, then resumes: its lines after
the silence are counted, not dead-lettered late (the silence is the stream's progress,
not a jump of the service's clock)."""
import numpy as np

from logml.window import Windower

T_SVC = np.array([0, 1], np.int32)


def test_lines_after_a_silence_are_counted():
    win = Windower(60, lateness_windows=2, idle_windows=3, quorum=5)
    rng = np.random.default_rng(0)
    late = 0
    counted = {0: 0, 1: 0}
    for minute in range(60):
        t0 = minute * 60.0
        ts = np.sort(t0 + rng.uniform(0, 60, 40))
        svc = np.arange(40) % 2
        if 20 <= minute < 34:  # service 1 silent for 14 minutes
            svc = np.zeros(40, np.int64)
        out = win.add(ts, svc.astype(np.int32), svc.astype(np.int32), np.zeros(40, bool),
                      T_SVC, 2, None, lambda i: i)
        late += len(out.late)
        for f in win.close():
            for s in f.services.tolist():
                counted[s] += int(f.lines[s])
    frames, _, _ = win.finish()
    for f in frames:
        for s in f.services.tolist():
            counted[s] += int(f.lines[s])
    assert late == 0
    assert counted == {0: 46 * 20 + 14 * 40, 1: 46 * 20}


def test_a_clock_stepped_back_is_not_taken_for_silence():
    """Service 1 stamps local time without an offset; at a DST change its clock goes back
    an hour while service 0 (UTC) goes on. Its lines of the repeated hour are for windows
    it closed already (late: they cannot be counted where they say), but it did not fall
    silent: it was taken for silent, its windows closed with zeros (a false critical drop)
    and every later line was late, for good (3 hours of lines in a 6-hour stream)."""
    win = Windower(60, lateness_windows=2, idle_windows=3, quorum=5)
    rng = np.random.default_rng(1)
    late = {0: 0, 1: 0}
    windows = {0: {}, 1: {}}
    for minute in range(360):
        real = np.sort(minute * 60.0 + rng.uniform(0, 60, 60))
        svc = np.arange(60) % 2
        ts = real + np.where((svc == 1) & (real < 3 * 3600), 3600.0, 0.0)  # summer: +1 h
        out = win.add(ts, svc.astype(np.int32), svc.astype(np.int32), np.zeros(60, bool),
                      T_SVC, 2, None, lambda i: i)
        for i in out.late.tolist():
            late[int(svc[i])] += 1
        for f in win.close():
            for s in f.services.tolist():
                windows[s][f.start] = int(f.lines[s])
    for f in win.finish()[0]:
        for s in f.services.tolist():
            windows[s][f.start] = int(f.lines[s])
    assert late[0] == 0 and 0.9 * 1800 <= late[1] <= 1800 + 120  # the repeated hour
    assert min(windows[1].values()) > 0  # no window of zeros: no drop
    assert sum(windows[1].values()) + late[1] == 360 * 30
    assert max(windows[1]) >= 6 * 3600 - 120  # counted to the end


def _dst_forward(live: bool, restore: bool = False):
    """Service 1 stamps local time without an offset and goes an hour ahead at 3 h (the
    start of daylight saving time), service 0 is UTC; minute by minute, as it comes."""
    win = Windower(60, lateness_windows=2, idle_windows=3, quorum=5)
    rng = np.random.default_rng(2)
    t0 = 1.764e9
    windows, gaps, late = {0: {}, 1: {}}, [], 0
    for minute in range(360):
        real = t0 + np.sort(minute * 60.0 + rng.uniform(0, 60, 60))
        svc = np.arange(60) % 2
        ts = real + np.where((svc == 1) & (real >= t0 + 3 * 3600), 3600.0, 0.0)
        now = t0 + minute * 60.0 + 60.0
        if live:
            win.tick(now)
        out = win.add(ts, svc.astype(np.int32), svc.astype(np.int32), np.zeros(60, bool),
                      T_SVC, 2, None, lambda i: i, live=live, now=now)
        late += len(out.late)
        if restore:  # the jump's windows to skip are part of the state
            win = Windower.from_state(win.state(), seconds=60, lateness_windows=2,
                                      idle_windows=3, quorum=5)
            win.wall = (now, float(win.glob[0]))
        for f in win.close():
            for s, g in zip(f.services.tolist(), f.gap.tolist()):
                windows[s][f.start] = int(f.lines[s])
                if g:
                    gaps.append((s, f.start))
    return windows, gaps, late


def test_a_clock_that_jumps_ahead_in_a_live_stream_is_no_silence():
    """Live, wall time says the hour the service's clock skipped never passed: its windows
    over the jump are skipped (the next one flagged a gap), not closed as ten zeros (a
    false critical drop each spring). A replay cannot tell the jump from an outage of
    the service until later lines come, and keeps reporting it."""
    windows, gaps, late = _dst_forward(live=True)
    assert late == 0 and min(windows[1].values()) > 0
    assert gaps == [(1, 1.764e9 + 4 * 3600)]
    assert _dst_forward(live=True, restore=True) == (windows, gaps, late)
    replayed, _, _ = _dst_forward(live=False)
    assert sorted(replayed[1].values())[:10] == [0] * 10
