"""The embedded runner with a live input: the pipeline is marked live and its clock ticks
at least once a second of wall time while no input comes (Pipeline API, PLAN contract 3)."""
import os
import threading
import time

from logml import run as run_mod
from logml.config import load
from logml.pipeline import Pipeline


class Recording(Pipeline):
    live = False

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.ticks: list[float] = []
        Recording.last = self

    def tick(self, now: float) -> None:
        self.ticks.append(now)


def test_live_input_marks_the_pipeline_and_ticks_every_second(tmp_path, monkeypatch):
    monkeypatch.setattr(run_mod, "Pipeline", Recording)
    r, w = os.pipe()
    cfg = load(overrides={"output.dir": str(tmp_path / "out")})
    runner = run_mod.Runner(cfg, f"/proc/self/fd/{r}", progress=False)
    t = threading.Thread(target=runner.run)
    t.start()
    os.write(w, b"2025-11-24T10:00:00Z INFO one\n")
    time.sleep(3.5)
    os.close(w)
    t.join(30)
    os.close(r)
    pipe = Recording.last
    assert pipe.live is True
    assert len(pipe.ticks) >= 2 and all(b - a <= 2.0 for a, b in zip(pipe.ticks, pipe.ticks[1:]))
    assert sum(pipe.stats.lines.values()) == 1


def test_a_regular_file_is_not_live_and_does_not_tick(tmp_path, monkeypatch):
    monkeypatch.setattr(run_mod, "Pipeline", Recording)
    f = tmp_path / "a.log"
    f.write_bytes(b"2025-11-24T10:00:00Z INFO one\n")
    run_mod.run_file(load(overrides={"output.dir": str(tmp_path / "out")}), str(f),
                     progress=False)
    assert Recording.last.live is False and Recording.last.ticks == []
