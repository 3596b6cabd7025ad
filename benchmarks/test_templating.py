"""Templating throughput: logml's engine vs plain drain3 on the same messages, one core."""
import os
import subprocess
import sys
import time

import numba
import pytest

from logml.baseline import drain3_miner
from logml.template import TemplateEngine

from .workload import lines

N = 200_000
BATCH = 10_000


@pytest.fixture(scope="module")
def messages():
    return [m.decode() for m in lines(N)]


def _logml(messages):
    engine = TemplateEngine()
    for k in range(0, len(messages), BATCH):
        engine.template_batch(messages[k:k + BATCH])
    return engine


def _drain3(messages):
    miner = drain3_miner()
    for m in messages:
        miner.add_log_message(m)
    return miner


def test_templating_logml_vs_drain3(benchmark, messages, record):
    """One core: numba's thread pool is held to one thread (drain3 is single-threaded)."""
    _logml(messages[:2000])  # jit warm-up (cached on disk after the first run)
    t0 = time.perf_counter()
    _drain3(messages)
    drain3_s = time.perf_counter() - t0
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        engine = benchmark.pedantic(_logml, args=(messages,), rounds=3, iterations=1)
    finally:
        numba.set_num_threads(threads)
    logml_s = benchmark.stats.stats.min
    t0 = time.perf_counter()
    _logml(messages)
    all_cores_s = time.perf_counter() - t0
    ratio = drain3_s / logml_s
    benchmark.extra_info.update(drain3_lines_per_s=N / drain3_s, logml_lines_per_s=N / logml_s,
                                speedup=ratio)
    record("templating", lines=N, logml_lines_per_s_one_core=round(N / logml_s),
           logml_lines_per_s_all_cores=round(N / all_cores_s), cores=os.cpu_count(),
           drain3_lines_per_s=round(N / drain3_s), speedup_one_core=round(ratio, 1),
           templates=len(engine.templates), cached_shapes=len(engine.cache),
           shape_cache_bytes=engine.cache.nbytes)
    assert ratio >= 10, f"logml is only {ratio:.1f}x drain3"


@pytest.fixture(scope="module")
def log_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("parse") / "mixed.log"
    path.write_bytes(b"\n".join(lines(400_000, seed=11, raw=True)) + b"\n")
    return path


def _run(cmd):
    with open(os.devnull, "wb") as devnull:
        subprocess.run(cmd, stdout=devnull, check=True, timeout=1800)


def test_parse_process_vs_drain3_script(benchmark, log_file, record):
    here = os.path.dirname(__file__)
    t0 = time.perf_counter()
    _run([sys.executable, os.path.join(here, "drain3_parse.py"), str(log_file)])
    drain3_s = time.perf_counter() - t0
    benchmark.pedantic(_run, args=([sys.executable, "-m", "logml.cli", "parse",
                                    str(log_file)],), rounds=2, iterations=1)
    logml_s = benchmark.stats.stats.min
    ratio = drain3_s / logml_s
    benchmark.extra_info.update(drain3_s=drain3_s, logml_s=logml_s, speedup=ratio)
    record("parse_process", lines=400_000, logml_s=round(logml_s, 2),
           drain3_script_s=round(drain3_s, 2), speedup=round(ratio, 1))
    assert ratio >= 10, f"logml parse is only {ratio:.1f}x the drain3 script"
