"""Grouping accuracy on the Loghub-2k development set with the one global default
configuration, online (each line's template as it arrives), against drain3 and Brain run
in the same test with one setting each."""
from pathlib import Path

import pytest

from logml.accuracy import brain_groups, grouping_accuracy, load_loghub
from logml.baseline import drain3_miner
from logml.template import TemplateEngine

DATA = Path(__file__).resolve().parents[1] / "data" / "loghub-2k"

# a little below what logml measures (0.895 1.000 0.989 0.951 0.983 0.940 0.920 0.999,
# average 0.960): a drop past them is a regression, not noise
FLOORS = {"Android": 0.87, "Apache": 0.98, "BGL": 0.97, "HPC": 0.93, "HealthApp": 0.96,
          "Linux": 0.92, "Spark": 0.90, "Windows": 0.98}
AVERAGE_FLOOR = 0.94


def systems():
    if not DATA.is_dir():
        pytest.fail(f"Loghub-2k development set not found at {DATA}")
    return sorted(p for p in DATA.iterdir() if p.is_dir())


def _brain_installed() -> bool:
    try:
        import logparser.Brain  # noqa: F401
    except ImportError:  # logparser3 comes with `make venv`, not with `pip install .[test]`
        return False
    return True


@pytest.fixture(scope="module")
def table():
    """(system, logml GA, drain3 GA, Brain GA or nan) per system, and the averages."""
    brain = _brain_installed()
    rows = []
    for system in systems():
        messages, truth = load_loghub(system)
        ours = grouping_accuracy(truth, TemplateEngine().template_batch(messages).tolist())
        miner = drain3_miner()
        drain3 = grouping_accuracy(truth, [miner.add_log_message(m)["cluster_id"]
                                           for m in messages])
        theirs = grouping_accuracy(truth, brain_groups(messages)) if brain else float("nan")
        rows.append((system.name, ours, drain3, theirs))
    avg = tuple(sum(r[k] for r in rows) / len(rows) for k in (1, 2, 3))
    text = "\n".join(f"{n:10s} logml {a:.3f}  drain3 {b:.3f}  brain {c:.3f}"
                     for n, a, b, c in rows + [("average", *avg)])
    print("\n" + text)
    return rows, avg, text


def test_grouping_accuracy_floors(table):
    rows, avg, text = table
    assert [r[0] for r in rows] == sorted(FLOORS)
    low = [(n, round(a, 3)) for n, a, _, _ in rows if a < FLOORS[n]]
    assert not low, f"below the floor: {low}\n{text}"
    assert avg[0] >= AVERAGE_FLOOR, text


def test_grouping_accuracy_beats_drain3(table):
    _, avg, text = table
    assert avg[0] > avg[1], text


def test_grouping_accuracy_beats_brain(table):
    if not _brain_installed():
        pytest.skip("Brain baseline not installed (logparser3, see the Makefile's venv)")
    _, avg, text = table
    assert avg[0] > avg[2], text


def test_grouping_accuracy_definition():
    assert grouping_accuracy(["a", "a", "b"], [1, 1, 2]) == 1.0
    assert grouping_accuracy(["a", "a", "b"], [1, 1, 1]) == 0.0
    assert grouping_accuracy(["a", "a", "b"], [1, 2, 3]) == pytest.approx(1 / 3)
