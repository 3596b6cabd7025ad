"""Where a cold start's compile time goes: ``python -m benchmarks.compile_profile OUT.json --
logml ARGS...`` runs one logml command in this process with numba's compile events recorded
and writes, per kernel, how many specialisations were compiled, their signatures and the
CPU seconds spent (self: without the kernels it called, which are listed separately; total:
including them). CPU time, not wall time: on a shared machine wall time follows the load.
Run it with an empty NUMBA_CACHE_DIR for a cold start; results kept in benchmarks/results/
as compile_parse*.json and compile_demo*.json (parse: the 1,000 lines of test_startup).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import defaultdict

from numba.core import event


def _name(data) -> str:
    d = data["dispatcher"]
    f = d.py_func
    return f"{f.__module__}.{f.__qualname__}"


class _CpuRecorder(event.Listener):
    """Compile events stamped with the process's CPU time."""
    def __init__(self):
        self.buffer = []

    def on_start(self, ev):
        self.buffer.append((time.process_time(), ev))

    on_end = on_start


def profile(argv: list[str]) -> dict:
    """Run ``logml`` with argv; per-kernel compile seconds (self and total)."""
    rec = _CpuRecorder()
    t0, c0 = time.perf_counter(), time.process_time()
    with event.install_listener("numba:compile", rec):
        from logml import jit
        from logml.cli import main
        jit._cached = lambda stem, function: True  # no compiling child: all of it here
        code = main(argv)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    stack: list[list] = []  # [name, sig, start, child seconds]
    kernels: dict[str, dict] = defaultdict(lambda: {"compiles": 0, "self_s": 0.0,
                                                    "total_s": 0.0, "signatures": [],
                                                    "called_from": []})
    for ts, ev in rec.buffer:
        if ev.is_start:
            stack.append([_name(ev.data), str(ev.data["args"]), ts, 0.0])
        else:
            name, sig, start, child = stack.pop()
            took = ts - start
            k = kernels[name]
            k["compiles"] += 1
            k["total_s"] += took
            k["self_s"] += took - child
            k["signatures"].append(sig)
            if stack:
                stack[-1][3] += took
                if stack[-1][0] not in k["called_from"]:
                    k["called_from"].append(stack[-1][0])
    top = sum(k["self_s"] for k in kernels.values())
    ranked = dict(sorted(((n, {**k, "self_s": round(k["self_s"], 2),
                               "total_s": round(k["total_s"], 2)})
                          for n, k in kernels.items()), key=lambda kv: -kv[1]["self_s"]))
    rev = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                         text=True).stdout.strip()
    return {"command": "logml " + " ".join(argv), "revision": rev, "exit": code,
            "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2),
            "compile_s": round(top, 2), "kernels": ranked}


if __name__ == "__main__":
    out, sep, *argv = sys.argv[1:]
    assert sep == "--", "usage: python -m benchmarks.compile_profile OUT.json -- ARGS..."
    real_stdout = sys.stdout
    sys.stdout = open(os.devnull, "w")
    result = profile(argv)
    sys.stdout = real_stdout
    with open(out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"{result['command']}: wall {result['wall_s']} s, cpu {result['cpu_s']} s, compiling {result['compile_s']} s")
    for n, k in list(result["kernels"].items())[:25]:
        print(f"  {k['self_s']:7.2f} s self {k['total_s']:7.2f} s total  x{k['compiles']}  {n}")
