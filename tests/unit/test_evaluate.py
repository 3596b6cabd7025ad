import orjson
import pytest

from logml.evaluate import evaluate, format_report, load_anomalies

S = 1_764_000_000.0  # labels start; the run lasts one day, two services = 2 service-days
W = 60


def iso(t: float) -> str:
    import time
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".000Z"


def nested(svc, t, typ, sev, iid=None, score=50.0):
    doc = {"service": {"name": svc}, "@timestamp": iid and iso(t) or t,
           "logml": {"anomaly": {"type": typ}, "severity": sev, "anomaly_score": score}}
    if iid:
        doc["logml"]["incident_id"] = iid
    return doc


def flat(svc, t, typ, sev, iid=None):
    doc = {"service.name": svc, "@timestamp": iso(t), "logml.anomaly.type": typ,
           "logml.severity": sev, "logml.anomaly_score": 70}
    if iid:
        doc["logml.incident_id"] = iid
    return doc


LABELS = {
    "seed": 1, "start": S, "end": S + 86400, "services": ["api", "db"],
    "window_seconds_hint": 60,
    "incidents": [
        {"id": "inc-1", "service": "api", "type": "spike", "start": S + 3600, "end": S + 3900},
        {"id": "inc-2", "service": "db", "type": "drop", "start": S + 7230, "end": S + 7530},
        {"id": "inc-3", "service": "api", "type": "new_template", "start": S + 10000,
         "end": S + 10300},
        {"id": "inc-4", "service": "db", "type": "error_rate", "start": S + 20000,
         "end": S + 20300},
    ],
}

ANOMALIES = [
    # inc-1: detected at once (nested keys, epoch seconds), two windows of one logml incident
    nested("api", S + 3600, "spike", "critical", iid="L1"),
    nested("api", S + 3660, "spike", "warning", iid="L1"),
    # inc-2: detected two windows late = still in time (flat keys, ISO timestamps)
    flat("db", S + 7320, "drop", "warning"),
    # inc-3: found only 4 windows after its start: late
    {"service": {"name": "api"}, "@timestamp": iso(S + 10200),
     "logml": {"anomaly.type": "new_template", "severity": "critical"}},
    # inc-4 is missed; api has a false alarm at that time (two adjacent windows, no id)
    flat("api", S + 20040, "error_rate", "warning"),
    flat("api", S + 20100, "error_rate", "warning"),
    # one false logml incident spread over two anomalies with one id: severity = the highest
    nested("db", S + 50000, "spike", "critical", iid="L9"),
    flat("db", S + 50600, "spike", "warning", iid="L9"),
    # epoch milliseconds and ECS event.severity
    {"service": {"name": "api"}, "@timestamp": (S + 60000) * 1000,
     "logml.anomaly.type": "drop", "event": {"severity": "warning"}},
    flat("db", S + 70000, "new_template", "warning"),
    # no timestamp: skipped
    {"service.name": "db", "logml.anomaly.type": "spike", "logml.severity": "warning"},
]


