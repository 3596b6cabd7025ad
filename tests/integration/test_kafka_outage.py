"""The Kafka broker down while the consumer runs on a live stream: the consumer outlives
it, loses and doubles nothing, counts every window as the input has it, shows it on
/metrics (logml_kafka_brokers_up 0, what LogmlKafkaUnreachable fires on) and says the
outage in a few lines instead of librdkafka's one per connection attempt. Stops and
restarts the real broker (as test_es_outage.py does Elasticsearch)."""
import collections
import logging
import re
import socket
import subprocess
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer
from elasticsearch import Elasticsearch, helpers

from kafka_helpers import (committed, consumer, event, pipeline_toml, produce, read_all,
                           unique_topics, wait)

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
SERVICES = ("api", "web")
OUTAGE_S = 30.0  # longer than the group's session timeout (10 s): the group is rebuilt


class Shipper:
    """One long-lived producer sending lines timed now, buffering through the outage as
    Filebeat does (its librdkafka lines are not the consumer's and are dropped)."""

    def __init__(self, bootstrap: str, topic: str, seq: int):
        quiet = logging.getLogger(f"shipper.{uuid.uuid4().hex}")
        quiet.addHandler(logging.NullHandler())
        quiet.propagate = False
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                                  "enable.idempotence": True, "linger.ms": 20,
                                  "message.timeout.ms": 600000, "logger": quiet})
        self.topic, self.seq, self.failed = topic, seq, []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _delivered(self, err, msg):
        if err is not None:
            self.failed.append(str(err))

    def _run(self):
        while not self.stopping.wait(0.5):
            for s in SERVICES:
                self.seq += 1
                self.producer.produce(self.topic, key=s.encode(),
                                      value=event(s, time.time(), self.seq),
                                      on_delivery=self._delivered)
            self.producer.poll(0)

    def finish(self) -> int:
        self.stopping.set()
        self.thread.join()
        return self.producer.flush(120)


def services(action: str) -> None:
    p = subprocess.run([str(REPO / "tests/services" / action), "kafka"], capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metric(port: int, name: str) -> float | None:
    """A gauge without labels on logml's /metrics, None when absent."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    m = re.search(rf"(?m)^{name} (\S+)$", text)
    return float(m.group(1)) if m else None


def test_consumer_outlives_a_broker_outage_and_loses_doubles_nothing(kafka_env, es_env,
                                                                     tmp_path):
    bootstrap, es_url = kafka_env["KAFKA_BOOTSTRAP"], es_env["ES_URL"]
    names = unique_topics(bootstrap, raw_partitions=2)
    prefix = f"kout{uuid.uuid4().hex[:6]}"
    now = time.time()
    backlog = [(s.encode(), event(s, now - 600 + k, 2 * k + i))  # 10 min, a line/s each
               for k in range(600) for i, s in enumerate(SERVICES)]
    produce(bootstrap, names["topic"], backlog)
    cfg = tmp_path / "k.toml"
    cfg.write_text(pipeline_toml(names, bootstrap, "elasticsearch", f"""[elasticsearch]
url = "{es_url}"
index_prefix = "{prefix}"
[window]
seconds = 10
"""))
    es = Elasticsearch(es_url)
    shipper = Shipper(bootstrap, names["topic"], len(backlog))
    port = free_port()
    brokers_up = lambda: metric(port, "logml_kafka_brokers_up")  # noqa: E731
    try:
        with consumer(cfg, tmp_path / "consumer.log", "--metrics-port", str(port)) as proc:
            wait("the backlog committed", lambda: sum(max(o, 0) for o in committed(
                bootstrap, names["group"], names["topic"], 2).values()) >= len(backlog), 300)
            shipper.thread.start()
            wait("the consumer's brokers counted", lambda: brokers_up() == 1, 30)
            down_at, t_down = time.time(), time.monotonic()
            services("down")
            wait("the broker's loss seen on /metrics", lambda: brokers_up() == 0, OUTAGE_S)
            time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - t_down)))
            assert proc.poll() is None, "the consumer must outlive the broker's outage"
            services("up")
            wait("the broker seen again on /metrics", lambda: brokers_up() == 1, 60)
            time.sleep(20)
            assert shipper.finish() == 0 and not shipper.failed, shipper.failed
            sent = len(backlog) + (shipper.seq - len(backlog))

            def indexed():
                es.indices.refresh(index=f"{prefix}-logs-*")
                return es.count(index=f"{prefix}-logs-*")["count"] >= sent
            wait("every line indexed", indexed, 180)
            time.sleep(5)  # the commit after the last acknowledged bulk
    finally:
        services("up")

    try:
        docs = [h["_source"] for h in helpers.scan(es, index=f"{prefix}-logs-*")]
        windows = [h["_source"] for h in helpers.scan(es, index=f"{prefix}-windows-*")]
    finally:
        es.options(ignore_status=404).indices.delete(index=f"{prefix}-*")
    records = read_all(bootstrap, names["topic"], timeout=60)
    assert len(records) == sent  # the shipper's idempotent producer doubled nothing
    assert sorted(d["message"] for d in docs) == \
        sorted(orjson.loads(m.value())["message"] for m in records)
    assert read_all(bootstrap, names["dlq_topic"]) == []  # nothing late, nothing refused
    ends = collections.Counter(m.partition() for m in records)
    assert committed(bootstrap, names["group"], names["topic"], 2) == \
        {p: ends.get(p, 0) for p in range(2)}

    def ten_s(stamp: str) -> str:  # the 10-second window an ISO time falls in
        return stamp[:18]
    per_window = collections.Counter()
    for m in records:
        e = orjson.loads(m.value())
        per_window[(e["service"]["name"], ten_s(e["@timestamp"]))] += 1
    counted = {(w["service"]["name"], ten_s(w["@timestamp"])): w["logml"]["lines"]
               for w in windows}
    during = {k for k in counted if k[1] >= ten_s(time.strftime(
        "%Y-%m-%dT%H:%M:%S", time.gmtime(down_at + 10)))}
    assert len(counted) >= 2 * 60 and len(during) >= 2 * 3, sorted(counted)[-12:]
    assert {k: per_window[k] for k in counted} == counted  # none short, none twice

    text = (tmp_path / "consumer.log").read_text(errors="replace").splitlines()
    client_lines = [x for x in text if "rdkafka#" in x]
    assert len(client_lines) <= 20, "\n".join(client_lines[:40])
    assert sum("lag unknown" in x for x in text) <= 2
