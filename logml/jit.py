"""Loading numba kernels: a notice on stderr when a first run has to compile them.

Kernels are compiled with ``cache=True``, so only the first run on a machine (or after an
upgrade) compiles; later runs load machine code from the cache in well under a second.
``compiling()`` wraps a stretch of kernel loading and, if it lasts longer than a
few seconds, says
once per process what is happening instead of leaving the terminal silent.
``load_kernels()`` loads the kernels every templating command needs, and on a first run
compiles them in two processes at once (numba compiles on one core).
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

NOTICE_AFTER_S = 2.0  # loading cached kernels takes well under this
_noticed = threading.Event()  # one notice per process, however many kernels compile


def notice_given() -> None:
    """The caller has told the user itself (``logml.warmup``): no notice from here on."""
    _noticed.set()


@contextmanager
def compiling():
    """Print the compile notice (once per process) if the enclosed loading takes long."""
    said = threading.Event()

    def notice():
        if not _noticed.is_set():
            _noticed.set()
            said.set()
            print("logml: compiling numba kernels for this machine (first run only; "
                  "`python -m logml.warmup` does it ahead) ...", file=sys.stderr, flush=True)

    timer = threading.Timer(NOTICE_AFTER_S, notice)
    timer.daemon = True
    timer.start()
    t0 = time.perf_counter()
    try:
        yield
    finally:
        timer.cancel()
        if said.is_set():
            print(f"logml: kernels compiled in {time.perf_counter() - t0:.0f} s",
                  file=sys.stderr, flush=True)


def _cached(stem: str, function: str) -> bool:
    """Whether numba's cache holds an index for ``function`` of logml/``stem``.py (stale
    or not: a wrong guess only costs the parallel start)."""
    from numba.core.caching import FunctionCache
    path = Path(FunctionCache(_cached)._cache_path)  # every logml module caches there
    return any(path.glob(f"{stem}.{function}-*.nbi"))


def load_kernels() -> None:
    """Load the decoder's and the template stage's kernels. On a first run with a core to
    spare, a child process compiles the template stage's (masking, matcher: the larger
    part) into the cache while this one compiles the decoder's, then this one loads them;
    a failed child only means this process compiles them itself."""
    with compiling():
        child = None
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        if cores > 1 and not _cached("plaintext", "_scan"):  # any earlier run compiled it
            child = subprocess.Popen([sys.executable, "-c", "import logml.template"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        from . import plaintext  # noqa: F401  compiled (or loaded) at import
        if child is not None:
            child.wait()
        from . import template  # noqa: F401
