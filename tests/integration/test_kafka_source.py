"""logml's Kafka source against the real broker: a poll takes the records that are there
without waiting for a full batch (a consumer at the end of a backlog, or on a trickle, must
not sit out its poll timeout with records in hand)."""
import time
import uuid

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from logml.config import KafkaConfig
from logml.sources.kafka import KafkaSource

pytestmark = pytest.mark.integration


class Listener:
    def assigned(self, partitions):
        return {p: 0 for p in partitions}

    def revoked(self, partitions):
        pass

    def lost(self, partitions):
        pass


def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for v in values:
        p.produce(topic, value=v)
    assert p.flush(30) == 0


def test_a_poll_takes_what_is_there_without_waiting_for_a_full_batch(kafka_env):
    bootstrap = kafka_env["KAFKA_BOOTSTRAP"]
    topic = f"logml.source.{uuid.uuid4().hex[:12]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    source = KafkaSource(KafkaConfig(bootstrap=bootstrap, topic=topic,
                                     group=f"g-{uuid.uuid4().hex}", batch_size=1000),
                         Listener())
    try:
        source.subscribe()
        produce(bootstrap, topic, [b"first"])
        deadline = time.time() + 60
        got = []
        while not got:  # joined the group, assigned, caught up
            assert time.time() < deadline
            got = source.poll(1.0)
        assert got[0].values == [b"first"] and got[0].offsets == [0]
        values = [b"line %d" % i for i in range(300)]
        produce(bootstrap, topic, values)
        time.sleep(1.0)  # fetched meanwhile
        t0 = time.perf_counter()
        batches = source.poll(10.0)  # 300 of a batch of 1000: no waiting for the rest
        elapsed = time.perf_counter() - t0
        assert elapsed < 2.0, elapsed
        assert [v for r in batches for v in r.values] == values
        assert [o for r in batches for o in r.offsets] == list(range(1, 301))
        t0 = time.perf_counter()
        assert source.poll(0.3) == []  # nothing there: waits for a first record, no longer
        assert 0.25 <= time.perf_counter() - t0 < 2.0
    finally:
        source.close()
        admin.delete_topics([topic])[topic].result(30)
