"""Dead letters to Kafka (``logs.dlq``): the raw record as value, its original key, and the
reason, detail and source position in headers."""
from __future__ import annotations

from confluent_kafka import Producer

from . import SinkUnavailable


class DeadLetterProducer:
    def __init__(self, producer: Producer, topic: str):
        self.producer = producer
        self.topic = topic
        self.failed: list[str] = []

    def _delivered(self, err, msg) -> None:
        if err is not None:
            self.failed.append(str(err))

    def send(self, errors) -> None:
        for e in errors:
            self.producer.produce(
                self.topic, value=e.raw, key=e.key, on_delivery=self._delivered,
                headers=[("logml.reason", str(e.reason).encode()),
                         ("logml.detail", e.detail.encode("utf-8", "replace")[:1024]),
                         ("logml.source", e.source.encode()),
                         ("logml.offset", str(e.offset).encode()),
                         ("logml.kept", b"1" if e.kept else b"0")])
            self.producer.poll(0)

    def flush(self, timeout: float = 30.0) -> None:
        left = self.producer.flush(timeout)
        if left or self.failed:
            failed, self.failed = self.failed, []
            raise SinkUnavailable(f"dead-letter topic {self.topic}: {left} undelivered, "
                                  f"errors {failed[:3]}")
