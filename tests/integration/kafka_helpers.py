"""Helpers for tests against the real Kafka: unique topics, producing, reading back."""
from __future__ import annotations

import subprocess
import sys
import time
import uuid
from contextlib import contextmanager

import orjson

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def create_topics(bootstrap: str, topics: list[NewTopic]) -> None:
    """Create topics and wait until the broker's metadata lists them: created is not yet
    visible, and a consumer started in between refuses them as missing (seen once in CI)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics(topics).values():
        f.result(30)
    want = {t.topic for t in topics}
    deadline = time.monotonic() + 30
    while not want <= set(admin.list_topics(timeout=10).topics):
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics {sorted(want)} created but not in the metadata")
        time.sleep(0.2)


def unique_topics(bootstrap: str, raw_partitions: int = 6) -> dict[str, str]:
    """Fresh raw, dlq and compacted state topics for one test."""
    tag = uuid.uuid4().hex[:8]
    names = {"topic": f"test.{tag}.raw", "dlq_topic": f"test.{tag}.dlq",
             "state_topic": f"test.{tag}.state", "group": f"logml-test-{tag}"}
    create_topics(bootstrap, [
        NewTopic(names["topic"], raw_partitions, 1),
        NewTopic(names["dlq_topic"], 1, 1),
        NewTopic(names["state_topic"], 1, 1, config={
            "cleanup.policy": "compact", "max.message.bytes": "67108864"})])
    return names


def pipeline_toml(names: dict[str, str], bootstrap: str, sink: str = "jsonl",
                  extra: str = "") -> str:
    """A Kafka-mode pipeline file for the topics and group of ``unique_topics``."""
    return f"""
source = "kafka"
sink = "{sink}"
[kafka]
bootstrap = "{bootstrap}"
topic = "{names['topic']}"
dlq_topic = "{names['dlq_topic']}"
state_topic = "{names['state_topic']}"
group = "{names['group']}"
{extra}"""


def produce(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes]]) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 20})
    for key, value in records:
        while True:
            try:
                p.produce(topic, key=key, value=value)
                break
            except BufferError:  # the local queue is full (a busy broker): let it drain
                p.poll(0.1)
        p.poll(0)
    assert p.flush(60) == 0


def read_all(bootstrap: str, topic: str, timeout: float = 30.0) -> list:
    """Every message of a topic, from the beginning to the end offsets at call time."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4().hex}",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    meta = c.list_topics(topic, timeout=10)
    ends = {}
    for p in meta.topics[topic].partitions:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        if hi > lo:
            ends[p] = hi
    out = []
    if ends:
        c.assign([TopicPartition(topic, p, 0) for p in ends])
        import time
        deadline = time.time() + timeout
        done = set()
        while len(done) < len(ends) and time.time() < deadline:
            m = c.poll(1.0)
            if m is None or m.error():
                continue
            out.append(m)
            if m.offset() + 1 >= ends[m.partition()]:
                done.add(m.partition())
    c.close()
    return out


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
    c.close()
    return {tp.partition: tp.offset for tp in tps}


def event(service: str, t: float, seq: int) -> bytes:
    """An ECS event of ``service`` at epoch ``t``, its message numbered ``seq``."""
    return orjson.dumps({
        "@timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(t))
        + f"{int(t % 1 * 1000):03d}Z",
        "message": f"request {seq} served in {seq % 97} ms", "service": {"name": service}})


def wait(what: str, cond, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"{what} not within {timeout:.0f} s"
        time.sleep(2)


@contextmanager
def consumer(config, log_path, *args: str):
    """`logml run -c config ARGS` in a child, its output in log_path, stopped with SIGTERM
    when the block ends, which it must end cleanly (killed if the block failed)."""
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "logml.cli", "run", "-c", str(config),
                                 *args], stdout=log, stderr=subprocess.STDOUT)
        try:
            yield proc
            proc.terminate()
            assert proc.wait(60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
