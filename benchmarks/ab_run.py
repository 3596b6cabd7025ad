"""`logml run` end to end, in process: an earlier revision of this repository against the
working tree, same data, same machine, alternating rounds (so load on the machine hits both).

    python benchmarks/ab_run.py [BEFORE_REV] [ROUNDS]

BEFORE_REV (default 85a0870, the main before the event-time work) is checked out with
`git worktree` into a temporary directory; both run with this venv's packages. The workload
is benchmarks' usual one: `logml generate` seed 4, 3 hours, 6 services, 10 lines/s each
(881k JSON events). Writes benchmarks/results/run_end_to_end_ab.json."""
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CODE = r'''
import sys, time
from logml.config import load
from logml.run import run_file
cfg = load(overrides={"output.dir": sys.argv[2]})
run_file(cfg, sys.argv[1], progress=False)  # numba caches loaded
t = time.perf_counter()
run_file(cfg, sys.argv[1], progress=False)
print(time.perf_counter() - t)
'''


def main() -> None:
    before = sys.argv[1] if len(sys.argv) > 1 else "85a0870"
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    work = Path(tempfile.mkdtemp(prefix="logml-ab-"))
    old = work / "before"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "-f", "--detach", str(old),
                    before], check=True, capture_output=True)
    try:
        data = work / "data"
        subprocess.run([sys.executable, "-c", "import sys; from logml.generate import write; "
                        "write(sys.argv[1], seed=4, hours=3, services=6, "
                        "start=1_764_000_000.0, rate=10.0)", str(data)],
                       check=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
        events = data / "events.jsonl"
        lines = sum(1 for _ in open(events, "rb"))
        best = {"before": [], "after": []}
        for _ in range(rounds):
            for name, tree in (("before", old), ("after", REPO)):
                out = subprocess.run(
                    [sys.executable, "-c", CODE, str(events), tempfile.mkdtemp(dir=work)],
                    cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)},
                    capture_output=True, text=True, check=True)
                best[name].append(float(out.stdout.strip().splitlines()[-1]))
        result = {
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": platform.machine(), "python": platform.python_version(),
            "workload": "logml run in process, 881k JSON events (generate seed 4, 3 h, "
                        "6 services), per-line documents off",
            "lines": lines, "before_rev": before, "rounds": rounds,
            "before_lines_per_s": round(lines / min(best["before"])),
            "after_lines_per_s": round(lines / min(best["after"])),
            "after_over_before": round(min(best["before"]) / min(best["after"]), 3),
            "seconds": best, "load_average_1min": os.getloadavg()[0],
        }
        path = REPO / "benchmarks" / "results" / "run_end_to_end_ab.json"
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(old)],
                       capture_output=True)


if __name__ == "__main__":
    main()
