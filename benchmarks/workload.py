"""Benchmark workloads: several log families with realistic repetition.

Lines are drawn from the eight Loghub-2k systems (Android, Apache, BGL, HPC, HealthApp,
Linux, Spark, Windows) with a Zipf-like skew over their templates, and every
stand-alone number is re-drawn so that repeated messages differ in their values as real
ones do.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "loghub-2k"
# values: digit runs that stand alone (not inside words like u0, 0x1f or alt0)
_VALUE = re.compile(rb"(?<![A-Za-z0-9])\d+(?![A-Za-z0-9])")


def _families(raw: bool) -> list[list[bytes]]:
    fams = []
    for d in sorted(p for p in DATA.iterdir() if p.is_dir()):
        if raw:
            fams.append((d / f"{d.name}_2k.log").read_bytes().splitlines())
        else:
            import csv
            with open(d / f"{d.name}_2k.log_structured.csv", newline="") as f:
                fams.append([r["Content"].encode() for r in csv.DictReader(f)])
    return fams


def lines(n: int, seed: int = 7, raw: bool = False) -> list[bytes]:
    """n lines; raw=True keeps each system's own header (timestamps, levels)."""
    rng = np.random.default_rng(seed)
    pool = [line for fam in _families(raw) for line in fam]
    weights = 1.0 / np.arange(1, len(pool) + 1) ** 0.6
    order = rng.permutation(len(pool))
    picks = order[rng.choice(len(pool), size=n, p=weights / weights.sum())]
    digits = rng.integers(0, 10, size=4096).astype(str)
    out = []
    for k, i in enumerate(picks):
        off = k % 4000
        counter = iter(digits[off:off + 96])
        out.append(_VALUE.sub(lambda m: "".join(next(counter, "5") for _ in m.group(0))
                              .encode(), pool[i]))
    return out