def test_evaluate_mixed_case():
    r = evaluate(ANOMALIES, LABELS)
    rows = {x["id"]: x for x in r["incidents"]}
    assert rows["inc-1"]["detected_in_time"] and rows["inc-1"]["delay_windows"] == 0
    assert rows["inc-1"]["matched_types"] == ["spike"]
    assert rows["inc-1"]["max_severity"] == "critical"
    assert rows["inc-2"]["detected_in_time"] and rows["inc-2"]["delay_windows"] == 2
    assert rows["inc-3"]["detected"] and not rows["inc-3"]["detected_in_time"]
    assert rows["inc-3"]["delay_windows"] == 4 and rows["inc-3"]["delay_seconds"] == 200
    assert not rows["inc-4"]["detected"] and rows["inc-4"]["delay_windows"] is None
    assert r["recall"] == pytest.approx(2 / 4)
    assert r["recall_any_delay"] == pytest.approx(3 / 4)
    assert r["recall_by_type"]["spike"]["recall"] == 1.0
    assert r["recall_by_type"]["error_rate"]["recall"] == 0.0
    assert r["mean_delay_windows"] == pytest.approx(2.0)

    t = r["totals"]
    assert t["anomalies"] == 10 and t["skipped_anomalies"] == 1
    assert t["matched_anomalies"] == 4 and t["false_alarm_anomalies"] == 6
    assert r["precision"] == pytest.approx(0.4)
    # groups: L1, inc-2 run, inc-3 run (true); api run, L9, api single, db single (false)
    assert t["logml_incidents"] == 7 and t["true_logml_incidents"] == 3
    assert r["incident_precision"] == pytest.approx(3 / 7)
    assert t["false_alarms"] == 4
    assert r["false_alarms_by_severity"] == {"warning": 3, "critical": 1}
    assert r["false_alarm_anomalies_by_severity"] == {"warning": 5, "critical": 1}
    assert r["service_days"] == pytest.approx(2.0)
    per_sd = r["false_alarms_per_service_day"]
    assert per_sd["warning"] == pytest.approx(1.5) and per_sd["critical"] == pytest.approx(0.5)
    assert per_sd["total"] == pytest.approx(2.0)
    l9 = [g for g in r["false_alarms"] if g["key"] == "L9"]
    assert len(l9) == 1 and l9[0]["anomalies"] == 2 and l9[0]["severity"] == "critical"
    assert t["detected"] == 3 and t["late"] == 1 and t["missed"] == 1

    text = format_report(r)
    for s in ("inc-1", "inc-4", "MISSED", "late", "recall", "50.0%", "L9",
              "1.50/service-day", "0.50/service-day"):
        assert s in text, s


def test_tolerance_edges_and_normalisation():
    labels = {"start": S, "end": S + 6 * 3600, "services": ["a", "b", "c", "d"],
              "incidents": [{"id": "i", "service": "a", "type": "spike",
                             "start": S + 3630, "end": S + 3930}]}
    # window opening 60 s before the start still counts (it holds the start)
    r = evaluate([flat("a", S + 3570, "spike", "warning")], labels)
    assert r["incidents"][0]["detected_in_time"] and r["incidents"][0]["delay_windows"] == 0
    # end + 2 windows is the last window that matches
    r = evaluate([flat("a", S + 3930 + 120, "spike", "warning")], labels)
    assert r["incidents"][0]["detected"] and r["precision"] == 1.0
    r = evaluate([flat("a", S + 3930 + 180, "spike", "critical"),
                  flat("b", S + 3630, "spike", "critical")], labels)
    assert not r["incidents"][0]["detected"] and r["precision"] == 0.0
    # 2 critical false alarms over 4 services x 0.25 days = 1 service-day
    assert r["false_alarms_by_severity"] == {"warning": 0, "critical": 2}
    assert r["false_alarms_per_service_day"]["critical"] == pytest.approx(2.0)
    assert r["false_alarms_per_service_day"]["warning"] == 0.0
    # custom window and delay
    r = evaluate([flat("a", S + 3630 + 5 * 30, "spike", "warning")], labels,
                 window_seconds=30, max_delay_windows=5)
    assert r["incidents"][0]["delay_windows"] == 5 and r["recall"] == 1.0


def test_empty_inputs():
    r = evaluate([], {"start": S, "end": S + 3600, "services": ["a"], "incidents": []})
    assert r["recall"] is None and r["precision"] is None and r["incident_precision"] is None
    assert r["totals"]["false_alarms"] == 0
    assert "recall" in format_report(r)
    r = evaluate([], LABELS)
    assert r["recall"] == 0.0 and r["totals"]["missed"] == 4


