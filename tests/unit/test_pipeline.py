"""The embedded pipeline end to end through the command line (no services)."""
import subprocess
import sys
import urllib.request

import numpy as np
import orjson
import pytest

from logml.generate import write


def logml(*args, timeout=300):
    p = subprocess.run([sys.executable, "-m", "logml.cli", *map(str, args)],
                       capture_output=True, timeout=timeout)
    assert p.returncode == 0, p.stderr.decode()[-3000:]
    return p


def docs(path):
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] \
        if path.exists() else []


def _key(d):
    return orjson.dumps(d, option=orjson.OPT_SORT_KEYS)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    d = tmp_path_factory.mktemp("scenario")
    events, labels = write(d, seed=42, hours=3, services=2, start=1_764_000_000.0, rate=4.0)
    return events, labels


def test_restart_from_snapshot_gives_identical_anomalies(scenario, tmp_path):
    events, _ = scenario
    lines = events.read_bytes().splitlines(keepends=True)
    cut = len(lines) // 2 + 17  # mid-window
    (tmp_path / "h1.jsonl").write_bytes(b"".join(lines[:cut]))
    (tmp_path / "h2.jsonl").write_bytes(b"".join(lines[cut:]))
    logml("run", "--input", events, "--output", tmp_path / "whole")
    state = tmp_path / "state.snap"
    logml("run", "--input", tmp_path / "h1.jsonl", "--output", tmp_path / "parts", "--state",
          state, "--keep-open")
    assert state.exists()
    logml("run", "--input", tmp_path / "h2.jsonl", "--output", tmp_path / "parts", "--state",
          state)
    whole = sorted(map(_key, docs(tmp_path / "whole" / "anomalies.jsonl")))
    parts = sorted(map(_key, docs(tmp_path / "parts" / "anomalies.jsonl")))
    assert whole and whole == parts
    assert sorted(map(_key, docs(tmp_path / "whole" / "windows.jsonl"))) == \
        sorted(map(_key, docs(tmp_path / "parts" / "windows.jsonl")))


def test_outputs_carry_the_design_fields(scenario, tmp_path):
    events, _ = scenario
    logml("run", "--input", events, "--output", tmp_path, "--write-logs")
    w = docs(tmp_path / "windows.jsonl")[0]
    assert {"@timestamp", "service", "logml"} <= set(w)
    assert {"window", "lines", "expected_lines", "errors", "error_ratio", "anomaly_score",
            "outage_probability"} <= set(w["logml"])
    # expected_lines is the model's expectation: past the warm-up it follows the traffic
    ws = docs(tmp_path / "windows.jsonl")
    for svc in {d["service"]["name"] for d in ws}:
        mine = [d["logml"] for d in ws if d["service"]["name"] == svc][30:]
        ratio = np.median([d["lines"] / d["expected_lines"] for d in mine
                           if d["expected_lines"] > 0])
        assert 0.8 <= ratio <= 1.25, (svc, ratio)
    a = docs(tmp_path / "anomalies.jsonl")[0]
    assert {"anomaly", "template_id", "template", "actual", "expected", "lower", "upper",
            "zscore", "anomaly_score", "severity", "samples", "incident_id"} <= set(a["logml"])
    assert a["event"]["severity"] in (2, 3)
    log = docs(tmp_path / "logs.jsonl")[0]
    assert {"template_id", "template", "params"} <= set(log["logml"])
    assert log["service"]["name"] and log["message"]


def test_bad_records_are_dead_lettered_and_the_run_goes_on(tmp_path):
    good = [orjson.dumps({"@timestamp": f"2025-11-24T10:00:{s:02d}Z", "message": f"ok {s}",
                          "service": {"name": "api"}}) for s in range(50)]
    bad = [b"", b"\xff\xfe", b"[1,2]", b'{"message": 3}', b'{"message": "x", "@timestamp": "no"}']
    (tmp_path / "in.jsonl").write_bytes(b"\n".join(good[:25] + bad + good[25:]) + b"\n")
    p = logml("run", "--input", tmp_path / "in.jsonl", "--output", tmp_path)
    dlq = docs(tmp_path / "dlq.jsonl")
    assert sorted(d["reason"] for d in dlq) == sorted(
        ["empty", "invalid_utf8", "not_an_object", "missing_message", "bad_timestamp"])
    assert b"55 lines: 50 counted, 5 dead-lettered" in p.stderr


def test_metrics_endpoint_while_running(scenario, tmp_path):
    import socket
    import time
    events, _ = scenario
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "logml.cli", "run", "--input", "-",
                             "--output", str(tmp_path), "--metrics-port", str(port)],
                            stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        proc.stdin.write(events.read_bytes())
        proc.stdin.flush()
        body = b""
        for _ in range(100):
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                              timeout=2).read()
                if b'logml_lines_total{service="api"}' in body:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        for name in [b"logml_lines_total", b"logml_anomaly_score", b"logml_outage_probability",
                     b"logml_error_ratio", b"logml_error_ratio_zscore", b"logml_templates",
                     b"logml_template_zscore", b"logml_new_templates_total",
                     b"logml_last_window_closed_timestamp_seconds", b"logml_batch_seconds"]:
            assert name in body, name
    finally:
        proc.stdin.close()
        proc.wait(timeout=120)
