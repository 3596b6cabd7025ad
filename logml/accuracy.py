"""Grouping accuracy (GA) on Loghub-style ground truth, the LogPAI definition: a line is
correct when its predicted group holds exactly the lines of its true group. Also the
Brain baseline (LogPAI's logparser3, when installed) with one setting for every system."""
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


# Brain with one setting for every system: the union of the generic regexes LogPAI's own
# per-system Brain settings use (times, IPs, dotted names, numbers and hex) and the median
# of their thresholds. Its tokenizer's per-dataset tweaks stay off (no dataset name).
BRAIN_REGEX = [r"\d{2}:\d{2}(:\d{2})*", r"(\d+\.){3}\d+(:\d+)?", r"([\w-]+\.){2,}[\w-]+",
               r"\b(\-?\+?\d+)\b|\b0[Xx][a-fA-F\d]+\b|\b[a-fA-F\d]{4,}\b"]
BRAIN_THRESHOLD = 4


def brain_groups(messages: list[str]) -> list[int]:
    """Brain's group of each message (offline: it sees all messages first). Needs the
    logparser3 package (installed by `make venv`, without its pinned dependencies)."""
    from logparser.Brain.Brain import LogParser, output_result, tupletree
    parser = LogParser("logml", "<Content>", rex=BRAIN_REGEX, threshold=BRAIN_THRESHOLD)
    by_len, tuples, freqs = parser.get_frequecy_vector(messages, parser.rex, [], "")
    ordered, combos, combos_rev = parser.tuple_generate(by_len, tuples, freqs)
    groups: dict = {}
    for n in by_len:
        tree = tupletree(ordered[n], combos[n], combos_rev[n], tuples[n], by_len[n])
        detail_id, roots, detail = tree.find_root(0)
        detail_id = tree.up_split(detail_id, roots)
        groups.update(output_result(tree.down_split(detail_id, BRAIN_THRESHOLD, detail)))
    labels = [-1] * len(messages)
    for k, members in enumerate(groups.values()):
        for i in members:
            labels[int(i)] = k
    return labels
