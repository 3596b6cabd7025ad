"""Start-up: cold first run (numba compiles every kernel: an empty NUMBA_CACHE_DIR) and warm
start (kernels loaded from that cache) of `logml parse` on 1,000 lines and of `logml demo`,
each a fresh process. Wall seconds and the process's CPU seconds (user + system) are both
recorded, with the load average: on a shared machine wall time grows with the load, CPU time
much less. The cold start of ``logml parse`` is measured COLD_RUNS times (each with its own
empty cache): cold_s is the median, cold_runs_s all of them."""
import os
import resource
import statistics
import subprocess
import sys
import time

import pytest

from .workload import DATA

LINES = 1000
COLD_RUNS = 3


@pytest.fixture(scope="module")
def thousand_lines(tmp_path_factory):
    """125 raw lines (own headers) from each of the eight Loghub-2k systems."""
    per = LINES // 8
    out = []
    for d in sorted(p for p in DATA.iterdir() if p.is_dir()):
        out += (d / f"{d.name}_2k.log").read_bytes().splitlines()[:per]
    path = tmp_path_factory.mktemp("startup") / "1k.log"
    path.write_bytes(b"\n".join(out) + b"\n")
    return path


def _timed(cmd, cache_dir, cwd=None):
    """(wall s, CPU s) of one process run with its numba cache in cache_dir."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, env={**os.environ, "NUMBA_CACHE_DIR": str(cache_dir)}, cwd=cwd,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                   timeout=1800)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def test_parse_cold_and_warm_start(benchmark, thousand_lines, tmp_path, record):
    cmd = [sys.executable, "-m", "logml.cli", "parse", str(thousand_lines)]
    load_before = os.getloadavg()[0]
    cold = [_timed(cmd, tmp_path / f"numba-cache-{k}") for k in range(COLD_RUNS)]
    cache = tmp_path / f"numba-cache-{COLD_RUNS - 1}"
    warm = []
    benchmark.pedantic(lambda: warm.append(_timed(cmd, cache)), rounds=3, iterations=1)
    record("startup_parse", workload="logml parse, 1,000 raw Loghub lines (125 per system)",
           cold_s=round(statistics.median(w for w, _ in cold), 2),
           cold_cpu_s=round(statistics.median(c for _, c in cold), 2),
           cold_runs_s=[round(w, 2) for w, _ in cold],
           cold_runs_cpu_s=[round(c, 2) for _, c in cold],
           warm_s=round(min(w for w, _ in warm), 2),
           warm_cpu_s=round(min(c for _, c in warm), 2),
           load_average_1min=round(max(load_before, os.getloadavg()[0]), 1),
           cores=os.cpu_count())


def test_demo_cold_start(benchmark, tmp_path, record):
    cmd = [sys.executable, "-m", "logml.cli", "demo", "--out", str(tmp_path / "demo")]
    cache = tmp_path / "numba-cache"
    load_before = os.getloadavg()[0]
    runs = []
    benchmark.pedantic(lambda: runs.append(_timed(cmd, cache)), rounds=1, iterations=1)
    warm_s, warm_cpu = _timed(cmd, cache)
    record("startup_demo", workload="logml demo (3 services, 4 h of synthetic logs from its fixed "
           "start, 202k lines)",
           cold_s=round(runs[0][0], 2), cold_cpu_s=round(runs[0][1], 2),
           warm_s=round(warm_s, 2), warm_cpu_s=round(warm_cpu, 2),
           compile_s=round(runs[0][0] - warm_s, 2),
           load_average_1min=round(max(load_before, os.getloadavg()[0]), 1),
           cores=os.cpu_count())
