"""benchmarks/detector_ab.py: what it reports as changed between two eval results."""
from benchmarks.detector_ab import compare, report


def _eval(delays, severities, alarms, nab):
    incidents = [{"id": f"inc-{k}", "type": "spike", "service": "api", "delay_windows": d,
                  "max_severity": s, "detected_in_time": d is not None and d <= 2}
                 for k, (d, s) in enumerate(zip(delays, severities))]
    return {"incidents": incidents,
            "totals": {"incidents": len(incidents),
                       "detected_in_time": sum(i["detected_in_time"] for i in incidents)},
            "false_alarms": [{"key": k, "severity": s} for k, s in alarms],
            "nab": {"standard": {"score": nab}}}


def test_compare_lists_what_moved_and_what_only_one_side_raised():
    base = _eval([0, 1, 3], ["critical", "critical", "warning"],
                 [("api-0100", "warning"), ("db-0200", "critical")], 90.0)
    change = _eval([0, 2, 3], ["critical", "critical", "critical"],
                   [("db-0200", "critical"), ("db-0300", "warning")], 91.5)
    c = compare(base, change)
    assert c["base"] == {"in_time": 2, "incidents": 3, "critical": 1, "warning": 1,
                         "nab": 90.0}
    assert c["change"] == {"in_time": 2, "incidents": 3, "critical": 1, "warning": 1,
                           "nab": 91.5}
    assert [(m["id"], m["delay"], m["severity"]) for m in c["incidents_moved"]] == [
        ("inc-1", [1, 2], ["critical", "critical"]),
        ("inc-2", [3, 3], ["warning", "critical"])]
    assert c["false_alarms_only_base"] == [("api-0100", "warning")]
    assert c["false_alarms_only_change"] == [("db-0300", "warning")]
    text = report({"tune-x": c})
    assert "inc-1 spike api: delay 1 -> 2" in text
    assert "false warning only on the base: api-0100" in text
    assert text.splitlines()[-5].startswith("total")


def test_identical_runs_report_no_difference():
    r = _eval([0, None], ["critical", None], [("api-0100", "warning")], 80.0)
    c = compare(r, r)
    assert c["base"] == c["change"]
    assert not c["incidents_moved"] and not c["false_alarms_only_base"]
    assert not c["false_alarms_only_change"]
