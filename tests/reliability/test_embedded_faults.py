"""Embedded mode under faults (issue 10): kill -9 at several points, SIGTERM, a full disk,
damaged or hostile state files. Each ends in outputs byte-identical to an uninterrupted
run once rerun with the same ``--state``, or in a one-line refusal (exit 2); never a
traceback, never a line written twice.

Dead letters carry the wall time they were rejected at (``@timestamp``); that field is
the only one compared modulo its value.
"""
from __future__ import annotations

import gzip
import os
import pickle
import re
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import orjson
import pytest

from logml import snapshot
from logml.generate import write

from .proc import REPO, docs, logml, one_line_error, start, wait

FILES = ("windows.jsonl", "anomalies.jsonl", "dlq.jsonl", "logs.jsonl")
EVERY_BLOCK = "[output]\ncheckpoint_every_s = 0.0\n"


def _bad(k: int, ts: str) -> bytes:
    """Cycling bad lines; the long one carries the stream's time so it cannot move it."""
    return [b"", b"\xff\xfe not utf-8", b"[1, 2, 3]", b'{"message": 5}',
            ts.encode() + b" INFO big " + b"x" * 70_000][k % 5]


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    """A 1.5 h, 3-service input (about 20 MB, five blocks) with a bad line every 2,999."""
    d = tmp_path_factory.mktemp("faults")
    events, _ = write(d / "gen", seed=11, hours=1.5, services=3, start=1_764_000_000.0,
                      rate=7.0)
    lines = events.read_bytes().splitlines()
    for k, i in enumerate(range(1500, len(lines), 2999)):
        lines[i] = _bad(k, orjson.loads(lines[i])["@timestamp"])
    src = d / "in.jsonl"
    src.write_bytes(b"\n".join(lines) + b"\n")
    pipeline = d / "every-block.toml"
    pipeline.write_text(EVERY_BLOCK)
    ref = d / "ref"
    r = logml("run", "--input", src, "--output", ref, "--write-logs")
    assert r.rc == 0, r.stderr
    assert docs(ref / "anomalies.jsonl") and len(docs(ref / "dlq.jsonl")) >= 20
    return src, pipeline, ref


def outputs(d: Path) -> dict[str, bytes]:
    got = {f: (d / f).read_bytes() for f in FILES}
    got["dlq.jsonl"] = re.sub(rb',"@timestamp":"[^"]*"', b"", got["dlq.jsonl"])
    return got


def assert_same(ref: Path, out: Path) -> None:
    want, got = outputs(ref), outputs(out)
    for f in FILES:
        assert got[f] == want[f], f"{f}: {len(got[f])} bytes, uninterrupted {len(want[f])}"


def run_args(src, pipeline, out, state):
    return ("run", "--input", src, "--output", out, "--write-logs", "--state", state,
            "-c", pipeline)


def rerun(src, pipeline, out, state) -> None:
    r = logml(*run_args(src, pipeline, out, state))
    assert r.rc == 0 and "Traceback" not in r.stderr, r.stderr[-3000:]


def _checkpoints_seen(state: Path, n: int, timeout: float = 120) -> None:
    """Wait until the state file was replaced n times (each checkpoint renames a new file)."""
    seen, inode, t0 = 0, None, time.monotonic()
    while seen < n:
        assert time.monotonic() - t0 < timeout, "no checkpoint"
        try:
            ino = state.stat().st_ino
        except FileNotFoundError:
            ino = None
        if ino is not None and ino != inode:
            seen, inode = seen + 1, ino
        time.sleep(0.002)


@pytest.mark.parametrize("checkpoints,delay", [(0, 0.0), (1, 0.0), (2, 0.3), (3, 0.05)])
def test_kill_9_mid_run_then_rerun_is_byte_identical(scenario, tmp_path, checkpoints, delay):
    src, pipeline, ref = scenario
    out, state = tmp_path / "out", tmp_path / "state"
    p = start(*run_args(src, pipeline, out, state), stderr=subprocess.DEVNULL)
    if checkpoints:
        _checkpoints_seen(state, checkpoints)
    else:  # before the first checkpoint: some outputs written, no state yet
        while not (out / "logs.jsonl").exists() or (out / "logs.jsonl").stat().st_size == 0:
            time.sleep(0.002)
    time.sleep(delay)
    p.send_signal(signal.SIGUSR1)  # the launcher kills the run with SIGKILL
    rc, _, _ = wait(p, 60)
    if rc == 0:
        pytest.skip("the run ended before the kill")
    rerun(src, pipeline, out, state)
    assert_same(ref, out)


