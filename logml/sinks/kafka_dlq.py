"""Dead letters to Kafka (``logs.dlq``), each written once.

Value: the raw record. Key: the input record's key (the service), as the input had it.
Headers: ``logml.id``, the dead letter's deterministic id (reason, source, offset; plus a
hash of the bytes for records without an input offset, such as documents Elasticsearch
refused), so a reader can tell copies apart; ``logml.reason``, ``logml.detail``,
``logml.source``, ``logml.offset``, ``logml.kept`` and ``logml.lines`` (the input lines
the record stands for: a run of blank lines is one record).

The producer is idempotent (a retry never doubles a message). A new owner of a partition
replays the records after its checkpoint; dead letters the previous owner already wrote
for them are after the checkpoint's ``dlq_mark`` in this topic: ``replaying`` reads them
from there and ``send`` skips those ids until the replay has passed them.
"""
from __future__ import annotations

import hashlib

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from ..sources.kafka import read_to_end
from . import SinkUnavailable


def dead_letter_id(e) -> str:
    parts = [str(e.reason), e.source, str(e.offset)]
    if e.offset < 0:  # no input position (a refused document): the bytes identify it
        parts.append(hashlib.blake2b(e.raw, digest_size=16).hexdigest())
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=12).hexdigest()


class DeadLetterProducer:
    def __init__(self, producer: Producer, topic: str, client: dict, stall_s: float = 15.0,
                 stats=None):
        self.producer = producer
        self.topic = topic
        self.client, self.stall_s, self.stats = client, stall_s, stats
        self.failed: list[str] = []
        self.skip: dict[str, set[str]] = {}  # source -> ids already in the topic
        self.skip_until: dict[str, int] = {}  # source -> highest input offset among them
        self._meta: Consumer | None = None  # for the topic's end offsets
        self._partitions: list[int] = []

    def _delivered(self, err, msg) -> None:
        if err is not None:
            self.failed.append(str(err))

    def send(self, errors) -> None:
        skipped = 0
        for e in errors:
            key = dead_letter_id(e)
            seen = self.skip.get(e.source if e.offset >= 0 else "")
            if seen is not None and key in seen:
                skipped += 1
                continue
            headers = [("logml.id", key.encode()),
                       ("logml.reason", str(e.reason).encode()),
                       ("logml.detail", e.detail.encode("utf-8", "replace")[:1024]),
                       ("logml.source", e.source.encode()),
                       ("logml.offset", str(e.offset).encode()),
                       ("logml.kept", b"1" if e.kept else b"0"),
                       ("logml.lines", str(e.count).encode())]
            self.producer.produce(self.topic, value=e.raw, key=e.key,
                                  on_delivery=self._delivered, headers=headers)
            self.producer.poll(0)
        if skipped and self.stats is not None:
            with self.stats.lock:
                self.stats.dead_letters_replayed += skipped

    def flush(self, timeout: float = 30.0) -> None:
        left = self.producer.flush(timeout)
        if left or self.failed:
            failed, self.failed = self.failed, []
            raise SinkUnavailable(f"dead-letter topic {self.topic}: {left} undelivered, "
                                  f"errors {failed[:3]}")

    # ---------------------------------------------------------------- hand-over
    def mark(self) -> dict[int, int]:
        """End offset of each partition of the topic now (call after ``flush``): every
        dead letter written later is at or after it."""
        try:
            if self._meta is None:
                self._meta = Consumer({**self.client, "group.id": "logml-reader"})
            self._meta.poll(0)  # hands librdkafka's lines queued since to the logger
            if not self._partitions:  # a first try that failed learnt none
                t = self._meta.list_topics(self.topic, timeout=self.stall_s).topics[self.topic]
                if t.error is not None or not t.partitions:
                    raise SinkUnavailable(f"dead-letter topic {self.topic}: "
                                          f"{t.error or 'no partitions'}")
                self._partitions = sorted(t.partitions)
            return {p: self._meta.get_watermark_offsets(TopicPartition(self.topic, p),
                                                        timeout=self.stall_s)[1]
                    for p in self._partitions}
        except KafkaException as e:
            raise SinkUnavailable(f"dead-letter topic {self.topic}: {e.args[0]}") from None

    def replaying(self, sources: set[str], marks: dict[int, int]) -> None:
        """Before replaying ``sources`` from checkpoints whose marks are ``marks``: learn
        the dead letters already written for them (and refused documents, which have no
        source position). Raises ReadError when the topic cannot be read."""
        if not marks:
            return
        for msg in read_to_end(self.client, self.topic, self.stall_s, starts=marks):
            h = dict(msg.headers() or [])
            source = h.get("logml.source", b"").decode("utf-8", "replace")
            try:
                offset = int(h.get("logml.offset", b"-1"))
            except ValueError:
                continue
            if offset < 0:
                source = ""
            elif source not in sources:
                continue
            if "logml.id" not in h:
                continue
            self.skip.setdefault(source, set()).add(h["logml.id"].decode("ascii", "replace"))
            if source:
                self.skip_until[source] = max(self.skip_until.get(source, -1), offset)

    def replayed(self, source: str, position: int) -> None:
        """The pipeline of ``source`` is at ``position``: ids below it cannot recur."""
        until = self.skip_until.get(source)
        if until is not None and position > until:
            self.forget(source)

    def forget(self, source: str) -> None:
        self.skip.pop(source, None)
        self.skip_until.pop(source, None)
        if not self.skip_until:  # no replay left: refused documents cannot recur either
            self.skip.pop("", None)

    def close(self) -> None:
        if self._meta is not None:
            self._meta.close()
            self._meta = None
