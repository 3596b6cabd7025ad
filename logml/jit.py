"""Loading numba kernels: a notice on stderr when a first run has to compile them.

Kernels are compiled with ``cache=True``, so only the first run on a machine (or after an
upgrade) compiles; later runs load machine code from the cache in well under a second.
``compiling()`` wraps a stretch of kernel loading and, if it lasts longer than a
few seconds, says
once per process what is happening instead of leaving the terminal silent.
"""
from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager

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
