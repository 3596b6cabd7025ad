"""Shared benchmark plumbing: results are saved as JSON under benchmarks/results/."""
import json
import platform
import time
from pathlib import Path

import pytest

RESULTS = Path(__file__).parent / "results"


@pytest.fixture
def record():
    """record(name, **numbers): merge numbers into benchmarks/results/NAME.json."""
    def write(name: str, **numbers):
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{name}.json"
        data = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
                "python": platform.python_version(), **numbers}
        path.write_text(json.dumps(data, indent=2) + "\n")
        print(f"\n{name}: " + ", ".join(f"{k}={v}" for k, v in numbers.items()))
    return write
