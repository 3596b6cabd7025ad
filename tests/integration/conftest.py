"""Session fixtures that start the real services once, through tests/services/up.

A service that cannot be provisioned fails the test with the reason; it is never skipped.
"""
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_started: dict[str, dict[str, str]] = {}


def services(*names: str) -> dict[str, str]:
    """Start NAMES (idempotent) and return the KEY=value environment `up` printed."""
    key = " ".join(names)
    if key not in _started:
        proc = subprocess.run(
            [str(REPO / "tests/services/up"), *names],
            capture_output=True, text=True, timeout=3000,
        )
        if proc.returncode != 0:
            pytest.fail(
                f"could not provision {key} (tests/services/up exit {proc.returncode}):\n"
                f"{proc.stderr[-4000:]}", pytrace=False)
        env = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
        os.environ.update(env)
        _started[key] = env
    return _started[key]


@pytest.fixture(scope="session")
def kafka_env():
    return services("kafka")


@pytest.fixture(scope="session")
def es_env():
    return services("elasticsearch")


@pytest.fixture(scope="session")
def prometheus_env():
    return services("prometheus")


@pytest.fixture(scope="session")
def alertmanager_env():
    return services("alertmanager")


@pytest.fixture(scope="session")
def filebeat_env():
    return services("filebeat")
