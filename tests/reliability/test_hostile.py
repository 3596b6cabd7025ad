"""Every hostile input of ``hostile.py`` through ``logml run``: the run ends, nothing is
lost (lines in = lines counted in windows + lines dead-lettered, a kept record once), no
line that was on time is dead-lettered, and memory and time stay under generous bounds
(exact figures belong to benchmarks)."""
from __future__ import annotations

import pytest

from .hostile import base_json, base_plain, cases
from .proc import docs, logml, one_line_error


def _params() -> list:
    return [pytest.param(c, id=c.name, marks=[pytest.mark.slow] if c.wall_s > 30 else [])
            for c in cases()]


@pytest.fixture(scope="module", autouse=True)
def compiled(tmp_path_factory):
    """One untimed run first: numba compiles its kernels into the cache on the first run
    after a change, which is not what the time bounds are about."""
    d = tmp_path_factory.mktemp("warm")
    (d / "in.log").write_bytes(b"\n".join(base_json(50) + base_plain(50)) + b"\n\n")
    assert logml("run", "--input", d / "in.log", "--output", d / "out", timeout=900).rc == 0


@pytest.mark.parametrize("case", _params())
def test_hostile_input_is_accounted_for_in_bounded_memory_and_time(case, tmp_path):
    src, out = tmp_path / "in.log", tmp_path / "out"
    case.write(src)
    r = logml("run", "--input", src, "--output", out, *case.args, timeout=case.wall_s)
    src.unlink()
    print(f"{case.name}: rss {r.rss_mb:.0f} MB, {r.wall_s:.1f} s")
    assert r.rc == 0 and "Traceback" not in r.stderr, r.stderr[-3000:]
    windows, dlq = docs(out / "windows.jsonl"), docs(out / "dlq.jsonl")
    counted = sum(w["logml"]["lines"] for w in windows)
    dropped = [d for d in dlq if not d["kept"]]
    covered = {line for d in dropped for line in range(d["offset"],
                                                       d["offset"] + d.get("lines", 1))}
    assert counted + sum(d.get("lines", 1) for d in dropped) in case.lines, \
        (counted, len(dropped), case.lines)
    on_time_dropped = sorted(covered - case.hostile)
    assert not on_time_dropped, ("on-time lines dead-lettered", len(on_time_dropped),
                                 [d for d in dropped if d["offset"] not in case.hostile][:3])
    assert not covered & case.counted, "a kept line was dead-lettered instead"
    for line, reasons in case.reasons.items():
        assert {d["reason"] for d in dlq if d["offset"] == line} & reasons, (line, reasons)
    if case.services is not None:
        assert {w["service"]["name"] for w in windows} <= case.services
    if case.max_windows is not None:
        assert len(windows) <= case.max_windows
    assert r.rss_mb < case.rss_mb
    assert r.wall_s < case.wall_s


def test_dev_zero_stops_with_a_clear_error_in_bounded_memory(tmp_path):
    r = logml("run", "--input", "/dev/zero", "--output", tmp_path / "out", timeout=120)
    print(f"/dev/zero: rss {r.rss_mb:.0f} MB, {r.wall_s:.1f} s")
    one_line_error(r)
    assert "newline" in r.stderr
    assert r.rss_mb < 1536 and r.wall_s < 60
