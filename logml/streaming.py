"""``logml run -c pipelines/kafka.toml``: one member of the consumer group (docs/streaming.md).

One pipeline per owned input partition (a service's lines stay in one partition, so its
templates, baselines and windows live with the partition). Data flows one way: the Kafka
source (``sources/kafka.py``) hands records and partition changes to this runner; each
batch goes through the pipelines, the sinks are flushed (documents to Elasticsearch, dead
letters to ``logs.dlq``) and only then are offsets committed. Every few seconds the state
of each owned partition, open windows included, is checkpointed (``checkpoint.py``); a
partition's first commit always follows its first checkpoint, so a new owner restores the
state and position that belong together and replays the rest (writes are idempotent).

Hand-over: revoked partitions (a graceful rebalance) are flushed, checkpointed and
committed, then dropped; lost partitions (another member owns them already) are dropped
without either. A graceful stop (SIGTERM, SIGINT, ``--exit-when-idle``) does the same for
all partitions and leaves the group; windows stay open for the next owner.
"""
from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass

from confluent_kafka import KafkaException, Producer

from .checkpoint import Checkpoint, CheckpointStore, CheckpointUnavailable
from .config import Config
from .metrics import MetricsPortError, Stats, serve
from .pipeline import Pipeline
from .sinks import Sink, SinkUnavailable
from .sinks.kafka_dlq import DeadLetterProducer
from .sources.kafka import (LINGER_S, KafkaSource, QuietLog, ReadError, StreamingError,
                            client_settings)

log = logging.getLogger("logml.streaming")
REFRESH_S = 60.0  # an unchanged partition is checkpointed again this often (fresh dlq mark)
LAG_EVERY_S = 5.0
RETRY_MAX_S = 60.0  # longest wait between two attempts to read a partition's state
FAULT_POINTS = ("mid_batch", "after_bulk", "checkpoint")
SUSPECT_WAIT_S = 3.0  # after a freeze, time for the group to say which partitions are lost


class Faults:
    """Test-only crash points. ``LOGML_FAULT="after_bulk:3"`` ends the process with exit
    code 137, as kill -9 would (no cleanup, nothing flushed), the 3rd time it passes
    ``after_bulk``; ``after_bulk:3:stop`` freezes it there instead (SIGSTOP, as a stalled
    machine would) until it gets SIGCONT. Points: mid_batch (records processed, nothing
    flushed), after_bulk (sinks acknowledged, offsets not committed), checkpoint (one
    partition's checkpoint written, the others not)."""

    def __init__(self, spec: str = ""):
        self.at: dict[str, tuple[int, str]] = {}
        self.seen: dict[str, int] = defaultdict(int)
        for part in filter(None, (x.strip() for x in spec.split(","))):
            fields = part.split(":")
            point, n, action = (fields + ["1", "exit"][len(fields) - 1:])[:3]
            if (len(fields) > 3 or point not in FAULT_POINTS or not n.isdigit()
                    or action not in ("exit", "stop")):
                raise StreamingError(f"LOGML_FAULT {part!r}: expected POINT[:N[:stop]], "
                                     f"POINT one of {list(FAULT_POINTS)}")
            self.at[point] = (int(n), action)

    def hit(self, point: str, before=None) -> None:
        if point not in self.at:
            return
        self.seen[point] += 1
        n, action = self.at[point]
        if self.seen[point] != n:
            return
        if before is not None:
            before()
        sys.stderr.write(f"logml: fault injected at {point} #{n}: {action}\n")
        sys.stderr.flush()
        if action == "stop":
            os.kill(os.getpid(), signal.SIGSTOP)
        else:
            os._exit(137)


class Watchdog:
    """Notices that the whole process did not run (SIGSTOP, a starved machine) for longer
    than the session timeout: by then the group has given its partitions to other members,
    and the consumer may hand out records it fetched before it learns so."""

    def __init__(self, limit_s: float):
        self.limit = limit_s
        self.tripped = False
        self._last = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="logml-watchdog", daemon=True)

    def start(self) -> None:
        self._last = time.monotonic()
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            now = time.monotonic()
            if now - self._last > self.limit:
                self.tripped = True
            self._last = now

    def frozen(self) -> bool:
        """Frozen since the last ``take`` (also when this thread has not run since)."""
        return self.tripped or time.monotonic() - self._last > self.limit

    def take(self) -> bool:
        frozen = self.frozen()
        self.tripped = False
        self._last = time.monotonic()
        return frozen

    def stop(self) -> None:
        self._stop.set()


