"""``python -m logml.warmup``: compile every numba kernel once, ahead of the first real run.

It drives the real code paths on a few thousand lines (``logml parse`` of plain-text lines,
the embedded pipeline over a short synthetic JSON stream with its windows and scores,
with and without per-line documents), so
exactly the specialisations those commands use land in numba's on-disk cache. ``make demo``
and ``make test`` run it first: a fresh clone compiles once, with a message, not silently
inside a timed test or in two consumers at the same time.
"""
from __future__ import annotations

import io
import sys
import tempfile
import time

PLAIN = b"""\
2025-11-30T06:07:36.120Z INFO api request GET /v1/items/42 took 12ms status=200
2025-11-30 06:07:37,001 WARN db slow query on table orders (1532 ms) from 10.0.0.7
Nov 30 06:07:38 host sshd[1932]: Failed password for root from 192.168.1.4 port 22 ssh2
11-30 06:07:39.512  1795  1825 I PowerManager: acquire lock=233570404, flags=0x1
[Sun Nov 30 06:07:40 2025] [error] mod_jk child workerEnv in error state 6
a line without any header at all
"""


def warm(quiet: bool = False) -> float:
    """Load or compile the kernels of parse and run; seconds taken."""
    from . import jit
    if not quiet:
        print("logml warmup: loading numba kernels (a fresh install compiles them "
              "once: about 35 s of CPU, on two cores when it has them) ...", file=sys.stderr,
              flush=True)
        jit.notice_given()
    t0 = time.perf_counter()
    jit.load_kernels()
    from .config import load
    from .generate import write
    from .parse import parse_stream
    from .run import run_file
    parse_stream(io.BytesIO(PLAIN * 20), io.StringIO(), load())
    with tempfile.TemporaryDirectory(prefix="logml-warmup-") as tmp:
        events, _ = write(tmp, seed=1, hours=0.5, services=2, start=1_764_000_000.0,
                          rate=2.0)
        for logs in (False, True):  # per-line documents have kernels of their own
            run_file(load(overrides={"output.dir": f"{tmp}/out{int(logs)}",
                                     "output.write_logs": logs}), str(events), progress=False)
    took = time.perf_counter() - t0
    if not quiet:
        print(f"logml warmup: kernels ready in {took:.1f} s", file=sys.stderr)
    return took


if __name__ == "__main__":
    warm()
