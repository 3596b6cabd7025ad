"""What the hard-scenario benchmarks (``hard_eval``, ``drop_floor``, ``detectability``)
share: choosing scenarios from the command line, and a results file that says when, where
and at which commit it was measured."""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

from logml.hardgen import FRESH_SCENARIOS, HELDOUT_SCENARIOS, TUNING_SCENARIOS

RESULTS = Path(__file__).parent / "results"
SETS = (("tuning", TUNING_SCENARIOS), ("held-out", HELDOUT_SCENARIOS))


def chosen(argv, doc: str, sets=SETS) -> tuple[list[tuple[str, dict]], bool]:
    """((set, scenario) of the scenarios the command line names (``--only NAME ...``, or
    ``--set tuning``: a change in progress is measured there, held-out scenarios only
    check a finished one), else of every scenario in ``sets``, in order; whether that is
    only part of them). The fresh pair (``hardgen.FRESH_SCENARIOS``) runs only when
    named: a full run must not show anyone main's results on it before its check."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", help="scenario names")
    ap.add_argument("--set", choices=[kind for kind, _ in sets],
                    help="only this set's scenarios")
    args = ap.parse_args(argv)
    every = [(kind, sc) for kind, lst in sets for sc in lst]
    named = every + [("fresh", sc) for sc in FRESH_SCENARIOS]
    picked = [(kind, sc) for kind, sc in (named if args.only else every)
              if (not args.only or sc["name"] in args.only) and (not args.set or kind == args.set)]
    return picked, bool(args.only or args.set)


def write(name: str, body: dict, partial: bool = False) -> Path:
    """benchmarks/results/<name>: body after the time, machine, Python and commit. A run of
    part of the scenarios goes to <stem>.partial.json (not tracked), so it never replaces
    the file the README quotes."""
    here = Path(__file__).parent
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=here).stdout.strip()
    changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                              "logml", "benchmarks/*.py"], capture_output=True, text=True,
                             cwd=here.parent).stdout.strip()
    if changed:  # the code that ran is not the commit's
        commit += "+changes"
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / (name.replace(".json", ".partial.json") if partial else name)
    path.write_text(json.dumps({
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": platform.machine(), "python": platform.python_version(),
        "commit": commit, **body}, indent=2) + "\n")
    print(f"wrote {path}", file=sys.stderr)
    return path
