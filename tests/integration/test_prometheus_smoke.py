"""Smoke test of the real Prometheus that tests/services/svc/prometheus starts.

A prometheus_client exporter (own registry, free loopback port) is registered through a file_sd
target file; Prometheus must scrape it and answer a PromQL query with the exported value. promtool
must accept the repo's user-facing prometheus/prometheus.yml and the generated test config.
"""
import json
import os
import random
import subprocess
import threading
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, make_wsgi_app

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture
def exporter():
    """A /metrics endpoint on 127.0.0.1:<free port> serving a registry of its own."""
    registry = CollectorRegistry()
    server = make_server("127.0.0.1", 0, make_wsgi_app(registry), handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield registry, f"127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def _query(base_url: str, promql: str) -> list:
    url = f"{base_url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    return body["data"]["result"]


def _register(targets_dir: Path, name: str, target: str, labels: dict) -> Path:
    """Write a file_sd target file atomically (Prometheus watches the directory)."""
    targets_dir.mkdir(parents=True, exist_ok=True)
    path = targets_dir / f"{name}.json"
    tmp = targets_dir / f".{name}.tmp"
    tmp.write_text(json.dumps([{"targets": [target], "labels": labels}]))
    os.replace(tmp, path)
    return path


def test_prometheus_scrapes_file_sd_target(prometheus_env, exporter):
    base = prometheus_env["PROMETHEUS_URL"]
    registry, target = exporter
    value = round(random.uniform(1, 1000), 3)
    Gauge("logml_smoke_value", "smoke-test gauge", registry=registry).set(value)
    Counter("logml_smoke_events", "smoke-test counter", registry=registry).inc(7)

    job = f"smoke-{uuid.uuid4().hex[:8]}"
    target_file = _register(Path(prometheus_env["PROMETHEUS_TARGETS_DIR"]), job, target,
                            {"job": job, "service": "logml-smoke"})
    try:
        deadline = time.monotonic() + 60
        result = []
        while time.monotonic() < deadline:
            result = _query(base, f'logml_smoke_value{{job="{job}"}}')
            if result:
                break
            time.sleep(0.5)
        assert result, f"Prometheus never scraped {target} (job {job}) within 60 s"
        assert float(result[0]["value"][1]) == pytest.approx(value)
        assert result[0]["metric"]["service"] == "logml-smoke"
        assert result[0]["metric"]["instance"] == target

        # the target is healthy and PromQL functions work on the scraped series
        assert float(_query(base, f'up{{job="{job}"}}')[0]["value"][1]) == 1.0
        total = _query(base, f'sum(logml_smoke_events_total{{job="{job}"}})')
        assert float(total[0]["value"][1]) == 7.0
    finally:
        target_file.unlink(missing_ok=True)


def test_prometheus_runs_with_alertmanager_and_rules_config(prometheus_env):
    base = prometheus_env["PROMETHEUS_URL"]
    with urllib.request.urlopen(f"{base}/api/v1/status/config", timeout=5) as resp:
        loaded = json.load(resp)["data"]["yaml"]
    assert "127.0.0.1:19094" in loaded
    assert str(REPO / "prometheus" / "rules" / "*.yml") in loaded
    with urllib.request.urlopen(f"{base}/api/v1/rules", timeout=5) as resp:
        assert json.load(resp)["status"] == "success"


@pytest.mark.parametrize("which", ["repo", "generated"])
def test_promtool_check_config(prometheus_env, which):
    path = (REPO / "prometheus" / "prometheus.yml" if which == "repo"
            else Path(prometheus_env["PROMETHEUS_CONFIG"]))
    proc = subprocess.run([prometheus_env["PROMTOOL_BIN"], "check", "config", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"promtool check config {path}:\n{proc.stdout}\n{proc.stderr}"
    assert "SUCCESS" in proc.stdout + proc.stderr
