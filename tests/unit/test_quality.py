"""The quality bar on scenarios the detector was not tuned on: generate, run, eval.

The start is fixed: the generated traffic follows the hour of day, and with the default
start (the whole hours before now) the result depended on when the test ran. Over the
24 start hours of a day (session 7, detector at 3df7d16), seed 314159 had one false
critical at start hours 18 and 20 UTC (at 18: a single window of the api's DELETE
template, 23 lines against 9.2) and none at the other 22, seed 90210 none at all: 2
false criticals in 18 service-days, 0.11 a service-day, but this scenario is 0.75
service-days, so one alarm is 1.33 and over the bar. The fixed start (the hard
scenarios', 00:00 UTC) was not chosen for its result."""
import json
import subprocess
import sys

import pytest


@pytest.mark.slow
@pytest.mark.parametrize("seed,hours,services", [(90210, 8, 5), (314159, 6, 3)])
def test_every_incident_found_within_two_windows_with_few_critical_false_alarms(
        tmp_path, seed, hours, services):
    def logml(*args):
        p = subprocess.run([sys.executable, "-m", "logml.cli", *map(str, args)],
                           capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stderr[-3000:]
        return p.stdout

    logml("generate", "--seed", seed, "--hours", hours, "--services", services,
          "--rate", 6, "--start", "2025-11-25T00:00:00Z", "--out", tmp_path / "gen")
    logml("run", "--input", tmp_path / "gen" / "events.jsonl", "--output", tmp_path / "out")
    result = json.loads(logml("eval", tmp_path / "out" / "anomalies.jsonl",
                              tmp_path / "gen" / "labels.json", "--json"))
    report = logml("eval", tmp_path / "out" / "anomalies.jsonl", tmp_path / "gen" / "labels.json")
    print(report)
    assert result["totals"]["incidents"] >= 4
    assert {r["type"] for r in result["incidents"]} == {"spike", "drop", "new_template",
                                                         "error_rate"}
    assert result["recall"] == 1.0, report
    assert result["false_alarms_per_service_day"]["critical"] <= 1.0, report
