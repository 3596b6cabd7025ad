"""Smoke test of the real Alertmanager that tests/services/svc/alertmanager starts.

The test serves the webhook receiver the generated config routes to (127.0.0.1:19095/alerts),
POSTs alerts to Alertmanager's /api/v2/alerts and asserts the webhook gets them, labels and all;
a critical alert must inhibit the warning of the same alertname and service.
"""
import json
import queue
import subprocess
import threading
import time
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


@pytest.fixture
def webhook(alertmanager_env):
    """An HTTP server at ALERTMANAGER_WEBHOOK_URL collecting the JSON bodies POSTed to it."""
    url = urlsplit(alertmanager_env["ALERTMANAGER_WEBHOOK_URL"])
    received: "queue.Queue[dict]" = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path == url.path:
                received.put(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer((url.hostname, url.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()


def _post_alerts(base: str, alerts: list) -> None:
    req = urllib.request.Request(f"{base}/api/v2/alerts", data=json.dumps(alerts).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200


def _alert(alertname: str, service: str, severity: str, **labels) -> dict:
    now = datetime.now(timezone.utc)
    return {
        "labels": {"alertname": alertname, "service": service, "severity": severity, **labels},
        "annotations": {"summary": f"{alertname} on {service} ({severity})"},
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(minutes=5)).isoformat(),
        "generatorURL": "http://127.0.0.1:19090/graph",
    }


def _wait_for_group(received: "queue.Queue[dict]", service: str, timeout: float = 30) -> dict:
    """The first webhook notification whose group is for SERVICE (other tests' groups skipped)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = received.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            break
        if msg.get("groupLabels", {}).get("service") == service:
            return msg
    raise AssertionError(f"no webhook notification for service={service} within {timeout} s")


def test_alert_reaches_webhook_with_labels(alertmanager_env, webhook):
    service = f"smoke-{uuid.uuid4().hex[:8]}"
    _post_alerts(alertmanager_env["ALERTMANAGER_URL"],
                 [_alert("LogmlSmokeTest", service, "warning", instance="smoke:1")])
    msg = _wait_for_group(webhook, service)
    assert msg["status"] == "firing"
    assert msg["receiver"] == "test-webhook"
    assert msg["groupLabels"] == {"alertname": "LogmlSmokeTest", "service": service}
    [alert] = msg["alerts"]
    assert alert["labels"] == {"alertname": "LogmlSmokeTest", "service": service,
                               "severity": "warning", "instance": "smoke:1"}
    assert alert["annotations"]["summary"] == f"LogmlSmokeTest on {service} (warning)"


def test_critical_inhibits_warning_of_same_service(alertmanager_env, webhook):
    base = alertmanager_env["ALERTMANAGER_URL"]
    service = f"smoke-{uuid.uuid4().hex[:8]}"
    _post_alerts(base, [_alert("LogmlAnomalyRate", service, "critical"),
                        _alert("LogmlAnomalyRate", service, "warning")])
    msg = _wait_for_group(webhook, service)
    severities = sorted(a["labels"]["severity"] for a in msg["alerts"])
    assert severities == ["critical"], msg
    # Alertmanager itself reports the warning as inhibited by the critical alert
    with urllib.request.urlopen(f"{base}/api/v2/alerts?filter=service%3D%22{service}%22",
                                timeout=10) as resp:
        state = {a["labels"]["severity"]: a["status"] for a in json.load(resp)}
    assert state["critical"]["state"] == "active"
    assert state["warning"]["state"] == "suppressed"
    assert state["warning"]["inhibitedBy"]


def test_amtool_accepts_repo_config(alertmanager_env):
    amtool = alertmanager_env.get("AMTOOL_BIN")
    assert amtool, "amtool is not installed (it ships in Debian's prometheus-alertmanager)"
    proc = subprocess.run([amtool, "check-config", str(REPO / "prometheus" / "alertmanager.yml")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
