import numpy as np
from hypothesis import given, settings, strategies as st

from logml.window import Windower


def feed(win, ts, tmpl=None, svc=None, err=None, n_t=3, n_s=2):
    ts = np.asarray(ts, dtype=float)
    n = len(ts)
    tmpl = np.zeros(n, np.int32) if tmpl is None else np.asarray(tmpl, np.int32)
    svc = np.zeros(n, np.int32) if svc is None else np.asarray(svc, np.int32)
    err = np.zeros(n, bool) if err is None else np.asarray(err, bool)
    return win.add(ts, tmpl, svc, err, n_t, n_s, lambda i: f"line {i}")


def test_tumbling_windows_close_after_lateness():
    win = Windower(60, lateness_windows=2)
    feed(win, [0, 10, 59, 60, 130])
    assert win.close() == []  # watermark 130 - 120 = 10: nothing closed yet
    feed(win, [185])
    frames = win.close()
    assert [(f.start, f.end) for f in frames] == [(0, 60)]
    assert frames[0].lines.tolist() == [3, 0]
    frames = win.close(final=True)
    assert [f.start for f in frames] == [60, 120, 180]


def test_gap_windows_are_emitted_with_zero_counts():
    win = Windower(60, lateness_windows=0)
    feed(win, [5, 301])
    frames = win.close()
    assert [f.start for f in frames] == [0, 60, 120, 180, 240]
    assert [int(f.lines.sum()) if len(f.lines) else 0 for f in frames] == [1, 0, 0, 0, 0]


def test_late_records_are_returned_not_dropped_silently():
    win = Windower(60, lateness_windows=1)
    feed(win, [0, 200])
    win.close()
    late = feed(win, [10, 199, 70])
    assert late.tolist() == [0, 2]  # windows [0,60) and [60,120) closed already
    assert win.late == 2


def test_counts_per_template_service_and_errors():
    win = Windower(60, lateness_windows=0, idle_windows=0)
    feed(win, [1, 2, 3, 4, 70], tmpl=[0, 1, 1, 2, 0], svc=[0, 0, 0, 1, 0],
         err=[False, True, True, False, False])
    (f,) = win.close()
    assert f.template_counts.tolist() == [1, 2, 1]
    assert f.template_errors.tolist() == [0, 2, 0]
    assert f.lines.tolist() == [3, 1] and f.errors.tolist() == [2, 0]
    assert f.error_ratio.tolist() == [2 / 3, 0.0]
    assert f.samples[1] == ["line 1", "line 2"]


def test_each_service_has_its_own_watermark():
    """A service shipped behind another (within the idle allowance) loses nothing."""
    win = Windower(60, lateness_windows=1, idle_windows=3)
    assert len(feed(win, [0, 1, 100, 200, 230], svc=[0, 1, 0, 0, 0])) == 0
    assert [f.start for f in win.close()] == []  # service 1 (at 1 s) holds [0, 60) open
    assert len(feed(win, [5, 70, 150], svc=[1, 1, 1])) == 0  # 80 s behind: not late
    assert [f.start for f in win.close()] == [0]
    (f,) = [f for f in win.close(final=True) if f.start == 60]
    assert f.lines.tolist() == [1, 1]


def test_a_silent_service_stops_holding_windows_open():
    win = Windower(60, lateness_windows=0, idle_windows=2)
    feed(win, [0, 10], svc=[0, 1])
    feed(win, [65, 130, 190, 250, 310], svc=[0, 0, 0, 0, 0])
    frames = win.close()
    assert [f.start for f in frames] == [0, 60, 120]
    assert [f.lines.tolist() for f in frames] == [[1, 1], [1, 0], [1, 0]]
    assert feed(win, [20], svc=[1]).tolist() == [0]  # too late now: counted as late


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 2000, allow_nan=False), min_size=1, max_size=200),
       st.lists(st.integers(1, 199), max_size=5))
def test_result_does_not_depend_on_batching(ts, cuts):
    """Windows, counts and late records are the same however the input is split."""
    rng = np.random.default_rng(len(ts))
    tmpl = rng.integers(0, 3, len(ts))
    svc = rng.integers(0, 2, len(ts))

    def run(bounds):
        win = Windower(60, lateness_windows=1, idle_windows=2)
        frames, late = [], []
        for a, b in zip(bounds[:-1], bounds[1:]):
            late += (feed(win, ts[a:b], tmpl[a:b], svc[a:b]) + a).tolist()
            frames += win.close()
        frames += win.close(final=True)
        return [(f.start, f.template_counts[:3].tolist() if len(f.template_counts) else [])
                for f in frames], late

    whole = run([0, len(ts)])
    parts = run(sorted({0, len(ts), *[c for c in cuts if c < len(ts)]}))
    assert whole == parts
