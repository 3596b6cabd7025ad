"""Live stdin (small reads, a graceful stop that loses nothing) and input identity across
runs (a grown file goes on, a rotated, truncated or rewritten one is read from its start
and said so, never skipped)."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import orjson
import pytest

from .hostile import STEP, T0, base_json, iso
from .proc import docs, logml, start, wait

FILES = ("windows.jsonl", "anomalies.jsonl", "dlq.jsonl", "logs.jsonl")


def _same(a: Path, b: Path) -> None:
    for f in FILES:
        x, y = ((d / f).read_bytes() for d in (a, b))
        x, y = (re.sub(rb',"@timestamp":"[^"]*"', b"", v) if f == "dlq.jsonl" else v
                for v in (x, y))
        assert x == y, f


def _wait_lines(path: Path, n: int, timeout: float = 60) -> None:
    t0 = time.monotonic()
    while not path.exists() or path.read_bytes().count(b"\n") < n:
        assert time.monotonic() - t0 < timeout, f"{path}: fewer than {n} lines"
        time.sleep(0.02)


def test_live_stdin_is_processed_before_its_end_and_sigterm_loses_nothing(tmp_path):
    lines = base_json(2400)
    for i in (300, 1700):  # a bad line in each half: dead-letter line numbers must go on
        lines[i] = b"\xff not utf-8"
    half = 1200
    first, second = (b"\n".join(x) + b"\n" for x in (lines[:half], lines[half:]))
    (tmp_path / "whole").write_bytes(first + second)
    (tmp_path / "second").write_bytes(second)
    with open(tmp_path / "whole", "rb") as f:
        assert logml("run", "--input", "-", "--output", tmp_path / "ref", "--write-logs",
                     stdin=f).rc == 0

    out, state = tmp_path / "out", tmp_path / "state"
    with open(tmp_path / "err", "w+b") as err:
        p = start("run", "--input", "-", "--output", out, "--write-logs", "--state", state,
                  stdin=subprocess.PIPE, stderr=err)
        p.stdin.write(first)
        p.stdin.flush()  # and the pipe stays open: nothing more comes
        _wait_lines(out / "logs.jsonl", half - 1)  # processed without waiting for the end
        p.send_signal(signal.SIGTERM)
        rc, _, wall = wait(p, 30)
        p.stdin.close()
        err.seek(0)
        text = err.read().decode()
    assert rc == 0, text
    assert text.strip().splitlines() == [text.strip()] and "stopped by SIGTERM" in text \
        and "state saved" in text, text
    with open(tmp_path / "second", "rb") as f:
        r = logml("run", "--input", "-", "--output", out, "--write-logs", "--state", state,
                  stdin=f)
    assert r.rc == 0, r.stderr
    _same(tmp_path / "ref", out)  # windows open at the stop were continued, not closed
    assert [d["offset"] for d in docs(out / "dlq.jsonl")] == [300, 1700]


def test_sigterm_in_the_middle_of_a_piped_line_keeps_its_start_for_the_resume(tmp_path):
    """The half line a stopped run had read from the pipe is kept in the state and read
    first on resume (it was lost: the rest became a line of its own, service 'default')."""
    whole = b"\n".join(base_json(600)) + b"\n"
    cut = whole.rfind(b"\n", 0, len(whole) // 2) + 40  # 40 bytes into a line
    (tmp_path / "whole").write_bytes(whole)
    (tmp_path / "rest").write_bytes(whole[cut:])
    with open(tmp_path / "whole", "rb") as f:
        assert logml("run", "--input", "-", "--output", tmp_path / "ref", "--write-logs",
                     stdin=f).rc == 0
    out, state = tmp_path / "out", tmp_path / "state"
    p = start("run", "--input", "-", "--output", out, "--write-logs", "--state", state,
              stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdin.write(whole[:cut])
    p.stdin.flush()
    _wait_lines(out / "logs.jsonl", whole[:cut].count(b"\n"))
    time.sleep(1.5)  # the half line is read too
    p.send_signal(signal.SIGTERM)
    rc = p.wait(30)  # the pipe stays open (closed, its half line is the input's last)
    p.stdin.close()
    p.stderr.close()
    assert rc == 0
    with open(tmp_path / "rest", "rb") as f:
        r = logml("run", "--input", "-", "--output", out, "--write-logs", "--state", state,
                  stdin=f)
    assert r.rc == 0, r.stderr
    _same(tmp_path / "ref", out)


def test_live_stdin_closes_windows_as_wall_time_passes(tmp_path):
    (tmp_path / "p.toml").write_text("[window]\nseconds = 1\nallowed_lateness_windows = 0\n")
    out = tmp_path / "out"
    p = start("run", "--input", "-", "--output", out, "-c", tmp_path / "p.toml",
              stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        t0 = time.time()
        last = 0.0
        while time.time() - t0 < 3:
            last = time.time()
            p.stdin.write(orjson.dumps({"@timestamp": iso(last), "message": "tick",
                                        "service": {"name": "api"}}) + b"\n")
            p.stdin.flush()
            time.sleep(0.05)
        deadline = time.monotonic() + 6  # no more input; only wall time passes
        while time.monotonic() < deadline:
            ends = [d["logml"]["window"]["end"] for d in docs(out / "windows.jsonl")]
            if ends and max(ends) >= iso(last):
                break
            time.sleep(0.1)
        assert ends and max(ends) >= iso(last), "the last window is still open"
    finally:
        p.send_signal(signal.SIGTERM)
        wait(p, 30)
        p.stdin.close()


# ------------------------------------------------------------------ file identity
def plain(start: int, n: int) -> bytes:
    return b"".join(f"{iso(T0 + (start + i) * STEP)} INFO request {i % 89} done in "
                    f"{i % 17}ms\n".encode() for i in range(n))


def counted(out: Path) -> int:
    return sum(w["logml"]["lines"] for w in docs(out / "windows.jsonl"))


def run(tmp_path, path, *extra):
    r = logml("run", "--input", path, "--output", tmp_path / "out", "--state",
              tmp_path / "state", *extra)
    assert r.rc == 0 and "Traceback" not in r.stderr, r.stderr
    return r.stderr


def test_a_grown_file_goes_on_where_it_was(tmp_path):
    log = tmp_path / "app.log"
    log.write_bytes(plain(0, 1000) + b"2025-11-24T16:08:20.000Z INFO half a li")
    assert "from the start" not in run(tmp_path, log, "--keep-open")
    with open(log, "ab") as f:  # the writer finishes its line and goes on
        f.write(b"ne\n" + plain(1001, 999))
    assert "from the start" not in run(tmp_path, log)
    (tmp_path / "whole.log").write_bytes(log.read_bytes())
    r = logml("run", "--input", tmp_path / "whole.log", "--output", tmp_path / "ref")
    assert r.rc == 0
    assert (tmp_path / "out" / "windows.jsonl").read_bytes() == \
        (tmp_path / "ref" / "windows.jsonl").read_bytes()
    assert counted(tmp_path / "out") == 2000 and not docs(tmp_path / "out" / "dlq.jsonl")


def _rotate(log: Path) -> None:
    log.rename(log.with_suffix(".log.1"))
    log.write_bytes(plain(1000, 400))


def _copytruncate(log: Path) -> None:
    with open(log, "r+b") as f:
        f.truncate(0)
        f.write(plain(1000, 400))


def _rewrite_larger(log: Path) -> None:
    with open(log, "r+b") as f:  # same inode, longer, different first bytes
        f.write(plain(1000, 1400))


def _replace_same_size(log: Path) -> None:
    new = log.with_suffix(".new")
    new.write_bytes(plain(1000, 1000))
    os.replace(new, log)


@pytest.mark.parametrize("change,why", [
    (_rotate, "replaced or rotated"), (_copytruncate, "smaller than the saved position"),
    (_rewrite_larger, "first bytes changed"), (_replace_same_size, "replaced or rotated")])
def test_a_changed_file_is_read_from_its_start_and_said_so(tmp_path, change, why):
    log = tmp_path / "app.log"
    log.write_bytes(plain(0, 1000))
    run(tmp_path, log, "--keep-open")
    change(log)
    n_new = log.read_bytes().count(b"\n")
    err = run(tmp_path, log)
    notes = [x for x in err.splitlines() if "from the start" in x]
    assert len(notes) == 1 and why in notes[0], err
    assert counted(tmp_path / "out") == 1000 + n_new  # nothing skipped
    assert not [d for d in docs(tmp_path / "out" / "dlq.jsonl") if d["reason"] == "late"]


def test_follow_reads_on_across_rotation_and_truncation(tmp_path):
    log, out = tmp_path / "app.log", tmp_path / "out"
    log.write_bytes(plain(0, 500))
    with open(tmp_path / "err", "w+b") as err:
        p = start("run", "--input", log, "--follow", "--output", out, "--write-logs",
                  "--state", tmp_path / "state", stderr=err)
        try:
            _wait_lines(out / "logs.jsonl", 500)
            with open(log, "ab") as f:
                f.write(plain(500, 300))
            _wait_lines(out / "logs.jsonl", 800)
            _rotate(log)  # the new file holds 400 lines
            _wait_lines(out / "logs.jsonl", 1200)
            with open(log, "r+b") as f:  # copytruncate
                f.truncate(0)
                f.write(plain(1400, 100))
            _wait_lines(out / "logs.jsonl", 1300)
            with open(log, "r+b") as f:  # copytruncate, and more written before a look
                f.truncate(0)
                f.write(plain(1500, 300))
            _wait_lines(out / "logs.jsonl", 1600)
        finally:
            p.send_signal(signal.SIGTERM)
            rc, _, _ = wait(p, 30)
        err.seek(0)
        text = err.read().decode()
    assert rc == 0, text
    notes = text.strip().splitlines()
    assert len(notes) == 4 and "rotated" in notes[0] and "truncated" in notes[1] \
        and ("rewritten" in notes[2] or "truncated" in notes[2]) \
        and "stopped by SIGTERM" in notes[3], text
    assert (out / "logs.jsonl").read_bytes().count(b"\n") == 1600  # nothing twice or lost
    assert not docs(out / "dlq.jsonl")
