"""Smoke tests against the real Kafka broker that tests/services/up starts (no mocks).

They check what logml relies on: the topics of kafka/topics.conf exist as declared, messages
round-trip, and a consumer group resumes right after its committed offset.
"""
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

REPO = Path(__file__).resolve().parents[2]
TOPICS_CONF = REPO / "kafka" / "topics.conf"

pytestmark = pytest.mark.integration


def declared_topics() -> dict[str, tuple[int, dict[str, str]]]:
    """kafka/topics.conf as {name: (partitions, {config: value})}."""
    topics = {}
    for line in TOPICS_CONF.read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 2:
            topics[fields[0]] = (int(fields[1]), dict(f.split("=", 1) for f in fields[2:]))
    return topics


@pytest.fixture(scope="module")
def bootstrap(kafka_env) -> str:
    return kafka_env["KAFKA_BOOTSTRAP"]


@pytest.fixture(scope="module")
def admin(bootstrap) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


@pytest.fixture
def topic(admin):
    """A fresh 1-partition topic, deleted afterwards."""
    name = f"logml.smoke.{uuid.uuid4().hex[:12]}"
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])[name].result(timeout=30)
    yield name
    admin.delete_topics([name])[name].result(timeout=30)


def consumer(bootstrap: str, group: str) -> Consumer:
    return Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 10000,
    })


def poll_n(c: Consumer, n: int, timeout: float = 30.0) -> list:
    """Poll until n messages arrived (or fail after timeout seconds)."""
    got, deadline = [], time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        msg = c.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            raise KafkaException(msg.error())
        got.append(msg)
    assert len(got) == n, f"expected {n} messages, got {len(got)} in {timeout}s"
    return got


def test_declared_topics_exist_with_partitions_and_configs(admin):
    declared = declared_topics()
    assert {"logs.raw", "logs.dlq", "logml.state"} <= declared.keys()
    assert declared["logs.raw"][0] == 6
    assert 1 <= declared["logs.dlq"][0] <= 3
    assert declared["logml.state"][1].get("cleanup.policy") == "compact"

    metadata = admin.list_topics(timeout=15)
    for name, (partitions, _) in declared.items():
        assert name in metadata.topics, f"topic {name} missing on the broker"
        assert metadata.topics[name].error is None
        assert len(metadata.topics[name].partitions) == partitions, name

    resources = [ConfigResource(ConfigResource.Type.TOPIC, name) for name in declared]
    for resource, future in admin.describe_configs(resources).items():
        configs = future.result(timeout=15)
        for key, value in declared[resource.name][1].items():
            assert configs[key].value == value, (resource.name, key)
    state = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, "logml.state")])
    assert next(iter(state.values())).result(timeout=15)["cleanup.policy"].value == "compact"


def test_consumer_group_resumes_after_committed_offset(bootstrap, topic):
    total, first_batch = 20, 8
    group = f"logml-smoke-{uuid.uuid4().hex[:8]}"

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    for i in range(total):
        producer.produce(topic, key=f"k{i}".encode(), value=f"line {i}".encode())
    assert producer.flush(30) == 0, "producer could not deliver everything"

    c1 = consumer(bootstrap, group)
    c1.subscribe([topic])
    got = poll_n(c1, first_batch)
    assert [m.value().decode() for m in got] == [f"line {i}" for i in range(first_batch)]
    # commit the position right after the last message handled, synchronously
    last = got[-1]
    c1.commit(offsets=[TopicPartition(topic, last.partition(), last.offset() + 1)], asynchronous=False)
    committed = c1.committed([TopicPartition(topic, 0)], timeout=15)
    assert committed[0].offset == first_batch
    c1.close()

    c2 = consumer(bootstrap, group)
    c2.subscribe([topic])
    rest = poll_n(c2, total - first_batch)
    assert [m.offset() for m in rest] == list(range(first_batch, total))
    assert [m.value().decode() for m in rest] == [f"line {i}" for i in range(first_batch, total)]
    # and nothing beyond: exactly the remaining messages
    extra = c2.poll(2.0)
    assert extra is None or extra.error() is not None
    c2.close()


def test_auto_created_topic_round_trip(bootstrap, admin):
    """auto.create.topics.enable is on for the test broker: producing creates the topic."""
    name = f"logml.smoke.auto.{uuid.uuid4().hex[:12]}"
    producer = Producer({"bootstrap.servers": bootstrap, "allow.auto.create.topics": True})
    producer.produce(name, value=b"hello")
    assert producer.flush(30) == 0
    c = consumer(bootstrap, f"logml-smoke-{uuid.uuid4().hex[:8]}")
    c.subscribe([name])
    (msg,) = poll_n(c, 1)
    assert msg.value() == b"hello"
    c.close()
    admin.delete_topics([name])[name].result(timeout=30)
