"""Start the real services through tests/services/up, once per test session.

A service that cannot be provisioned fails the test with the reason; it is never skipped.
"""
import os
import signal
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_started: dict[str, dict[str, str]] = {}


def services(*names: str) -> dict[str, str]:
    """Start NAMES (idempotent) and return the KEY=value environment `up` printed."""
    key = " ".join(names)
    if key not in _started:
        proc = subprocess.run([str(REPO / "tests/services/up"), *names],
                              capture_output=True, text=True, timeout=3000)
        if proc.returncode != 0:
            pytest.fail(f"could not provision {key} (tests/services/up exit {proc.returncode}):"
                        f"\n{proc.stderr[-4000:]}", pytrace=False)
        env = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
        os.environ.update(env)
        _started[key] = env
    return _started[key]


def stop_group(proc: subprocess.Popen, timeout: float = 30) -> None:
    """Stop a process started with start_new_session=True and its children: TERM, then KILL."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