def test_load_anomalies(tmp_path):
    p = tmp_path / "a.jsonl"
    p.write_bytes(orjson.dumps(ANOMALIES[0]) + b"\n\n" + orjson.dumps({"_source": ANOMALIES[2]})
                  + b"\n")
    docs = load_anomalies(p)
    assert docs == [ANOMALIES[0], ANOMALIES[2]]
    q = tmp_path / "a.json"
    q.write_bytes(orjson.dumps(ANOMALIES[:3]))
    assert load_anomalies(str(q)) == ANOMALIES[:3]
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"a": 1}\n{nope\n')
    with pytest.raises(ValueError, match=":2:"):
        load_anomalies(bad)


def test_perfect_detector_on_generated_labels():
    from logml.generate import generate
    _, labels = generate(1, 3, 3, start=S, rate=0.05)
    anomalies = [flat(i["service"], (i["start"] // 60) * 60, i["type"], "critical")
                 for i in labels["incidents"]]
    r = evaluate(anomalies, labels)
    assert r["recall"] == 1.0 and r["precision"] == 1.0 and r["incident_precision"] == 1.0
    assert r["totals"]["false_alarms"] == 0


# ---------------------------------------------------------------- NAB score, onset, probation
def _nab_labels(**extra):
    return {"services": ["api"], "start": 0.0, "end": 86400.0, **extra,
            "incidents": [{"id": "inc-1", "service": "api", "type": "spike",
                           "start": 3600.0, "end": 4200.0}]}


def _doc(ts, sev="critical"):
    from logml.docs import iso
    return {"@timestamp": iso(ts), "service": {"name": "api"},
            "logml": {"anomaly": {"type": "spike"}, "severity": sev}}


def test_nab_score_null_perfect_early_and_false_positives():
    labels = _nab_labels()
    assert evaluate([], labels)["nab"]["standard"]["score"] == pytest.approx(0.0)
    perfect = evaluate([_doc(3540.0)], labels)["nab"]["standard"]["score"]
    assert perfect == pytest.approx(100.0)
    late = evaluate([_doc(4200.0)], labels)["nab"]["standard"]["score"]
    assert 0.0 < late < perfect
    noisy = evaluate([_doc(3540.0), _doc(20000.0), _doc(30000.0)], labels)["nab"]
    assert noisy["standard"]["score"] < perfect
    assert noisy["reward_low_fp"]["score"] < noisy["standard"]["score"]
    assert noisy["standard"]["false_detections"] == 2


def test_onset_matches_early_and_probation_is_not_scored():
    labels = _nab_labels(probation_seconds=1800.0)
    labels["incidents"][0]["onset"] = 3000.0
    r = evaluate([_doc(100.0), _doc(3060.0)], labels)
    assert r["recall"] == 1.0 and r["incidents"][0]["delay_windows"] == 0
    assert r["totals"]["probation_anomalies"] == 1 and r["false_alarms"] == []
    assert r["service_days"] == pytest.approx((86400 - 1800) / 86400)


def test_an_alarm_running_since_before_the_onset_is_flagged_not_hidden():
    """A run of anomalies that began well before an incident and runs into its onset
    matches it (the rules allow from onset - W) but is flagged as an earlier alarm; an
    anomaly that starts inside the incident is a finding."""
    labels = {"services": ["api", "db"], "start": S, "end": S + 86400, "incidents": [
        {"id": "seasonal", "service": "api", "type": "seasonal", "onset": S + 6000,
         "start": S + 6600, "end": S + 9000},
        {"id": "drop", "service": "db", "type": "drop", "start": S + 6000, "end": S + 6600}]}
    anomalies = [flat("api", S + t, "drop", "warning", iid="api-run")
                 for t in range(5100, 5941, W)]
    anomalies.append(flat("db", S + 6060, "drop", "critical", iid="db-run"))
    res = evaluate(anomalies, labels, W, 2)
    by_id = {r["id"]: r for r in res["incidents"]}
    assert by_id["seasonal"]["detected_in_time"]
    assert by_id["seasonal"]["alarm_began_windows_before"] == 15
    assert by_id["drop"]["alarm_began_windows_before"] == 0
    assert res["totals"]["in_time_through_earlier_alarm"] == 1
    assert "1 first matched by an alarm already running before" in format_report(res)
    assert "(alarm from 15 before onset)" in format_report(res)
