"""Grouping accuracy on Loghub-2k with the one global default configuration."""
from pathlib import Path

import pytest

from logml.accuracy import grouping_accuracy, load_loghub
from logml.baseline import drain3_miner
from logml.template import TemplateEngine

DATA = Path(__file__).resolve().parents[1] / "data" / "loghub-2k"


def systems():
    if not DATA.is_dir():
        pytest.fail(f"Loghub-2k development set not found at {DATA}")
    return sorted(p for p in DATA.iterdir() if p.is_dir())


def test_grouping_accuracy_beats_drain3_on_average():
    rows = []
    for system in systems():
        messages, truth = load_loghub(system)
        engine = TemplateEngine()
        ours = grouping_accuracy(truth, engine.template_batch(messages).tolist())
        miner = drain3_miner()
        theirs = grouping_accuracy(truth, [miner.add_log_message(m)["cluster_id"]
                                           for m in messages])
        rows.append((system.name, ours, theirs))
    table = "\n".join(f"{n:10s} logml {a:.3f}  drain3 {b:.3f}" for n, a, b in rows)
    ours_avg = sum(r[1] for r in rows) / len(rows)
    theirs_avg = sum(r[2] for r in rows) / len(rows)
    print(f"\n{table}\naverage    logml {ours_avg:.3f}  drain3 {theirs_avg:.3f}")
    assert len(rows) == 8
    assert ours_avg >= theirs_avg, table


def test_grouping_accuracy_definition():
    assert grouping_accuracy(["a", "a", "b"], [1, 1, 2]) == 1.0
    assert grouping_accuracy(["a", "a", "b"], [1, 1, 1]) == 0.0
    assert grouping_accuracy(["a", "a", "b"], [1, 2, 3]) == pytest.approx(1 / 3)
