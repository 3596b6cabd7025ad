"""The product as deployed, on real services: Filebeat tails the log files of several
services (one with a labelled incident) and ships them to Kafka; two logml consumers in one
group process the topic into Elasticsearch; Prometheus scrapes both; the alert rule fires
and Alertmanager delivers it to a webhook this test runs. One consumer is killed with
SIGKILL mid-stream: the other takes its partitions over from the checkpoints, and the
final Elasticsearch counts show nothing lost and nothing doubled."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import numpy as np
import orjson
import pytest
from elasticsearch import Elasticsearch

from kafka_helpers import read_all, unique_topics

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
W = 60


def sarama_partition(key: str, partitions: int) -> int:
    """Filebeat's hash partitioner (sarama): FNV-1a 32 of the key, as a signed int."""
    h = 0x811C9DC5
    for b in key.encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    signed = h - (1 << 32) if h >= 1 << 31 else h
    return abs(int(np.fmod(signed, partitions)))


def pick_services() -> list[str]:
    """payments and four more services, each in a partition of its own (two in each half of
    the six), so that whichever consumer is killed owned some of them."""
    taken = {sarama_partition("payments", 6)}
    low, high = [], []
    for k in range(400):
        name = f"svc{chr(97 + k % 26)}{chr(97 + k // 26)}"
        p = sarama_partition(name, 6)
        if p in taken:
            continue
        half = low if p < 3 else high
        if len(half) < 2:
            half.append(name)
            taken.add(p)
    return ["payments"] + low + high


def events(services: list[str], start: float, windows: int, incident_from: int) -> dict:
    """ECS JSON lines per service: steady traffic, and from ``incident_from`` on a payments
    incident (errors at 40 %, a new error template). Plus one line without a message."""
    rng = np.random.default_rng(5)
    templates = ["request {} served in {} ms", "cache hit for key user:{} ({} bytes)",
                 "db query took {} ms rows={}", "user {} logged in from 10.0.{}.7",
                 "job {} finished status=ok retries={}"]
    out: dict[str, list[tuple[int, bytes]]] = {s: [] for s in services}
    for w in range(windows):
        for s in services:
            n = int(rng.poisson(25))
            incident = s == "payments" and w >= incident_from
            for i in range(n):
                t = start + w * W + (i + 0.5) * W / (n + 1)
                level = "info"
                msg = templates[int(rng.integers(len(templates)))].format(
                    int(rng.integers(1000)), int(rng.integers(100)))
                if incident and rng.random() < 0.4:
                    level = "error"
                    msg = f"payment gateway timeout after 30000 ms for order {rng.integers(1e6)}"
                elif rng.random() < 0.01:
                    level = "error"
                    msg = f"upstream returned 502 for request {rng.integers(1e6)}"
                out[s].append((w, orjson.dumps({
                    "@timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))
                    + f".{int(t * 1000) % 1000:03d}Z",
                    "message": msg, "log": {"level": level}, "service": {"name": s}})))
    out[services[1]].insert(40, (1, orjson.dumps({"note": "no message here",
                                                  "service": {"name": services[1]}})))
    return out


def append(log_dir: Path, lines: dict, lo: int, hi: int) -> None:
    """Write windows [lo, hi) of every service's log, as the applications would."""
    for s, rows in lines.items():
        chunk = [line for w, line in rows if lo <= w < hi]
        if chunk:
            with open(log_dir / f"{s}.json", "ab") as f:
                f.write(b"\n".join(chunk) + b"\n")


