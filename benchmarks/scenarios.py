"""What the hard-scenario benchmarks (``hard_eval``, ``drop_floor``, ``detectability``)
share: choosing scenarios from the command line, and a results file that says when, where
and at which commit it was measured."""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
from pathlib import Path

from logml.hardgen import HELDOUT_SCENARIOS, TUNING_SCENARIOS

RESULTS = Path(__file__).parent / "results"
SETS = (("tuning", TUNING_SCENARIOS), ("held-out", HELDOUT_SCENARIOS))


def chosen(argv, doc: str, sets=SETS) -> list[tuple[str, dict]]:
    """(set, scenario) of the scenarios the command line names (``--only NAME ...``), else
    of every scenario in ``sets``, in order."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", help="scenario names")
    args = ap.parse_args(argv)
    return [(kind, sc) for kind, lst in sets for sc in lst
            if not args.only or sc["name"] in args.only]


def write(name: str, body: dict) -> Path:
    """benchmarks/results/<name>: body after the time, machine, Python and commit."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=Path(__file__).parent).stdout.strip()
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / name
    path.write_text(json.dumps({
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": platform.machine(), "python": platform.python_version(),
        "commit": commit, **body}, indent=2) + "\n")
    return path
