"""The alert budget on a held-out hard scenario (logml.hardgen.HELDOUT_SCENARIOS): bursty,
seasonal traffic with many small templates, gradual and seasonal incidents. The false
alarms are within the budget; recall within 2 windows is not (seasonal incidents, gradual
drops and spikes in bursty templates come late: docs/detection.md): strict xfail, so
closing the gap turns this red until the marker goes."""
import json
import subprocess
import sys

import pytest

from logml.hardgen import HELDOUT_SCENARIOS


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="hard held-out recall not met: 11/14 within 2 windows "
                   "(false alarms 0.3 critical, 0.9 warnings per service-day: within budget)")
def test_alert_budget_on_held_out_hard_scenario(tmp_path):
    sc = HELDOUT_SCENARIOS[1]

    def logml(*args):
        p = subprocess.run([sys.executable, "-m", "logml.cli", *map(str, args)],
                           capture_output=True, text=True, timeout=1200)
        assert p.returncode == 0, p.stderr[-3000:]
        return p.stdout

    logml("generate", "--hard", "--seed", sc["seed"], "--hours", sc["hours"], "--services",
          sc["services"], "--rate", sc["rate"], "--out", tmp_path / "gen")
    logml("run", "--input", tmp_path / "gen" / "events.jsonl", "--output", tmp_path / "out")
    result = json.loads(logml("eval", tmp_path / "out" / "anomalies.jsonl",
                              tmp_path / "gen" / "labels.json", "--json"))
    per_sd = result["false_alarms_per_service_day"]
    assert result["recall"] == 1.0
    assert per_sd["critical"] <= 1.0 and per_sd["warning"] <= 2.0
