"""Grouping accuracy (GA) on Loghub-style ground truth, the LogPAI definition: a line is
correct when its predicted group holds exactly the lines of its true group."""
from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path


def grouping_accuracy(truth: list[str], predicted: list) -> float:
    true_groups: dict = defaultdict(set)
    pred_groups: dict = defaultdict(set)
    for i, (t, p) in enumerate(zip(truth, predicted, strict=True)):
        true_groups[t].add(i)
        pred_groups[p].add(i)
    correct = 0
    for members in pred_groups.values():
        first = next(iter(members))
        if true_groups[truth[first]] == members:
            correct += len(members)
    return correct / len(truth) if truth else 1.0


def load_loghub(system_dir: Path) -> tuple[list[str], list[str]]:
    """(contents, true event ids) of a Loghub-2k system directory."""
    name = system_dir.name
    with open(system_dir / f"{name}_2k.log_structured.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["Content"] for r in rows], [r["EventId"] for r in rows]
