"""Smoke test of the real Filebeat that tests/services/svc/filebeat builds, shipping to real Kafka.

The test writes a log file, runs FILEBEAT_BIN with a filestream input on it and the Kafka output
to a fresh topic at KAFKA_BOOTSTRAP, appends more lines while Filebeat runs, and reads the topic
back: every line must arrive as an ECS event (message, @timestamp, log.file.path, host.name,
agent). Filebeat is stopped at the end.
"""
import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from servicekit import stop_group
from confluent_kafka import Consumer, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

pytestmark = pytest.mark.integration


def _create_topic(bootstrap: str, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)],
                                  operation_timeout=30)
    futures[topic].result(timeout=60)


def _consumer(bootstrap: str, topic: str) -> Consumer:
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"filebeat-smoke-{uuid.uuid4().hex[:8]}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    consumer.subscribe([topic])
    return consumer


def _poll(consumer: Consumer, events: list, want: int, timeout: float) -> list[dict]:
    """Append decoded messages to EVENTS until it holds WANT of them or TIMEOUT runs out."""
    deadline = time.monotonic() + timeout
    while len(events) < want and time.monotonic() < deadline:
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            if msg.error().retriable() or "UNKNOWN_TOPIC" in msg.error().name():
                continue
            raise KafkaException(msg.error())
        events.append(json.loads(msg.value()))
    return events


def _filebeat_config(tmp: Path, log_file: Path, bootstrap: str, topic: str, ndjson: bool) -> Path:
    """Filebeat's YAML config, written as JSON (YAML is a superset of JSON)."""
    input_cfg = {
        "type": "filestream",
        "id": f"logml-smoke-{topic}",
        "paths": [str(log_file)],
        "prospector.scanner.check_interval": "500ms",
    }
    if ndjson:
        input_cfg["parsers"] = [{"ndjson": {"target": "", "add_error_key": True,
                                            "overwrite_keys": True}}]
    config = {
        "filebeat.inputs": [input_cfg],
        "output.kafka": {
            "hosts": [h.strip() for h in bootstrap.split(",") if h.strip()],
            "topic": topic,
            "version": "2.6.0",
            "client_id": "logml-filebeat-smoke",
            "required_acks": -1,
            "compression": "none",
            "partition.round_robin": {"reachable_only": False},
        },
        "queue.mem": {"events": 4096, "flush.min_events": 1, "flush.timeout": "100ms"},
        "path.home": str(tmp),
        "path.data": str(tmp / "data"),
        "path.logs": str(tmp / "logs"),
        "logging.level": "info",
        "logging.to_stderr": True,
        "http.enabled": False,
    }
    path = tmp / "filebeat.yml"
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o600)  # filebeat refuses configs writable by others
    return path


@pytest.mark.parametrize("fmt", ["plain", "ndjson"])
def test_filebeat_ships_log_lines_to_kafka(kafka_env, filebeat_env, tmp_path, fmt):
    bootstrap = kafka_env["KAFKA_BOOTSTRAP"]
    topic = f"logml-filebeat-smoke-{fmt}-{uuid.uuid4().hex[:10]}"
    _create_topic(bootstrap, topic)

    log_file = tmp_path / "app.log"
    if fmt == "plain":
        lines = [f"2024-05-01T12:00:0{i}Z INFO worker-{i} processed batch {i} in {10 * i} ms"
                 for i in range(5)]
    else:
        lines = [json.dumps({"message": f"request {i} done", "level": "INFO", "req": i})
                 for i in range(5)]
    # three lines before Filebeat starts, two appended while it tails the file
    log_file.write_text("".join(line + "\n" for line in lines[:3]))

    config = _filebeat_config(tmp_path, log_file, bootstrap, topic, ndjson=(fmt == "ndjson"))
    fb_log = open(tmp_path / "filebeat.stderr", "w")
    consumer = _consumer(bootstrap, topic)
    events: list[dict] = []
    proc = subprocess.Popen(
        [filebeat_env["FILEBEAT_BIN"], "-e", "-c", str(config), "--strict.perms=false"],
        stdout=fb_log, stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True)
    try:
        _poll(consumer, events, want=3, timeout=90)
        seen_before_append = len(events)
        with open(log_file, "a") as fh:  # Filebeat must pick up lines appended while it runs
            fh.write("".join(line + "\n" for line in lines[3:]))
        _poll(consumer, events, want=len(lines), timeout=60)
        _poll(consumer, events, want=len(lines) + 1, timeout=2)  # nothing extra (no duplicates)
    finally:
        consumer.close()
        stop_group(proc)
        fb_log.close()
    stderr = (tmp_path / "filebeat.stderr").read_text()[-3000:]
    assert seen_before_append == 3, (
        f"{seen_before_append} of 3 events reached {topic}; filebeat said:\n{stderr}")
    assert len(events) == len(lines), (
        f"{len(events)} of {len(lines)} events reached {topic}; filebeat said:\n{stderr}")

    events.sort(key=lambda e: e["log"]["offset"])
    for line, event in zip(lines, events):
        if fmt == "plain":
            assert event["message"] == line
        else:
            decoded = json.loads(line)
            assert event["message"] == decoded["message"]
            assert event["level"] == "INFO" and event["req"] == decoded["req"]
            assert "error" not in event, event["error"]
        assert event["@timestamp"].endswith("Z")
        assert event["log"]["file"]["path"] == str(log_file)
        assert event["input"]["type"] == "filestream"
        assert event["host"]["name"]
        assert event["agent"]["type"] == "filebeat"
        assert event["agent"]["version"] == filebeat_env["FILEBEAT_VERSION"]
        assert "version" in event["ecs"]