class StreamSink:
    """Documents to one sink (Elasticsearch or JSONL), dead letters to Kafka."""

    def __init__(self, docs: Sink, dlq: DeadLetterProducer):
        self.docs, self.dlq = docs, dlq
        self.write_logs = docs.write_logs
        self.doc_seconds = 0.0  # in write_log_batch, building documents

    def waited(self) -> float:
        """Seconds the document sink has waited for its requests (backpressure)."""
        return getattr(self.docs, "waited", 0.0)

    def write(self, kind, docs) -> None:
        self.docs.write(kind, docs)

    def write_log_batch(self, events, idx, engine, source) -> None:
        t0, w0 = time.perf_counter(), self.waited()
        self.docs.write_log_batch(events, idx, engine, source)
        self.doc_seconds += time.perf_counter() - t0 - (self.waited() - w0)

    def backlog_full(self) -> bool:
        """The document sink has more waiting for acknowledgement than it may hold."""
        full = getattr(self.docs, "backlog_full", None)
        return bool(full is not None and full())

    def relieve(self) -> bool:
        """Wait for the oldest requests until the backlog is not full (newer ones stay in
        flight); False when only a flush can help (an outage)."""
        relieve = getattr(self.docs, "relieve", None)
        return relieve is not None and relieve()

    def dead_letter(self, errors) -> None:
        self.dlq.send(errors)

    def flush(self) -> None:
        self.docs.flush()
        self.dlq.flush()

    def close(self) -> None:
        self.docs.close()
        self.dlq.close()


@dataclass
class Waiting:
    """A partition assigned but paused: its state could not be read yet, or it is read and
    the consumer could not seek yet (``start``)."""
    why: str = ""
    attempt: int = 0
    next_try: float = 0.0
    start: int | None = None