class Webhook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Webhook.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(what: str, cond, timeout: float, every: float = 1.0):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def metric(port: int, name: str) -> float:
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read()
    except OSError:
        return -1.0
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_filebeat_kafka_two_consumers_elasticsearch_prometheus_alertmanager(
        kafka_env, es_env, prometheus_env, alertmanager_env, filebeat_env, tmp_path):
    bootstrap, es_url = kafka_env["KAFKA_BOOTSTRAP"], es_env["ES_URL"]
    names = unique_topics(bootstrap)
    prefix = f"e2e{uuid.uuid4().hex[:6]}"
    services = pick_services()
    start = (time.time() // 3600 - 3) * 3600
    lines = events(services, start, windows=100, incident_from=88)
    total = sum(len(v) for v in lines.values())
    log_dir = tmp_path / "logs"
    log_dir.mkdir()

    # the webhook Alertmanager delivers to
    hook = urllib.parse.urlparse(alertmanager_env["ALERTMANAGER_WEBHOOK_URL"])
    Webhook.received = []
    server = HTTPServer((hook.hostname, hook.port), Webhook)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    # index templates first, as an operator would
    subprocess.run([sys.executable, "-m", "logml.cli", "setup", "--es", es_url, "--prefix",
                    prefix, "--out", str(tmp_path)], check=True, capture_output=True, timeout=120)

    cfg = tmp_path / "kafka.toml"
    cfg.write_text((REPO / "pipelines" / "kafka.toml").read_text()
                   .replace('topic = "logs.raw"', f'topic = "{names["topic"]}"')
                   .replace('dlq_topic = "logs.dlq"', f'dlq_topic = "{names["dlq_topic"]}"')
                   .replace('state_topic = "logml.state"', f'state_topic = "{names["state_topic"]}"')
                   .replace('group = "logml"', f'group = "{names["group"]}"')
                   .replace('index_prefix = "logml"', f'index_prefix = "{prefix}"'))
    ports = [free_port(), free_port()]
    procs, logs = [], []
    env = {**os.environ, "KAFKA_BOOTSTRAP": bootstrap, "ES_URL": es_url}
    for k, port in enumerate(ports):
        logs.append(open(tmp_path / f"consumer{k}.log", "wb"))
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "logml.cli", "run", "-c", str(cfg), "--metrics-port", str(port)],
            stdout=logs[-1], stderr=subprocess.STDOUT, env=env))
    targets = Path(prometheus_env["PROMETHEUS_TARGETS_DIR"]) / f"{prefix}.json"
    targets.write_text(json.dumps([{"targets": [f"127.0.0.1:{p}" for p in ports],
                                    "labels": {"job": "logml", "test": prefix}}]))
    fb_log = open(tmp_path / "filebeat.log", "wb")
    filebeat = None
    es = Elasticsearch(es_url)
    try:
        wait("both consumers serving /metrics", lambda: all(
            metric(p, "logml_records_dead_lettered_total") >= 0 for p in ports), 60)
        filebeat = subprocess.Popen(
            [filebeat_env["FILEBEAT_BIN"], "-e", "--strict.perms=false",
             "-c", str(REPO / "filebeat" / "filebeat.yml"),
             "-E", f"output.kafka.topic={names['topic']}",
             "-E", f"path.data={tmp_path / 'fbdata'}", "-E", f"path.logs={tmp_path / 'fblogs'}",
             "-E", "http.enabled=false"],
            stdout=fb_log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**env, "LOGML_LOG_DIR": str(log_dir)})
        # the logs grow a few windows at a time; a consumer dies mid-stream
        for w0 in range(0, 48, 4):
            append(log_dir, lines, w0, w0 + 4)
            time.sleep(0.5)
        wait("both consumers processing lines", lambda: all(
            metric(p, "logml_lines_total") > 0 for p in ports), 120)
        q = urllib.parse.urlencode({"query": f'up{{test="{prefix}"}}'})
        url = f"{prometheus_env['PROMETHEUS_URL']}/api/v1/query?{q}"
        wait("Prometheus scraping both consumers", lambda: len([
            r for r in json.loads(urllib.request.urlopen(url).read())["data"]["result"]
            if r["value"][1] == "1"]) == 2, 60)
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(30)
        for w0 in range(48, 100, 4):
            append(log_dir, lines, w0, w0 + 4)
            time.sleep(0.5)

        def settled():
            es.indices.refresh(index=f"{prefix}-*")
            indexed = es.count(index=f"{prefix}-logs-*")["count"]
            dlq = {(dict(m.headers())["logml.source"], dict(m.headers())["logml.offset"])
                   for m in read_all(bootstrap, names["dlq_topic"], timeout=10)}
            return (indexed, len(dlq)) if indexed + len(dlq) >= total else None

        indexed, dead = wait("every line indexed or dead-lettered", settled, 300, every=3)
        time.sleep(8)  # anything doubled or late would show now
        es.indices.refresh(index=f"{prefix}-*")
        assert es.count(index=f"{prefix}-logs-*")["count"] == indexed
        assert (indexed, dead) == (total - 1, 1)  # nothing lost, nothing doubled

        anomalies = es.search(index=f"{prefix}-anomalies-*", size=200, query={
            "term": {"service.name": "payments"}})["hits"]["hits"]
        found = {(h["_source"]["logml"]["anomaly"]["type"], h["_source"]["logml"]["severity"])
                 for h in anomalies if h["_source"]["@timestamp"] >= time.strftime(
                     "%Y-%m-%dT%H:%M", time.gmtime(start + 88 * W))}
        assert ("error_rate", "critical") in found, found
        assert ("new_template", "critical") in found, found
        windows = es.count(index=f"{prefix}-windows-*")["count"]
        assert windows >= len(services) * 90

        def delivered():
            return [a for msg in Webhook.received for a in msg.get("alerts", [])
                    if a["labels"].get("service") == "payments"
                    and a["labels"].get("alertname") == "LogmlLogAnomalyCritical"]
        alerts = wait("Alertmanager delivering the critical payments alert", delivered, 180)
        assert alerts[0]["labels"]["severity"] == "critical"
        assert alerts[0]["annotations"]["summary"]
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(60)
                except subprocess.TimeoutExpired:
                    p.kill()
        if filebeat and filebeat.poll() is None:
            os.killpg(filebeat.pid, signal.SIGTERM)
            filebeat.wait(30)
        targets.unlink(missing_ok=True)
        server.shutdown()
        server.server_close()
        for f in logs + [fb_log]:
            f.close()
        try:
            es.indices.delete(index=f"{prefix}-*")
        except Exception:
            pass
