"""``logml run -c pipelines/kafka.toml``: a member of consumer group ``logml``.

One pipeline per assigned input partition (a service's lines stay in one partition, so its
templates, baselines and windows live with the partition). Each batch: consume, process,
flush the sinks (Elasticsearch documents, dead letters to ``logs.dlq``), and only then
commit the offsets (at-least-once; deterministic ids make replays overwrite). Every few
seconds, and when partitions are revoked or the process stops, each pipeline's state is
checkpointed to the compacted ``logml.state`` topic under its partition; a consumer that
is assigned the partition restores it and seeks to the checkpoint's position.
"""
from __future__ import annotations

import logging
import signal
import sys
import time

from confluent_kafka import (OFFSET_INVALID, Consumer, KafkaError, KafkaException, Producer,
                             TopicPartition)

from . import snapshot
from .config import Config
from .metrics import Stats, serve
from .pipeline import STATE_KIND, Pipeline
from .sinks import SinkUnavailable
from .sinks.kafka_dlq import DeadLetterProducer

log = logging.getLogger("logml.streaming")
CHECKPOINT_EVERY_S = 5.0
LAG_EVERY_S = 5.0


class StreamingError(Exception):
    """The consumer cannot start; the message says what to do."""


class StateStore:
    """Checkpoints in the compacted state topic, one key per input partition."""

    def __init__(self, bootstrap: str, topic: str, producer: Producer):
        self.bootstrap, self.topic, self.producer = bootstrap, topic, producer

    @staticmethod
    def key(topic: str, partition: int) -> str:
        return f"{topic}/{partition}"

    def save(self, key: str, state: dict) -> None:
        self.producer.produce(self.topic, key=key.encode(), value=snapshot.dumps(STATE_KIND, state))

    def flush(self) -> None:
        if self.producer.flush(30.0):
            raise SinkUnavailable(f"state topic {self.topic}: checkpoint not acknowledged")

    def load(self, keys: set[str]) -> dict[str, dict]:
        """Latest checkpoint of each key (read the compacted topic to its end)."""
        if not keys:
            return {}
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "logml-state-reader",
                      "enable.auto.commit": False, "enable.partition.eof": True})
        try:
            meta = c.list_topics(self.topic, timeout=10)
            parts = list(meta.topics[self.topic].partitions)
            ends = {}
            tps = []
            for p in parts:
                lo, hi = c.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10)
                if hi > lo:
                    ends[p] = hi
                    tps.append(TopicPartition(self.topic, p, lo))
            latest: dict[str, bytes] = {}
            if tps:
                c.assign(tps)
                done: set[int] = set()
                deadline = time.time() + 60
                while len(done) < len(tps) and time.time() < deadline:
                    msg = c.poll(1.0)
                    if msg is None:
                        continue
                    if msg.error():
                        if msg.error().code() == KafkaError._PARTITION_EOF:
                            done.add(msg.partition())
                        continue
                    k = msg.key().decode() if msg.key() else ""
                    if k in keys:
                        if msg.value() is None:
                            latest.pop(k, None)
                        else:
                            latest[k] = msg.value()
                    if msg.offset() + 1 >= ends[msg.partition()]:
                        done.add(msg.partition())
            return {k: snapshot.loads(v, STATE_KIND) for k, v in latest.items()}
        finally:
            c.close()


class StreamSink:
    """Documents to one sink (Elasticsearch or JSONL), dead letters to Kafka."""

    def __init__(self, docs, dlq: DeadLetterProducer):
        self.docs, self.dlq = docs, dlq
        self.write_logs = docs.write_logs

    def write(self, kind, docs) -> None:
        self.docs.write(kind, docs)

    def dead_letter(self, errors) -> None:
        self.dlq.send(errors)

    def flush(self) -> None:
        self.docs.flush()
        self.dlq.flush()

    def close(self) -> None:
        self.docs.close()