class GroupMember:
    """The consume - process - flush - commit loop of one group member, and the listener
    of its partition changes."""

    def __init__(self, config: Config, stats: Stats | None = None,
                 faults: Faults | None = None):
        self.cfg = config
        k = config.kafka
        self.stats = stats or Stats()
        self.faults = faults or Faults()
        client = client_settings(k.bootstrap, QuietLog(logging.getLogger("logml.kafka.client")))
        self.producer = Producer({**client, "acks": "all", "enable.idempotence": True,
                                  "linger.ms": 20, "compression.type": "lz4",
                                  "message.max.bytes": 67108864})
        self.store = CheckpointStore(client, k.state_topic, self.producer,
                                     k.state_read_stall_s)
        self.dlq = DeadLetterProducer(self.producer, k.dlq_topic, client,
                                      k.state_read_stall_s, self.stats)
        self.sink: Sink = StreamSink(self._docs_sink(), self.dlq)
        self.source = KafkaSource(k, self, client)
        self.watchdog = Watchdog(k.session_timeout_s)
        self.quiet = QuietLog(log)  # for warnings repeated at every try
        self.pipelines: dict[int, Pipeline] = {}
        self.waiting: dict[int, Waiting] = {}
        self.saved: dict[int, int | None] = {}  # position at the last checkpoint written
        self.saved_at: dict[int, float] = {}
        self.committed: dict[int, int] = {}
        self.running = True
        self.joined = False
        self.last_change = time.time()  # last partition change (idle is counted from it)
        self.last_checkpoint = time.monotonic()
        self.last_flush = time.monotonic()
        self.last_lag = 0.0
        # where the time goes (logged at exit): consume (getting records that were there,
        # not waiting for them), process (documents apart: building
        # per-line documents), backpressure (waiting for the oldest bulk requests while
        # newer ones are in flight), flush (the barrier before a commit), commit, checkpoint
        self.timings = dict.fromkeys(("consume", "process", "documents", "backpressure",
                                      "flush", "commit", "checkpoint"), 0.0)
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

    # ---------------------------------------------------------------- partition changes
    def assigned(self, partitions: list[int]) -> dict[int, int | None]:
        self.joined, self.last_change = True, time.time()
        return self._open(partitions) if partitions else {}

    def revoked(self, partitions: list[int]) -> None:
        """Graceful hand-over: flush, checkpoint (windows stay open), commit, drop."""
        self.last_change = time.time()
        for p in partitions:
            self.waiting.pop(p, None)
        mine = [p for p in partitions if p in self.pipelines]
        if mine:
            try:
                self.sink.flush()
            except SinkUnavailable as e:
                log.warning("handing over %s without a final checkpoint, sinks unavailable "
                            "(%s): the next owner replays from the last one", mine, e)
            else:
                self._checkpoint(mine)
                self._commit(mine)
            log.info("revoked %s", mine)
        self._drop(mine)

    def lost(self, partitions: list[int]) -> None:
        """Another member owns these already: no commit, no checkpoint (it would overwrite
        the new owner's)."""
        self.last_change = time.time()
        for p in partitions:
            self.waiting.pop(p, None)
        mine = [p for p in partitions if p in self.pipelines]
        log.warning("lost %s (session timed out or fenced): dropped without commit or "
                    "checkpoint", mine or partitions)
        self._drop(mine)

    def _open(self, partitions: list[int]) -> dict[int, int | None]:
        """Pipelines of newly owned partitions from their checkpoints (fresh where none
        exists); the offset to start each from, None for those that must wait."""
        t0 = time.perf_counter()
        fresh: list[int] = []
        names = {self.source.name(p): p for p in partitions}
        try:
            found, bad = self.store.load(set(names))
        except CheckpointUnavailable as e:
            for p in partitions:
                self._wait(p, f"state topic unreadable: {e}")
            return {p: None for p in partitions}
        starts: dict[int, int | None] = {}
        restored: dict[int, Checkpoint] = {}
        for name, p in names.items():
            starts[p] = None
            if name in bad:
                self._wait(p, bad[name])
                continue
            ck = found.get(name)
            pipe = Pipeline(self.cfg, self.sink, self.stats)
            try:
                if ck is None:
                    start, had_commit = self.source.fresh_start(p)
                    if had_commit:
                        log.warning("%s has a committed offset (%d) but no checkpoint: "
                                    "starting there with empty state", name, start)
                    if start >= 0:
                        pipe.positions[name] = start
                    fresh.append(p)
                else:
                    pipe.restore(ck.state)
                    start = pipe.positions.get(name, ck.position)
                    if start is None:
                        start, _ = self.source.fresh_start(p)
                    restored[p] = ck
            except KafkaException as e:
                self._wait(p, f"offsets unreadable: {e.args[0]}")
                continue
            except Exception as e:  # noqa: BLE001 - any state that does not rebuild: this
                # partition waits (reported, retried), never a silent fresh start
                self._wait(p, f"checkpoint {name} does not restore: {type(e).__name__}: {e}")
                continue
            self.pipelines[p] = pipe
            starts[p] = start
        if restored:
            marks: dict[int, int] = {}
            for ck in restored.values():
                for dp, off in ck.dlq_mark.items():
                    marks[dp] = min(off, marks.get(dp, off))
            try:
                self.dlq.replaying({self.source.name(p) for p in restored}, marks)
            except ReadError as e:
                for p in restored:
                    del self.pipelines[p]
                    starts[p] = None
                    self._wait(p, f"dead-letter topic unreadable: {e}")
                restored = {}
            for p in restored:
                self.saved[p], self.saved_at[p] = starts[p], time.monotonic()
        if fresh:
            self._checkpoint(fresh)  # before any commit of theirs
        for p in starts:
            if starts[p] is not None:
                self.waiting.pop(p, None)
        self._publish_waiting()
        log.info("opened %s in %.2f s: %d restored, %d fresh, %d waiting for their state",
                 partitions, time.perf_counter() - t0, len(restored), len(fresh),
                 sum(1 for v in starts.values() if v is None))
        return starts

    def _wait(self, p: int, why: str) -> None:
        w = self.waiting.setdefault(p, Waiting())
        w.attempt += 1
        w.why, w.start = why, None
        delay = min(RETRY_MAX_S, 2.0 ** (w.attempt - 1))
        w.next_try = time.monotonic() + delay
        with self.stats.lock:
            self.stats.checkpoint_errors["load"] += 1
        log.error("partition %s waits for its state (attempt %d, retry in %.0f s): %s",
                  self.source.name(p), w.attempt, delay, why)
        self._publish_waiting()

    def _publish_waiting(self) -> None:
        with self.stats.lock:
            self.stats.partitions_waiting = len(self.waiting)

    def _retry_waiting(self) -> None:
        now = time.monotonic()
        due = [p for p, w in self.waiting.items() if w.next_try <= now]
        load = [p for p in due if self.waiting[p].start is None]
        if load:
            for p, start in self._open(load).items():
                if start is not None:
                    self.waiting[p] = Waiting("seek", start=start)
        for p in due:
            w = self.waiting.get(p)
            if w is None or w.start is None:
                continue
            if self.source.start(p, w.start):
                del self.waiting[p]
                log.info("partition %s has its state back: resumed at offset %d",
                         self.source.name(p), w.start)
            else:
                w.next_try = now + 0.5
        self._publish_waiting()

    def _suspect(self) -> None:
        """After a freeze longer than the session timeout: drop every partition without
        flush, commit or checkpoint (another member may own it and have written newer
        state), and read back from its checkpoint whichever is still ours."""
        mine = list(self.pipelines)
        log.warning("this process did not run for more than the session timeout: %s "
                    "dropped without commit or checkpoint; read back from their checkpoints "
                    "if still ours", mine)
        self._drop(mine)
        self.source.pause(mine)
        retry = time.monotonic() + SUSPECT_WAIT_S
        for p in mine:
            self.waiting[p] = Waiting("suspended", next_try=retry)
        self._publish_waiting()

    def _drop(self, partitions: list[int]) -> None:
        for p in partitions:
            pipe = self.pipelines.pop(p)
            self.stats.forget([s.name for s in pipe.engine.services])
            self.dlq.forget(self.source.name(p))
            for d in (self.saved, self.saved_at, self.committed):
                d.pop(p, None)
        with self.stats.lock:
            for p in partitions:
                self.stats.consumer_lag.pop(p, None)

    # ---------------------------------------------------------------- the loop
    def run(self, exit_when_idle: float | None = None) -> int:
        k = self.cfg.kafka
        self.source.check_topics(k.dlq_topic, k.state_topic)
        self.source.subscribe()
        self.watchdog.start()
        # What start-up made (modules, numba's and the clients' objects: 100k+) is never
        # garbage: out of the collector's sight, a full collection, which the messages of
        # a few batches set off, no longer walks all of it (~0.2 s CPU a 250k records).
        gc.freeze()
        last_data = 0.0
        started, cpu0 = time.perf_counter(), time.process_time()
        clean = True
        n = 0
        try:
            while self.running:
                t0 = time.perf_counter()
                # right after records, a short wait: when none are left the sinks are
                # flushed and offsets committed at once, not a poll timeout later
                batches = self.source.poll(LINGER_S if n else k.poll_timeout_s)
                t1 = time.perf_counter()
                if self.watchdog.take():
                    self._suspect()
                    continue
                n = 0
                docs0, wait0 = self.sink.doc_seconds, self.sink.waited()
                for r in batches:
                    pipe = self.pipelines.get(r.partition)
                    if pipe is None:  # not ours (any more), or waiting for its state
                        continue
                    pipe.process_records(r.values, r.offsets, r.source, r.keys)
                    n += len(r.values)
                    self.faults.hit("mid_batch")
                now = time.time()
                for pipe in self.pipelines.values():
                    pipe.tick(now)  # a caught-up partition's windows close as time passes
                if n:
                    last_data = now
                    self.records += n
                    self.timings["consume"] += t1 - t0 - self.source.idle_s
                    docs, wait = self.sink.doc_seconds - docs0, self.sink.waited() - wait0
                    self.timings["documents"] += docs
                    self.timings["backpressure"] += wait
                    self.timings["process"] += time.perf_counter() - t1 - docs - wait
                # Flush (the barrier: every bulk acknowledged), commit and checkpoint every
                # commit_interval_s; in between the sink indexes while the next records are
                # processed. Also when idle. When the sink's backlog is full, intake waits
                # for its oldest requests (the newer ones stay in flight); after an outage
                # for a flush.
                full = self.sink.backlog_full()
                if full and n:
                    wait0 = self.sink.waited()
                    full = not self.sink.relieve()
                    self.timings["backpressure"] += self.sink.waited() - wait0
                if (not n or full
                        or time.monotonic() - self.last_flush >= k.commit_interval_s):
                    if not self._flush():
                        break
                    self.last_flush = time.monotonic()
                    if n:
                        self.faults.hit("after_bulk")
                    self._commit()
                    if (time.monotonic() - self.last_checkpoint >= k.checkpoint_interval_s
                            and not self.watchdog.frozen()):
                        self._checkpoint(self._dirty())
                if n:
                    self.stats.batch_latency.observe(time.perf_counter() - t1)
                if self.waiting:
                    self._retry_waiting()
                if not n or time.time() - self.last_lag > LAG_EVERY_S:
                    caught_up = self._update_lag()
                    idle_since = max(last_data, self.last_change)
                    if (exit_when_idle is not None and not n and caught_up and self.joined
                            and now - idle_since >= exit_when_idle):
                        log.info("idle for %.0f s and caught up: stopping", now - idle_since)
                        break
            clean = self._stop()
            busy = sum(self.timings.values())
            log.info("done: %d records in %.1f s (%.0f records/s while busy); seconds in "
                     "%s", self.records, time.perf_counter() - started,
                     self.records / busy if busy else 0.0,
                     ", ".join(f"{k} {v:.2f}" for k, v in self.timings.items()))
            cpu = time.process_time() - cpu0  # all threads: the one figure a busy machine
            log.info("cpu: %.2f s (%.2f us a record)", cpu,  # does not inflate much
                     cpu / self.records * 1e6 if self.records else 0.0)
            if self.stats.dead_letters_replayed:
                log.info("replay: %d dead letters already in %s were not written again",
                         self.stats.dead_letters_replayed, k.dlq_topic)
        finally:
            self.watchdog.stop()
            # after an error the pipelines may hold half a batch: never checkpoint them
            self._drop(list(self.pipelines))
            self.source.close()
            self.sink.close()
        return 0 if clean else 1

    def _flush(self) -> bool:
        """Flush every sink, pausing intake while one is down; False when asked to stop
        meanwhile (nothing is committed then)."""
        delay = 1.0
        t0 = time.perf_counter()
        try:
            while True:
                try:
                    self.sink.flush()
                    return True
                except SinkUnavailable as e:
                    if not self.running:
                        return False
                    log.warning("sink unavailable (%s): pausing, retry in %.0f s", e, delay)
                    self.source.keep_alive(delay)
                    delay = min(delay * 2, 30.0)
        finally:
            self.timings["flush"] += time.perf_counter() - t0

    def _commit(self, partitions: list[int] | None = None) -> None:
        """Commit acknowledged positions of partitions that have a checkpoint."""
        t0 = time.perf_counter()
        todo: dict[str, int] = {}
        for p in self.pipelines if partitions is None else partitions:
            name = self.source.name(p)
            pos = self.pipelines[p].positions.get(name)
            if p in self.saved and pos is not None and pos != self.committed.get(p):
                todo[name] = pos
            if pos is not None:
                self.dlq.replayed(name, pos)
        if todo and self.source.commit(todo):
            for name, pos in todo.items():
                self.committed[int(name.rsplit("/", 1)[1])] = pos
        self.timings["commit"] += time.perf_counter() - t0

    def _dirty(self) -> list[int]:
        """Partitions whose state moved since their last checkpoint, or whose last
        checkpoint is old."""
        now = time.monotonic()
        return [p for p, pipe in self.pipelines.items()
                if pipe.positions.get(self.source.name(p)) != self.saved.get(p, -1)
                or now - self.saved_at.get(p, 0.0) >= REFRESH_S]

    def _checkpoint(self, partitions: list[int]) -> bool:
        """Write the state of ``partitions`` (call after the sinks were flushed)."""
        self.last_checkpoint = time.monotonic()
        if not partitions:
            return True
        t0 = time.perf_counter()
        try:
            mark = self.dlq.mark()
            for i, p in enumerate(partitions):
                name = self.source.name(p)
                pipe = self.pipelines[p]
                self.store.save(name, pipe.state(), pipe.positions.get(name), mark)
                if i == 0:
                    self.faults.hit("checkpoint", before=self.store.flush)
            self.store.flush()
        except (CheckpointUnavailable, SinkUnavailable) as e:
            with self.stats.lock:
                self.stats.checkpoint_errors["save"] += 1
            log.error("checkpoint of %s not written (%s): a crash now replays from the "
                      "previous one", partitions, e)
            return False
        finally:
            self.timings["checkpoint"] += time.perf_counter() - t0
        now = time.monotonic()
        for p in partitions:
            self.saved[p] = self.pipelines[p].positions.get(self.source.name(p))
            self.saved_at[p] = now
        return True

    def _stop(self) -> bool:
        """Graceful stop: flush, checkpoint the open windows (no finish()), commit, drop."""
        mine = list(self.pipelines)
        try:
            self.sink.flush()
        except SinkUnavailable as e:
            log.error("stopping with the sinks unavailable (%s): no final checkpoint or "
                      "commit; the next owner replays from the last checkpoint", e)
            self._drop(mine)
            return False
        ok = self._checkpoint(mine)
        self._commit(mine)
        self._drop(mine)
        return ok

    def _update_lag(self) -> bool:
        """Refresh the lag gauge and each pipeline's ``live`` flag; True when every owned
        partition is caught up and none waits for its state."""
        self.last_lag = time.time()
        with self.stats.lock:
            self.stats.kafka_brokers_up = self.source.brokers_up
        positions = {}
        for p, pipe in self.pipelines.items():
            pos = pipe.positions.get(self.source.name(p))
            positions[p] = pos if pos is not None else 0
        try:
            lag = self.source.lag(positions)
        except KafkaException as e:
            self.quiet.log(logging.WARNING, "lag unknown: %s", e.args[0])
            return False
        for p, n in lag.items():
            self.pipelines[p].live = n == 0
        with self.stats.lock:
            self.stats.consumer_lag = lag
        return not self.waiting and all(v == 0 for v in lag.values())


