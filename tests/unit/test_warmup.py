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


def test_commands_without_templates_load_no_numba():
    """eval, generate, setup and the command line itself import neither numba nor the
    kernels: on a fresh install they do not compile first."""
    code = ("import sys\nfrom logml import cli, evaluate, generate, report, setup\n"
            "print(sorted(m for m in ('numba', 'logml.masking', 'logml.plaintext', "
            "'matplotlib') if m in sys.modules))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == b"[]"


@pytest.mark.slow
def test_warmup_leaves_nothing_to_compile(tmp_path):
    """After ``python -m logml.warmup`` in an empty cache, ``logml parse`` (plain lines) and
    ``logml run`` (JSON events: windows, scores; with and without per-line documents)
    compile no kernel: the warm-up drove the
    same specialisations."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    cached = [sys.executable, "-c", "from logml.jit import _cached\n"
              "print(_cached('plaintext', '_scan'), _cached('plaintext', 'nothing'))"]
    # a first run knows it is one (and compiles in two processes)
    assert subprocess.run(cached, env=env, capture_output=True).stdout.split() == \
        [b"False", b"False"]
    w = subprocess.run([sys.executable, "-m", "logml.warmup"], env=env, capture_output=True,
                       timeout=1800)
    assert w.returncode == 0, w.stderr[-2000:]
    assert b"kernels ready" in w.stderr
    assert subprocess.run(cached, env=env, capture_output=True).stdout.split() == \
        [b"True", b"False"]
    log = tmp_path / "in.log"
    log.write_bytes(b"\n".join((DATA / "Linux" / "Linux_2k.log").read_bytes().splitlines()[:300]))
    count = ("import sys\nfrom numba.core import event\n"
             "class L(event.Listener):\n"
             "    n = []\n"
             "    def on_start(self, ev): self.n.append(ev.data['dispatcher'].py_func.__qualname__)\n"
             "    def on_end(self, ev): pass\n"
             "event.register('numba:compile', L())\n"
             "from logml.cli import main\n"
             "code = main(sys.argv[1:])\n"
             "print('COMPILED', sorted(set(L.n)), file=sys.stderr)\n"
             "sys.exit(code)\n")
    from logml.generate import write
    events, _ = write(tmp_path / "gen", seed=3, hours=0.5, services=2, start=1_764_000_000.0,
                      rate=2.0)
    for args in (["parse", str(log)],
                 ["run", "--input", str(events), "--output", str(tmp_path / "out")],
                 ["run", "--input", str(events), "--output", str(tmp_path / "logs"),
                  "--write-logs"]):
        p = subprocess.run([sys.executable, "-c", count, *args], env=env, capture_output=True,
                           timeout=900)
        assert p.returncode == 0, p.stderr[-2000:]
        assert b"COMPILED []" in p.stderr, (args, p.stderr[-2000:])
