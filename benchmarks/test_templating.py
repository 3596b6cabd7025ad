"""Templating throughput: logml's engine vs plain drain3 on the same messages, one core,
and `logml parse` vs a plain drain3 script as whole processes, on a low-miss workload
(Loghub lines, most shapes seen before) and a high-miss one (most lines carry new words)."""
import io
import os
import resource
import subprocess
import sys
import time

import numba
import pytest

from logml.baseline import drain3_miner
from logml.template import TemplateEngine

from .workload import lines, novel_lines

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
    record("templating", workload="Loghub-2k lines, Zipf mix, numbers re-drawn (low miss)",
           cache_hit_rate=round(engine.shape_hits / engine.lines_seen, 3),
           new_shape_rate=round(engine.new_shapes / engine.lines_seen, 3),
           lines=N, logml_lines_per_s_one_core=round(N / logml_s),
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


@pytest.fixture(scope="module")
def novel_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("parse") / "novel.log"
    path.write_bytes(b"\n".join(novel_lines(400_000)) + b"\n")
    return path


def _run(cmd):
    """(wall s, CPU s of the process)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with open(os.devnull, "wb") as devnull:
        subprocess.run(cmd, stdout=devnull, check=True, timeout=1800)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _shape_rates(path) -> tuple[float, float]:
    """(cache-hit rate, new shapes per line) of `logml parse` on the file, in process."""
    from logml.config import load
    from logml.parse import parse_stream
    config = load()
    config.decode.format = "plain"
    with open(path, "rb") as f:
        engine = parse_stream(f, io.StringIO(), config)
    return engine.shape_hits / engine.lines_seen, engine.new_shapes / engine.lines_seen


def _parse_vs_drain3(benchmark, path, name, workload, record):
    here = os.path.dirname(__file__)
    drain3_s, drain3_cpu = _run([sys.executable, os.path.join(here, "drain3_parse.py"),
                                 str(path)])
    runs = []
    benchmark.pedantic(lambda: runs.append(_run([sys.executable, "-m", "logml.cli", "parse",
                                                 str(path)])), rounds=2, iterations=1)
    logml_s, logml_cpu = min(runs)
    hits, new = _shape_rates(path)
    benchmark.extra_info.update(drain3_s=drain3_s, logml_s=logml_s, speedup=drain3_s / logml_s)
    record(name, workload=workload, lines=400_000, cache_hit_rate=round(hits, 3),
           new_shape_rate=round(new, 3), logml_s=round(logml_s, 2),
           drain3_script_s=round(drain3_s, 2), speedup=round(drain3_s / logml_s, 1),
           logml_cpu_s=round(logml_cpu, 2), drain3_cpu_s=round(drain3_cpu, 2),
           speedup_cpu=round(drain3_cpu / logml_cpu, 1),
           load_average_1min=round(os.getloadavg()[0], 1))
    return drain3_s / logml_s


def test_parse_process_vs_drain3_script(benchmark, log_file, record):
    ratio = _parse_vs_drain3(benchmark, log_file, "parse_process", "raw Loghub-2k lines, "
                             "Zipf mix, numbers re-drawn (low miss)", record)
    assert ratio >= 10, f"logml parse is only {ratio:.1f}x the drain3 script"


def test_parse_process_high_miss_vs_drain3_script(benchmark, novel_file, record):
    """Measured, not asserted: the ratio sits near the 10x aim (in CPU time; wall time on
    a shared machine swings with the load), so an assertion would only measure the load."""
    _parse_vs_drain3(benchmark, novel_file, "parse_process_high_miss", "60% of lines from "
                     "service templates with new user names, order ids and hosts in every "
                     "line, 40% raw Loghub-2k lines (high miss)", record)
