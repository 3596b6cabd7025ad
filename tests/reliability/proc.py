"""Running ``logml`` as a child process and reading what it wrote: exit code, stderr, peak
memory (the child's own getrusage), wall time, and the accounting of its outputs."""
from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Result:
    rc: int
    stderr: str
    rss_mb: float
    wall_s: float


MEMORY_LIMIT_MB = 3072  # a run past this fails with MemoryError instead of eating the host


def start(*args, stdin=None, limit_mb: int = MEMORY_LIMIT_MB, **kw) -> subprocess.Popen:
    """``logml ARGS`` through the launcher below (see ``wait``)."""
    return subprocess.Popen([sys.executable, "-m", "tests.reliability.proc", str(limit_mb),
                             sys.executable, "-m", "logml.cli", *map(str, args)],
                            stdin=stdin if stdin is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, cwd=REPO, **kw)


def wait(p: subprocess.Popen, timeout: float, t0: float | None = None) -> tuple[int, float,
                                                                              float]:
    """(exit code, peak RSS in MB, seconds) of a started child; killed after timeout.

    Linux carries a parent's resident size into a child's ru_maxrss across fork and exec,
    so the test process's own size would count; the small launcher in between measures
    the run alone."""
    t0 = time.monotonic() if t0 is None else t0
    try:
        out, _ = p.communicate(timeout=max(timeout - (time.monotonic() - t0), 0.1))
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGUSR1)  # the launcher kills the run and reports
        out, _ = p.communicate()
    rss = float(out.split()[-1]) / 1024 if out.strip() else float("nan")
    return p.returncode, rss, time.monotonic() - t0


def logml(*args, stdin=None, timeout: float = 300) -> Result:
    with tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        p = start(*args, stdin=stdin, stderr=err)
        rc, rss, wall = wait(p, timeout, t0)
        err.seek(0)
        return Result(rc, err.read().decode(errors="replace"), rss, wall)


def docs(path: Path) -> list[dict]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines()] if path.exists() else []


def one_line_error(r: Result) -> None:
    """An operator's mistake: exit 2 and one line ``logml: error: ...``, no traceback."""
    lines = r.stderr.strip().splitlines()
    assert r.rc == 2, r.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("logml: error: "), r.stderr[-2000:]


def _launch(limit_mb: int, argv: list[str]) -> int:
    """Run argv with a data-size limit, pass SIGTERM/SIGINT on (SIGUSR1: kill it), print
    its peak RSS (KiB) on stdout and exit with its exit code."""
    limit = limit_mb << 20

    def cap():
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    child = subprocess.Popen(argv, preexec_fn=cap, stdout=subprocess.DEVNULL)
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda signum, _f: child.send_signal(signum))
    signal.signal(signal.SIGUSR1, lambda *_: child.kill())
    while True:
        try:
            _, status, usage = os.wait4(child.pid, 0)
            break
        except InterruptedError:
            continue
    child.returncode = os.waitstatus_to_exitcode(status)
    print(usage.ru_maxrss, flush=True)
    return child.returncode if child.returncode >= 0 else 128 - child.returncode


if __name__ == "__main__":
    sys.exit(_launch(int(sys.argv[1]), sys.argv[2:]))
