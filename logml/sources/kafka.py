"""Kafka source: one member of the consumer group, and a reader of whole topics.

The member subscribes with the cooperative-sticky assignor, so a rebalance moves only the
partitions that change owner and the others keep running (their state is not reloaded).
Partition changes go to a listener, inside ``poll``:

- ``assigned(partitions)`` returns each new partition's start offset (its checkpoint's
  position), or None for a partition whose state cannot be read yet: it is assigned paused
  and the listener resumes it with ``start`` once the state is back;
- ``revoked(partitions)``: a graceful hand-over; the listener may still flush and commit;
- ``lost(partitions)``: another member owns them already (session timeout, fenced); the
  listener must not commit or checkpoint them.

Batches come out grouped by partition, in offset order. ``commit`` takes the positions
the sinks acknowledged, keyed by source name (``topic/partition``).
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Iterator, Protocol

import numpy as np
import orjson
from confluent_kafka import (OFFSET_BEGINNING, OFFSET_INVALID, Consumer, KafkaError,
                             KafkaException, Message, TopicPartition)

from ..config import KafkaConfig

log = logging.getLogger("logml.kafka")
FETCH_SETTINGS = {
    # big fetches: a backlog arrives in few round trips (a busy broker answers each one
    # late), a batch of batch_size is there when asked for
    "max.partition.fetch.bytes": 8 << 20, "fetch.max.bytes": 64 << 20,
    # librdkafka stops fetching a partition whose queue is over queued.min.messages (or
    # over queued.max.messages.kbytes) and looks again only after this backoff (default
    # 1 s): a consumer that empties its queue sooner sat idle up to a second each time
    # (a plain consumer read 135k records/s with it, 510-590k with 10 ms). The queue's
    # bounds, hence memory, are unchanged.
    "fetch.queue.backoff.ms": 10}
# librdkafka's statistics (the brokers it is connected to) this often
STATS_EVERY_MS = 5000
# Between attempts to reach a broker that is down. A member of a group retries at this
# pace however long the outage (its coordinator lookup wakes it; librdkafka's exponential
# backoff never grows): every ~50 ms at the default 100 ms.
RECONNECT_BACKOFF_MS = 500
_DIGITS = re.compile(r"\d+")
# a closing aside: "(after 0ms in state CONNECT, 1 identical error(s) suppressed)"
_ASIDE = re.compile(r"\s*\((?:[^()]|\([^()]*\))*\)$")


class QuietLog:
    """A logger's ``log`` that says each kind of line (its text, numbers and a closing
    aside in brackets left out) at most once every ``every_s`` seconds, and when it speaks
    again how many it held back.

    librdkafka's own lines come through one (a client's ``logger`` setting): while the
    broker is down each consumer says "Connect to ... failed" at every attempt, 7,000
    lines in three minutes, burying logml's own. So does a warning logml repeats at every
    try (consumer lag unknown)."""

    def __init__(self, logger: logging.Logger, every_s: float = 60.0, clock=time.monotonic):
        self.logger, self.every_s, self.clock = logger, every_s, clock
        self.kinds: dict[str, list] = {}  # kind -> [when last said, held back since]

    def log(self, level: int, fmt: str, *args) -> None:
        text = fmt % args if args else fmt
        kind, now = _DIGITS.sub("#", _ASIDE.sub("", text)), self.clock()
        seen = self.kinds.get(kind)
        if seen is not None and now - seen[0] < self.every_s:
            seen[1] += 1
            return
        if seen is not None and seen[1]:
            text += f" ({seen[1]} more like it in the last {now - seen[0]:.0f} s)"
        if len(self.kinds) >= 1000:  # many kinds: forget the ones not seen lately
            self.kinds = {k: v for k, v in self.kinds.items() if now - v[0] < self.every_s}
        self.kinds[kind] = [now, 0]
        self.logger.log(level, "%s", text)


def client_settings(bootstrap: str, logger: QuietLog | None = None) -> dict:
    """What every Kafka client of logml starts from. ``logger`` takes librdkafka's lines
    (delivered when the client is polled); without one they go to stderr unthrottled."""
    settings = {"bootstrap.servers": bootstrap, "reconnect.backoff.ms": RECONNECT_BACKOFF_MS}
    if logger is not None:
        settings["logger"] = logger
    return settings


# After a wait for the first record, the records arriving this soon join its batch: a
# trickle is processed (and, with commit_interval_s = 0, committed) in batches at most
# ~20 times a second; a backlog's last records wait no longer than this.
LINGER_S = 0.05


class StreamingError(Exception):
    """The consumer cannot start; the message says what to do."""


class ReadError(Exception):
    """A topic could not be read to its end (unreachable, stalled)."""


@dataclass
class Records:
    """Consecutive records of one partition."""
    partition: int
    source: str  # topic/partition, the pipeline's position key
    values: list[bytes]
    offsets: list[int]
    messages: list  # for the keys, read only when a record is dead-lettered

    def keys(self) -> list:
        return [m.key() for m in self.messages]


class Listener(Protocol):
    def assigned(self, partitions: list[int]) -> dict[int, int | None]: ...
    def revoked(self, partitions: list[int]) -> None: ...
    def lost(self, partitions: list[int]) -> None: ...


def source_name(topic: str, partition: int) -> str:
    return f"{topic}/{partition}"


class KafkaSource:
    def __init__(self, config: KafkaConfig, listener: Listener, client: dict | None = None):
        self.cfg = config
        self.topic = config.topic
        self.listener = listener
        self.paused: set[int] = set()  # partitions waiting for their state
        self.idle_s = 0.0  # of the last poll, waiting for a first record
        self.brokers_up: int | None = None  # unknown until librdkafka's first statistics
        self.consumer = Consumer({
            **(client or client_settings(config.bootstrap)), "group.id": config.group,
            "statistics.interval.ms": STATS_EVERY_MS, "stats_cb": self._statistics,
            "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "partition.assignment.strategy": "cooperative-sticky",
            "session.timeout.ms": int(config.session_timeout_s * 1000),
            "heartbeat.interval.ms": max(500, int(config.session_timeout_s * 1000) // 5),
            "max.poll.interval.ms": 600000, "enable.partition.eof": False,
            **FETCH_SETTINGS})

    def name(self, partition: int) -> str:
        return source_name(self.topic, partition)

    def _statistics(self, text: str) -> None:
        """librdkafka's view, every STATS_EVERY_MS (inside ``poll``): how many brokers it
        is connected to; 0 while Kafka is out of reach (the bootstrap and coordinator
        handles, node id -1, are not brokers)."""
        brokers = orjson.loads(text).get("brokers", {}).values()
        self.brokers_up = sum(b.get("nodeid", -1) >= 0 and b.get("state") == "UP"
                              for b in brokers)

    # ---------------------------------------------------------------- start
    def check_topics(self, *others: str) -> None:
        """Fail early, with what to do, when Kafka or a topic is missing."""
        try:
            meta = self.consumer.list_topics(timeout=15)
        except KafkaException as e:
            raise StreamingError(f"cannot reach Kafka at {self.cfg.bootstrap} ({e}); start it "
                                 "(tests/services/up kafka) or set KAFKA_BOOTSTRAP") from None
        missing = [t for t in (self.topic, *others) if t not in meta.topics]
        if missing:
            raise StreamingError(f"topics {missing} do not exist on {self.cfg.bootstrap}; "
                                 "create them as kafka/topics.conf describes (logml.state "
                                 "compacted)")

    def subscribe(self) -> None:
        self.consumer.subscribe([self.topic], on_assign=self._on_assign,
                                on_revoke=self._on_revoke, on_lost=self._on_lost)

    # ---------------------------------------------------------------- rebalance
    def _on_assign(self, consumer, partitions) -> None:
        if not partitions:
            consumer.incremental_assign([])
            return
        starts = self.listener.assigned([p.partition for p in partitions])
        tps, wait = [], []
        for p in partitions:
            start = starts.get(p.partition)
            tps.append(TopicPartition(self.topic, p.partition,
                                      OFFSET_INVALID if start is None else start))
            if start is None:
                wait.append(TopicPartition(self.topic, p.partition))
        consumer.incremental_assign(tps)
        if wait:
            consumer.pause(wait)
            self.paused.update(tp.partition for tp in wait)

    def _on_revoke(self, consumer, partitions) -> None:
        try:
            self.listener.revoked([p.partition for p in partitions])
        finally:
            self.paused.difference_update(p.partition for p in partitions)
            consumer.incremental_unassign(partitions)

    def _on_lost(self, consumer, partitions) -> None:
        try:
            self.listener.lost([p.partition for p in partitions])
        finally:
            self.paused.difference_update(p.partition for p in partitions)
            consumer.incremental_unassign(partitions)

    def start(self, partition: int, offset: int) -> bool:
        """Resume a partition that waited for its state, from ``offset``; False when the
        consumer cannot seek yet (the partition is still being set up): try again later."""
        tp = TopicPartition(self.topic, partition, offset)
        try:
            self.consumer.seek(tp)
        except KafkaException as e:
            log.debug("seek %s to %d not possible yet: %s", self.name(partition), offset, e)
            return False
        self.consumer.resume([TopicPartition(self.topic, partition)])
        self.paused.discard(partition)
        return True

    # ---------------------------------------------------------------- records
    def poll(self, timeout: float) -> list[Records]:
        """Up to batch_size records, one Records per partition. The messages' fields are
        read by C-level maps and the partitions' runs found with numpy: no Python work per
        record."""
        batch = self.cfg.batch_size
        self.idle_s = 0.0
        msgs = self.consumer.consume(batch, 0)  # what is there: never wait for a full batch
        if not msgs and timeout > 0:
            t0 = time.perf_counter()
            msgs = self.consumer.consume(1, timeout)  # wake up at the first record
            self.idle_s = time.perf_counter() - t0
            if msgs and batch > 1:  # and take what comes with it
                msgs += self.consumer.consume(batch - 1, min(timeout, LINGER_S))
        if not msgs:
            return []
        if any(map(Message.error, msgs)):
            for m in msgs:
                if m.error():
                    log.warning("consume error: %s", m.error())
            msgs = [m for m in msgs if not m.error()]
        parts = np.fromiter(map(Message.partition, msgs), np.int64, len(msgs))
        values = list(map(Message.value, msgs))
        if None in values:  # a tombstone: an empty record (dead-lettered as empty)
            values = [v or b"" for v in values]
        offsets = list(map(Message.offset, msgs))
        # librdkafka hands out runs of one partition's messages, in offset order
        bounds = [0, *(np.flatnonzero(parts[1:] != parts[:-1]) + 1).tolist(), len(msgs)]
        by_part: dict[int, Records] = {}
        for a, b in zip(bounds, bounds[1:]):
            p = int(parts[a])
            r = by_part.get(p)
            if r is None:
                by_part[p] = Records(p, self.name(p), values[a:b], offsets[a:b], msgs[a:b])
            else:
                r.values += values[a:b]
                r.offsets += offsets[a:b]
                r.messages += msgs[a:b]
        return list(by_part.values())

    def commit(self, positions: dict[str, int]) -> bool:
        """Commit acknowledged positions (source name -> next offset); False when Kafka
        refused (a rebalance took the partitions: the checkpoints still hold them)."""
        offsets = [TopicPartition(self.topic, int(name.rsplit("/", 1)[1]), pos)
                   for name, pos in positions.items()]
        if not offsets:
            return True
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
            return True
        except KafkaException as e:
            err = e.args[0]
            if err.code() in (KafkaError.ILLEGAL_GENERATION, KafkaError.REBALANCE_IN_PROGRESS,
                              KafkaError.UNKNOWN_MEMBER_ID):  # retried after the rebalance
                log.info("commit of %s deferred: %s", sorted(positions), err.name())
            else:
                log.warning("commit of %s refused: %s", sorted(positions), err)
            return False

    def fresh_start(self, partition: int) -> tuple[int, bool]:
        """(offset, committed) for a partition without a checkpoint: the group's committed
        offset if there is one, else the earliest offset still in the log."""
        tp = TopicPartition(self.topic, partition)
        c = self.consumer.committed([tp], timeout=10)[0]
        if c.offset >= 0:
            return c.offset, True
        lo, _ = self.consumer.get_watermark_offsets(tp, timeout=10, cached=False)
        return (lo if lo >= 0 else OFFSET_BEGINNING), False

    def lag(self, positions: dict[int, int]) -> dict[int, int]:
        """Records behind the partition end, per partition. The ends are those the last
        fetch responses carried (fetching goes on while idle, so they are at most a fetch
        wait old); a partition not fetched yet is asked for."""
        out = {}
        for p, pos in positions.items():
            tp = TopicPartition(self.topic, p)
            _, hi = self.consumer.get_watermark_offsets(tp, cached=True)
            if hi is None or hi < 0:
                _, hi = self.consumer.get_watermark_offsets(tp, timeout=5, cached=False)
            out[p] = max(hi - pos, 0)
        return out

    def pause(self, partitions: list[int]) -> None:
        self.consumer.pause([TopicPartition(self.topic, p) for p in partitions])
        self.paused.update(partitions)

    def keep_alive(self, seconds: float) -> None:
        """Stay in the group without taking records (a sink is down): pause, poll, resume."""
        tps = [tp for tp in self.consumer.assignment() if tp.partition not in self.paused]
        self.consumer.pause(tps)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.consumer.poll(0.2)  # rebalance callbacks may run here
        still = {tp.partition for tp in self.consumer.assignment()} - self.paused
        self.consumer.resume([TopicPartition(self.topic, p) for p in sorted(still)])

    def close(self, timeout_s: float = 10.0) -> None:
        """Leave the group: unsubscribe and poll until the revoke callback has handed over
        what is still assigned, then close. librdkafka's close() alone, reached while a
        cooperative rebalance is under way, can block for minutes or abort the process
        (assert in rd_kafka_cgrp_terminated); nothing is fetched meanwhile (paused)."""
        try:
            self.consumer.pause(self.consumer.assignment())
            self.consumer.unsubscribe()
            deadline = time.monotonic() + timeout_s
            while self.consumer.assignment() and time.monotonic() < deadline:
                self.consumer.poll(0.1)  # rebalance callbacks run here; records are paused
        except (KafkaException, RuntimeError) as e:
            log.warning("leaving the group: %s", e)
        self.consumer.close()


def read_to_end(client: dict, topic: str, stall_s: float,
                starts: dict[int, int] | None = None) -> Iterator:
    """Every message of ``topic`` from ``starts`` (default: the beginning) up to the end
    offsets at call time, by a consumer made from ``client`` (``client_settings``). Raises
    ReadError when Kafka does not answer or reading makes no progress for ``stall_s``
    seconds, so that "nothing found" always means "read to the end and not there"."""
    c = Consumer({**client, "group.id": "logml-reader",
                  "enable.auto.commit": False, "enable.partition.eof": True,
                  "auto.offset.reset": "earliest"})
    try:
        try:
            meta = c.list_topics(topic, timeout=stall_s)
            tmeta = meta.topics.get(topic)
            if tmeta is None or tmeta.error is not None:
                raise ReadError(f"topic {topic}: {getattr(tmeta, 'error', None) or 'missing'}")
            ends, tps = {}, []
            for p in tmeta.partitions:
                lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=stall_s)
                start = max(lo, (starts or {}).get(p, lo))
                if hi > start:
                    ends[p] = hi
                    tps.append(TopicPartition(topic, p, start))
        except KafkaException as e:
            raise ReadError(f"topic {topic}: {e.args[0]}") from None
        if not tps:
            return
        c.assign(tps)
        done: set[int] = set()
        last = time.monotonic()
        while len(done) < len(ends):
            if time.monotonic() - last > stall_s:
                raise ReadError(f"reading {topic} made no progress for {stall_s:.0f} s "
                                f"(partitions {sorted(set(ends) - done)} unfinished)")
            msg = c.poll(0.5)
            if msg is None:
                continue
            last = time.monotonic()
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    done.add(msg.partition())
                else:
                    log.warning("reading %s: %s", topic, err)
                continue
            if msg.partition() in done:
                continue
            if msg.offset() + 1 >= ends[msg.partition()]:
                done.add(msg.partition())
            yield msg
    finally:
        c.close()