class GroupMember:
    """The consume - process - flush - commit loop of one group member."""

    def __init__(self, config: Config, stats: Stats | None = None):
        self.cfg = config
        k = config.kafka
        self.stats = stats or Stats()
        self.producer = Producer({"bootstrap.servers": k.bootstrap, "acks": "all",
                                  "enable.idempotence": True, "linger.ms": 20,
                                  "compression.type": "lz4", "message.max.bytes": 67108864})
        self.state = StateStore(k.bootstrap, k.state_topic, self.producer)
        self.sink = StreamSink(self._docs_sink(), DeadLetterProducer(self.producer, k.dlq_topic))
        self.pipelines: dict[int, Pipeline] = {}
        self.consumer = Consumer({
            "bootstrap.servers": k.bootstrap, "group.id": k.group,
            "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "session.timeout.ms": 10000, "heartbeat.interval.ms": 2000,
            "max.poll.interval.ms": 600000, "enable.partition.eof": False,
            "partition.assignment.strategy": "range"})
        self.running = True
        self.last_checkpoint = time.time()
        self.last_lag = 0.0
        # where the time goes (logged at exit): consume, process, flush, commit, checkpoint
        self.timings = dict.fromkeys(("consume", "process", "flush", "commit", "checkpoint"), 0.0)
        self.records = 0

    def _docs_sink(self):
        if self.cfg.sink == "elasticsearch":
            from .sinks.elasticsearch import ElasticsearchSink
            es = self.cfg.elasticsearch
            return ElasticsearchSink(es, self.stats,
                                     dead_letter=lambda errors: self.sink.dead_letter(errors),
                                     unavailable_timeout_s=es.unavailable_timeout_s)
        from .sinks.jsonl import JsonlSink
        return JsonlSink(self.cfg.output.dir, self.cfg.output.write_logs, append=True)

    # ---------------------------------------------------------------- rebalance
    def _on_assign(self, consumer, partitions) -> None:
        topic = self.cfg.kafka.topic
        keys = {StateStore.key(topic, p.partition) for p in partitions}
        saved = self.state.load(keys)
        for p in partitions:
            pipe = Pipeline(self.cfg, self.sink, self.stats)
            state = saved.get(StateStore.key(topic, p.partition))
            if state is not None:
                pipe.restore(state)
                pos = pipe.positions.get(StateStore.key(topic, p.partition))
                if pos is not None:
                    p.offset = pos
            self.pipelines[p.partition] = pipe
        log.info("assigned %s (restored %d checkpoints)",
                 [p.partition for p in partitions], len(saved))
        consumer.assign(partitions)

    def _on_revoke(self, consumer, partitions) -> None:
        revoked = [p.partition for p in partitions if p.partition in self.pipelines]
        if revoked:
            self._flush_and_commit()
            self._checkpoint(revoked)
        for p in revoked:
            self.stats.forget([s.name for s in self.pipelines[p].engine.services])
            del self.pipelines[p]
        consumer.unassign()

    # ---------------------------------------------------------------- the loop
    def run(self, exit_when_idle: float | None = None) -> int:
        k = self.cfg.kafka
        self._check_topics()
        self.consumer.subscribe([k.topic], on_assign=self._on_assign, on_revoke=self._on_revoke,
                                on_lost=self._on_revoke)
        last_data = time.time()
        started = time.perf_counter()
        try:
            while self.running:
                t0 = time.perf_counter()
                msgs = self.consumer.consume(k.batch_size, k.poll_timeout_s)
                data = [m for m in msgs if not m.error()]
                for m in msgs:
                    if m.error():
                        log.warning("consume error: %s", m.error())
                if data:
                    last_data = time.time()
                    t1 = time.perf_counter()
                    self.timings["consume"] += t1 - t0
                    self._process(data)
                    self.timings["process"] += time.perf_counter() - t1
                    self.records += len(data)
                    self._flush_and_commit()
                    self.stats.batch_latency.observe(time.perf_counter() - t1)
                now = time.time()
                if now - self.last_checkpoint > CHECKPOINT_EVERY_S:
                    self._checkpoint(list(self.pipelines))
                if now - self.last_lag > LAG_EVERY_S or not data:
                    caught_up = self._update_lag()
                    if (exit_when_idle is not None and not data and caught_up
                            and now - last_data >= exit_when_idle):
                        log.info("idle for %.0f s and caught up: finishing", now - last_data)
                        break
            for pipe in self.pipelines.values():
                pipe.finish()
            self._flush_and_commit()
            self._checkpoint(list(self.pipelines))
            busy = sum(self.timings.values())
            log.info("done: %d records in %.1f s (%.0f records/s while busy); seconds in "
                     "%s", self.records, time.perf_counter() - started,
                     self.records / busy if busy else 0.0,
                     ", ".join(f"{k} {v:.2f}" for k, v in self.timings.items()))
        finally:
            self.consumer.close()
            self.sink.close()
        return 0

    def _check_topics(self) -> None:
        """Fail early, with what to do, when Kafka or a topic is missing."""
        k = self.cfg.kafka
        try:
            meta = self.consumer.list_topics(timeout=15)
        except KafkaException as e:
            raise StreamingError(f"cannot reach Kafka at {k.bootstrap} ({e}); start it "
                                 "(tests/services/up kafka) or set KAFKA_BOOTSTRAP") from None
        missing = [t for t in (k.topic, k.dlq_topic, k.state_topic) if t not in meta.topics]
        if missing:
            raise StreamingError(f"topics {missing} do not exist on {k.bootstrap}; create them "
                                 "as kafka/topics.conf describes (logml.state compacted)")

    def _process(self, msgs) -> None:
        topic = self.cfg.kafka.topic
        by_part: dict[int, list] = {}
        for m in msgs:
            by_part.setdefault(m.partition(), []).append(m)
        for part, ms in by_part.items():
            pipe = self.pipelines.get(part)
            if pipe is None:  # not (or no longer) ours
                continue
            pipe.process_records([m.value() or b"" for m in ms], [m.offset() for m in ms],
                                 StateStore.key(topic, part), lambda: [m.key() for m in ms])

    def _flush_and_commit(self) -> None:
        """Flush every sink (pausing intake while a sink is down), then commit offsets."""
        delay = 1.0
        t0 = time.perf_counter()
        while True:
            try:
                self.sink.flush()
                break
            except SinkUnavailable as e:
                if not self.running:
                    raise
                log.warning("sink unavailable (%s): pausing, retry in %.0f s", e, delay)
                assignment = self.consumer.assignment()
                self.consumer.pause(assignment)
                end = time.time() + delay
                while time.time() < end:
                    self.consumer.poll(0.2)  # stay in the group while paused
                self.consumer.resume(assignment)
                delay = min(delay * 2, 30.0)
        t1 = time.perf_counter()
        self.timings["flush"] += t1 - t0
        topic = self.cfg.kafka.topic
        offsets = [TopicPartition(topic, p, pipe.positions[StateStore.key(topic, p)])
                   for p, pipe in self.pipelines.items()
                   if StateStore.key(topic, p) in pipe.positions]
        if offsets:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        self.timings["commit"] += time.perf_counter() - t1

    def _checkpoint(self, partitions) -> None:
        t0 = time.perf_counter()
        topic = self.cfg.kafka.topic
        for p in partitions:
            self.state.save(StateStore.key(topic, p), self.pipelines[p].state())
        self.state.flush()
        self.last_checkpoint = time.time()
        self.timings["checkpoint"] += time.perf_counter() - t0

    def _update_lag(self) -> bool:
        """Refresh the lag gauge; True when every assigned partition is caught up."""
        self.last_lag = time.time()
        topic = self.cfg.kafka.topic
        lag = {}
        for tp in self.consumer.assignment():
            _, hi = self.consumer.get_watermark_offsets(tp, timeout=5, cached=False)
            pipe = self.pipelines.get(tp.partition)
            pos = pipe.positions.get(StateStore.key(topic, tp.partition)) if pipe else None
            if pos is None:
                committed = self.consumer.committed([tp], timeout=5)[0].offset
                pos = committed if committed != OFFSET_INVALID else 0
            lag[tp.partition] = max(hi - pos, 0)
        with self.stats.lock:
            self.stats.consumer_lag = lag
        return all(v == 0 for v in lag.values())


def run_kafka(config: Config, exit_when_idle: float | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stats = Stats()
    m = config.metrics
    server = serve(stats, m.port, m.address) if m.port else None
    member = GroupMember(config, stats)

    def stop(signum, frame):
        member.running = False
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        return member.run(exit_when_idle)
    except StreamingError as e:
        print(f"logml run: {e}", file=sys.stderr)
        return 2
    finally:
        if server:
            server.shutdown()
