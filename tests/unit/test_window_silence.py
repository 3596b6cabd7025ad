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
