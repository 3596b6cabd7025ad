"""Grouping accuracy and throughput per Loghub-2k system (the development set): logml with
its one default configuration (online: each line's template as it arrives), drain3 with
its example configuration and Brain with one setting (offline), all in this run."""
import time

import pytest

from logml.accuracy import brain_groups, grouping_accuracy, load_loghub
from logml.baseline import drain3_miner
from logml.template import TemplateEngine

from .workload import DATA


def _timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def _drain3(messages):
    miner = drain3_miner()
    return [miner.add_log_message(m)["cluster_id"] for m in messages]


def test_accuracy_and_speed_per_system(benchmark, record):
    pytest.importorskip("logparser.Brain")
    TemplateEngine().template_batch(["warm up the kernels 1"])
    rows = {}

    def run_all():
        for d in sorted(p for p in DATA.iterdir() if p.is_dir()):
            messages, truth = load_loghub(d)
            ours, ours_s = _timed(lambda m: TemplateEngine().template_batch(m).tolist(),
                                  messages)
            theirs, drain3_s = _timed(_drain3, messages)
            brain, brain_s = _timed(brain_groups, messages)
            rows[d.name] = {
                "lines": len(messages),
                "logml_ga": round(grouping_accuracy(truth, ours), 3),
                "drain3_ga": round(grouping_accuracy(truth, theirs), 3),
                "brain_ga": round(grouping_accuracy(truth, brain), 3),
                "logml_lines_per_s": round(len(messages) / ours_s),
                "drain3_lines_per_s": round(len(messages) / drain3_s),
                "brain_lines_per_s": round(len(messages) / brain_s)}
    benchmark.pedantic(run_all, rounds=1, iterations=1)
    avg = {k: round(sum(r[k] for r in rows.values()) / len(rows), 4)
           for k in ("logml_ga", "drain3_ga", "brain_ga")}
    record("accuracy_loghub2k", workload="Loghub-2k development set (8 systems, 2,000 "
           "lines each; a fresh engine per system, so mostly new shapes)",
           average=avg, systems=rows)
