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


# ---------------------------------------------------------------- high-miss workload
_NOVEL = [
    "user {user} logged in from {ip} via {word}",
    "order {order} created by {user} with {n} items",
    "GET /api/v2/items/{n} user={user} host={host} status=200 took {n}ms",
    "session {hex} opened for user {user} on {host}",
    "cache miss for key {user}:{order} on {host}",
    "payment for order {order} failed for {user}: card declined",
    "job {order} scheduled on {host} by {user}",
    "login failed for user {user} from {host} (attempt {n})",
    "sent notification to {user} about order {order}",
    "worker {host} picked task {order} from queue {word}",
]


def _words(rng, n: int, lo: int, hi: int) -> list[str]:
    """n random lower-case words of lo..hi-1 letters."""
    lengths = rng.integers(lo, hi, n)
    letters = rng.integers(97, 123, int(lengths.sum()), dtype=np.uint8).tobytes().decode()
    cut = np.concatenate(([0], np.cumsum(lengths)))
    return [letters[a:b] for a, b in zip(cut[:-1].tolist(), cut[1:].tolist())]


def novel_lines(n: int, seed: int = 13, novel_share: float = 0.6) -> list[bytes]:
    """n raw lines: novel_share of them from ten service templates whose slots hold new
    words most of the time (user names, order ids, host names: not masked, so nearly every
    such line is a new shape), the rest Loghub lines as in ``lines(raw=True)`` (mostly
    shapes seen before). Each line has an ISO timestamp and level header."""
    rng = np.random.default_rng(seed)
    base = lines(n, seed=seed, raw=True)
    pool = _words(rng, 200_000, 6, 12)
    users = [pool[i] for i in rng.integers(0, len(pool), n).tolist()]
    words, orders = _words(rng, n, 4, 9), _words(rng, n, 6, 8)
    hosts = [f"{a}-{b}" for a, b in zip(_words(rng, n, 3, 5), _words(rng, n, 3, 5))]
    novel = (rng.random(n) < novel_share).tolist()
    tmpl = rng.integers(0, len(_NOVEL), n).tolist()
    out = []
    for k in range(n):
        if not novel[k]:
            out.append(base[k])
            continue
        msg = _NOVEL[tmpl[k]].format(user=users[k], ip=f"10.{k % 250}.{k % 97}.{k % 13}",
                                     word=words[k], order="ord-" + orders[k].upper(),
                                     n=k % 977, host=hosts[k],
                                     hex=f"{k * 2654435761 % 2**48:012x}")
        out.append(f"2025-11-30T06:{(k // 60000) % 60:02d}:{(k // 1000) % 60:02d}."
                   f"{k % 1000:03d}Z INFO {msg}".encode())
    return out
