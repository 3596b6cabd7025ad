"""Cold start A/B on the same machine at the same time: ``logml parse`` of test_startup's
1,000 lines with an empty numba cache, for an earlier revision's tree and this one, in
alternating rounds (a shared machine's load hits both alike). This tree also runs pinned to
one core (no compiling child: what a one-core machine gets).

``python -m benchmarks.startup_ab BASE_TREE ROUNDS`` (BASE_TREE: a directory holding the
earlier ``logml`` package, e.g. from ``git archive REV logml``) writes
benchmarks/results/startup_parse_ab.json."""
from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .workload import DATA

HERE = Path(__file__).resolve().parents[1]


def _lines(path: Path) -> None:
    out = []
    for d in sorted(p for p in DATA.iterdir() if p.is_dir()):
        out += (d / f"{d.name}_2k.log").read_bytes().splitlines()[:125]
    path.write_bytes(b"\n".join(out) + b"\n")


def _cold(tree: Path, log: Path, pin: bool) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="logml-ab-") as cache:
        cmd = (["taskset", "-c", "0"] if pin else []) + \
            [sys.executable, "-m", "logml.cli", "parse", str(log)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=tree, env={**os.environ, "NUMBA_CACHE_DIR": cache},
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                       timeout=1800)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(base: str, rounds: int) -> dict:
    variants = {"base": (Path(base), False), "this": (HERE, False),
                "this_one_core": (HERE, True)}
    runs: dict[str, list] = {k: [] for k in variants}
    loads = []
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "1k.log"
        _lines(log)
        for _ in range(rounds):
            for name, (tree, pin) in variants.items():
                loads.append(os.getloadavg()[0])
                runs[name].append(_cold(tree, log, pin))
    rev = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                         text=True, cwd=HERE).stdout.strip()
    return {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "workload": "logml parse, 1,000 raw Loghub lines (125 per system), empty cache",
            "base_tree": base, "this_revision": rev, "rounds": rounds,
            "cores": os.cpu_count(),
            "load_average_1min": [round(min(loads), 1), round(max(loads), 1)],
            "runs": {name: {"wall_s": [round(w, 2) for w, _ in r],
                            "cpu_s": [round(c, 2) for _, c in r],
                            "median_wall_s": round(statistics.median(w for w, _ in r), 2),
                            "median_cpu_s": round(statistics.median(c for _, c in r), 2)}
                     for name, r in runs.items()}}


if __name__ == "__main__":
    result = main(sys.argv[1], int(sys.argv[2]))
    out = HERE / "benchmarks" / "results" / "startup_parse_ab.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