# A run in a child that dies abruptly (os._exit: no flush, no cleanup) at one point.
CRASH = """
import os, sys
from logml import cli, snapshot
from logml.pipeline import Pipeline
point, n = sys.argv[1], int(sys.argv[2])
calls = {"write": 0, "block": 0}
real_write, real_block = snapshot.write, Pipeline.process_block

def write(path, kind, tree):
    calls["write"] += 1
    if calls["write"] == n:
        if point == "before_state":
            os._exit(137)
        if point == "before_rename":
            os.replace = lambda *a, **k: os._exit(137)
    return real_write(path, kind, tree)

def block(self, *a, **k):
    real_block(self, *a, **k)
    calls["block"] += 1
    if point == "after_block" and calls["block"] == n:
        os._exit(137)

snapshot.write, Pipeline.process_block = write, block
sys.exit(cli.main(sys.argv[3:]))
"""


@pytest.mark.parametrize("point,n", [("before_state", 2), ("before_rename", 3),
                                     ("after_block", 4), ("before_rename", 1)])
def test_crash_during_a_checkpoint_then_rerun_is_byte_identical(scenario, tmp_path, point, n):
    src, pipeline, ref = scenario
    out, state = tmp_path / "out", tmp_path / "state"
    p = subprocess.run([sys.executable, "-c", CRASH, point, str(n),
                        *map(str, run_args(src, pipeline, out, state))],
                       cwd=REPO, capture_output=True, timeout=300)
    assert p.returncode == 137, p.stderr.decode()[-3000:]
    rerun(src, pipeline, out, state)
    assert_same(ref, out)


@pytest.fixture(scope="module")
def compressed(scenario, tmp_path_factory):
    """The scenario gzipped (a rotated log), and its uninterrupted run."""
    src, pipeline, _ = scenario
    d = tmp_path_factory.mktemp("gz")
    gz = d / "in.jsonl.1.gz"
    gz.write_bytes(gzip.compress(src.read_bytes(), compresslevel=1))
    r = logml("run", "--input", gz, "--output", d / "ref", "--write-logs")
    assert r.rc == 0, r.stderr
    return gz, pipeline, d / "ref"


@pytest.mark.parametrize("point,n", [("after_block", 3), ("before_rename", 2)])
def test_a_compressed_input_crashed_then_rerun_is_byte_identical(compressed, tmp_path, point,
                                                                 n):
    """Its positions count decompressed bytes: the rerun decompresses up to the state's
    and reads on from there."""
    gz, pipeline, ref = compressed
    out, state = tmp_path / "out", tmp_path / "state"
    p = subprocess.run([sys.executable, "-c", CRASH, point, str(n),
                        *map(str, run_args(gz, pipeline, out, state))],
                       cwd=REPO, capture_output=True, timeout=300)
    assert p.returncode == 137, p.stderr.decode()[-3000:]
    assert state.exists()
    rerun(gz, pipeline, out, state)
    assert_same(ref, out)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_graceful_stop_keeps_windows_open_and_the_rerun_is_byte_identical(scenario, tmp_path,
                                                                           sig):
    src, pipeline, ref = scenario
    out, state = tmp_path / "out", tmp_path / "state"
    with open(tmp_path / "stderr", "w+b") as err:
        p = start(*run_args(src, pipeline, out, state), stderr=err)
        _checkpoints_seen(state, 2)
        p.send_signal(sig)  # the launcher passes it on
        rc, _, _ = wait(p, 60)
        err.seek(0)
        text = err.read().decode()
    assert rc == 0 and "Traceback" not in text, text
    if "stopped by" not in text:
        pytest.skip("the run ended before the signal")
    lines = text.strip().splitlines()
    assert len(lines) == 1 and f"stopped by {sig.name}" in lines[0] and "state saved" in lines[0]
    rerun(src, pipeline, out, state)
    assert_same(ref, out)  # a window closed early would show as a different count


