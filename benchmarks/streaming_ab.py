"""One streaming consumer, an earlier revision against the working tree: the same lines,
Kafka and Elasticsearch, alternating rounds (so load on the shared machine hits both), with
per-line documents on and off, as benchmarks/test_streaming.py runs them.

    python benchmarks/streaming_ab.py [BEFORE_REV] [ROUNDS]

BEFORE_REV (default main) is exported with `git archive` into a temporary directory and
its kernels compiled there first; both run with this venv's packages. Needs the services
(tests/services/up kafka elasticsearch). Writes benchmarks/results/streaming_ab.json."""
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "tests" / "integration")]
import orjson  # noqa: E402

import benchmarks.test_streaming as bench  # noqa: E402
from logml.generate import write  # noqa: E402
from servicekit import services  # noqa: E402


def main() -> None:
    before = sys.argv[1] if len(sys.argv) > 1 else "main"
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    env = services("kafka", "elasticsearch")
    work = Path(tempfile.mkdtemp(prefix="logml-stream-ab-"))
    try:
        old = work / "before"
        old.mkdir()
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", before],
                             check=True, capture_output=True, text=True).stdout.strip()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", rev], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
        subprocess.run([sys.executable, "-m", "logml.warmup"], cwd=old, check=True,
                       capture_output=True)
        events, _ = write(work / "gen", seed=9, hours=1, services=bench.SERVICES,
                          start=1_764_000_000.0, rate=6.0)
        lines = events.read_bytes().splitlines()
        records = [(orjson.loads(x)["service"]["name"].encode(), x) for x in lines]
        trees = {"before": old, "after": REPO}
        runs: dict = {f"{t}_{m}": [] for t in trees for m in ("documents", "no_documents")}
        for r in range(rounds):
            for write_logs in (False, True):
                mode = "documents" if write_logs else "no_documents"
                for name in (("before", "after") if r % 2 == 0 else ("after", "before")):
                    bench.REPO = trees[name]  # the consumers run from that tree
                    out = bench.run_logml(env, records, lines, 1, write_logs, work)
                    runs[f"{name}_{mode}"].append(
                        {"lines_per_s": out["lines_per_s"],
                         "cpu_us_per_line": out["cpu_us_per_line"],
                         "seconds": out["consumers"][0]["seconds"],
                         "load_average": round(os.getloadavg()[0], 2)})
                    print(r + 1, name, mode, out["lines_per_s"], flush=True)
        bench.REPO = REPO
        median = {k: round(statistics.median(x["lines_per_s"] for x in v))
                  for k, v in runs.items()}
        result = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "machine": platform.machine(), "python": platform.python_version(),
                  "before": rev, "after": "working tree", "lines": len(lines),
                  "partitions": bench.PARTITIONS, "rounds": rounds,
                  "median_lines_per_s": median,
                  "ratio_after_to_before": {m: round(median[f"after_{m}"]
                                                     / median[f"before_{m}"], 2)
                                            for m in ("documents", "no_documents")},
                  "runs": runs}
        out_path = REPO / "benchmarks" / "results" / "streaming_ab.json"
        out_path.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps({k: result[k] for k in ("median_lines_per_s",
                                                 "ratio_after_to_before")}))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
