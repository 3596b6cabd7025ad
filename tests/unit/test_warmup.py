"""Kernel start-up: one compiled specialisation per entry point, a notice when compiling is
slow, and two first runs at once sharing one empty cache."""
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from logml import jit, masking, shapecache
from logml.masking import Masker, pack_lines
from logml.shapecache import ShapeCache

DATA = Path(__file__).resolve().parents[1] / "data" / "loghub-2k"


def test_entry_points_keep_one_specialisation():
    m = Masker()
    buf, starts, ends = pack_lines(["took 12ms", "user bob from 10.0.0.1"])
    writable = buf.copy()
    seeds = np.zeros(2, dtype=np.uint64)
    for b in (buf, writable):  # read-only (frombuffer) and writable buffers
        for s, e in ((starts, ends), (starts[::1].copy(), ends.copy()),
                     (np.repeat(starts, 2)[::2], np.repeat(ends, 2)[::2])):  # strided
            m.hashes(b, s, e, seeds)
        m.mask_bytes(b, 0, len(b))
    cache = ShapeCache(capacity=16)
    cache.insert(7, 1)
    cache.lookup(np.array([7, 9], dtype=np.uint64))
    cache.lookup(np.array([7, 9, 11, 13], dtype=np.uint64)[::2])
    for kernel in (masking.shape_hashes, shapecache.lookup, shapecache.insert_all):
        assert len(kernel.signatures) == 1, kernel


def test_slow_compiling_gives_one_notice(monkeypatch, capsys):
    monkeypatch.setattr(jit, "NOTICE_AFTER_S", 0.05)
    monkeypatch.setattr(jit, "_noticed", threading.Event())
    with jit.compiling():
        pass
    assert capsys.readouterr().err == ""
    with jit.compiling():
        time.sleep(0.3)
    err = capsys.readouterr().err
    assert "compiling numba kernels" in err and "kernels compiled in" in err
    with jit.compiling():
        time.sleep(0.3)
    assert capsys.readouterr().err == ""  # once per process


@pytest.mark.slow
def test_two_first_runs_at_once_share_an_empty_cache(tmp_path):
    """Both compile into one empty NUMBA_CACHE_DIR at the same time; both succeed and agree,
    and a third run loads what they wrote."""
    log = tmp_path / "in.log"
    log.write_bytes(b"\n".join((DATA / "Linux" / "Linux_2k.log").read_bytes().splitlines()[:300]))
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "logml.cli", "parse", str(log)]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    outs = [p.communicate(timeout=900) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs[0][1][-2000:] + outs[1][1][-2000:]
    assert outs[0][0] == outs[1][0]
    third = subprocess.run(cmd, env=env, capture_output=True, timeout=900)
    assert third.returncode == 0 and third.stdout == outs[0][0]
    assert b"compiling" not in third.stderr