@pytest.fixture
def small_tmpfs(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                       capture_output=True)
    if p.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {p.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)])


def test_full_disk_is_one_line_and_the_rerun_with_space_is_byte_identical(scenario,
                                                                           small_tmpfs):
    src, pipeline, ref = scenario
    out, state = small_tmpfs / "out", small_tmpfs / "state"
    r = logml(*run_args(src, pipeline, out, state))
    one_line_error(r)
    assert "no space left on device" in r.stderr
    subprocess.run(["mount", "-o", "remount,size=256m", str(small_tmpfs)], check=True)
    rerun(src, pipeline, out, state)
    assert_same(ref, out)


def test_read_only_output_is_one_line(scenario, small_tmpfs):
    src, _, _ = scenario
    subprocess.run(["mount", "-o", "remount,ro", str(small_tmpfs)], check=True)
    r = logml("run", "--input", src, "--output", small_tmpfs / "out")
    one_line_error(r)
    assert "read-only file system" in r.stderr


# ----------------------------------------------------------------- state files
@pytest.fixture(scope="module")
def real_state(scenario, tmp_path_factory):
    src, pipeline, _ = scenario
    d = tmp_path_factory.mktemp("state")
    head = d / "head.jsonl"
    head.write_bytes(b"".join(src.read_bytes().splitlines(keepends=True)[:3000]))
    r = logml("run", "--input", head, "--output", d / "out", "--state", d / "state",
              "--keep-open")
    assert r.rc == 0, r.stderr
    return (d / "state").read_bytes()


class _Shell:
    def __init__(self, cmd):
        self.cmd = cmd

    def __reduce__(self):
        return os.system, (self.cmd,)


def _damaged(real: bytes, how: str, marker: Path) -> bytes:
    magic = getattr(snapshot, "MAGIC", b"LOGMLSNAP\n")
    return {
        "empty": b"",
        "garbage": os.urandom(4096),
        "half": real[:len(real) // 2],
        "one_byte_short": real[:-1],
        "header_only": real[:real.find(b"\n", len(magic)) + 1],
        "json": b'{"templates": [], "windows": {}}',
        "png": b"\x89PNG\r\n\x1a\n" + os.urandom(200),
        "other_kind": snapshot.dumps("kafka-offsets", {"x": 1}),
        "raw_pickle": pickle.dumps(_Shell(f"touch {marker}")),
    }[how]


@pytest.mark.parametrize("how", ["empty", "garbage", "half", "one_byte_short", "header_only",
                                 "json", "png", "other_kind", "raw_pickle"])
def test_a_damaged_or_foreign_state_is_refused_in_one_line(scenario, real_state, tmp_path,
                                                           how):
    src, _, _ = scenario
    marker = tmp_path / "owned"
    state = tmp_path / "state"
    state.write_bytes(_damaged(real_state, how, marker))
    out = tmp_path / "out"
    out.mkdir()
    (out / "windows.jsonl").write_bytes(b"earlier output\n")
    r = logml("run", "--input", src, "--output", out, "--state", state)
    one_line_error(r)
    assert "state" in r.stderr
    assert not marker.exists()
    assert (out / "windows.jsonl").read_bytes() == b"earlier output\n"  # nothing touched


def test_a_crafted_pickle_in_a_valid_header_runs_nothing(scenario, tmp_path):
    src, _, _ = scenario
    marker = tmp_path / "owned"
    magic = getattr(snapshot, "MAGIC", b"LOGMLSNAP\n")
    body = zlib.compress(pickle.dumps(_Shell(f"touch {marker}")))
    state = tmp_path / "state"
    state.write_bytes(magic + orjson.dumps({"format": 1, "kind": "pipeline"}) + b"\n" + body)
    r = logml("run", "--input", src, "--output", tmp_path / "out", "--state", state)
    assert not marker.exists(), "the state file ran a shell command"
    one_line_error(r)


def test_a_state_directory_is_one_line(scenario, tmp_path):
    src, _, _ = scenario
    r = logml("run", "--input", src, "--output", tmp_path / "out", "--state", tmp_path)
    one_line_error(r)