def run_kafka(config: Config, exit_when_idle: float | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("elastic_transport").setLevel(logging.WARNING)  # a line per bulk
    if "NUMBA_NUM_THREADS" not in os.environ:
        # A consumer is one core's work and scales out by processes (partitions): numba's
        # thread pool on per-partition batches costs more than it gains, the more so on a
        # busy machine (benchmarks/results/streaming_vs_bare_loader.json).
        import numba
        numba.set_num_threads(1)
    member: GroupMember | None = None
    stop_asked = False

    def stop(signum, frame):
        nonlocal stop_asked
        stop_asked = True
        if member is not None:
            member.running = False
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second signal ends it now
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    stats = Stats()
    m = config.metrics
    try:
        faults = Faults(os.environ.get("LOGML_FAULT", ""))
        server = serve(stats, m.port, m.address)
    except (MetricsPortError, StreamingError) as e:
        print(f"logml: error: {e}", file=sys.stderr)
        return 2
    if server is not None:
        log.info("metrics on http://%s:%d/metrics", m.address, server.server_port)
    try:
        member = GroupMember(config, stats, faults)
        member.running = not stop_asked
        return member.run(exit_when_idle)
    except StreamingError as e:
        print(f"logml: error: {e}", file=sys.stderr)
        return 2
    finally:
        if server is not None:
            server.shutdown()
