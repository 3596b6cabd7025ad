"""Streaming throughput, Kafka to Elasticsearch, against a bare bulk loader on the same lines,
the same Elasticsearch, in the same run (the machine is shared: only ratios within one run
mean something). Needs the real services (tests/services/up kafka elasticsearch).

- bare loader: one thread, 5000 documents a request, one request at a time, logml's index
  template (the same refresh settings as logml's indices); with the events as they are
  (what Filebeat would index) and with the very documents logml writes (built beforehand),
  the server's speed for the same documents;
- logml: consumers (separate processes, one consumer group, settings of
  pipelines/kafka.toml: 5000 documents or 8 MB a bulk request, 3 in flight) with per-line
  documents on and off, each run on a fresh topic of 4 partitions. The consumers join the
  group, are stopped (SIGSTOP) once the group is stable, the lines are produced, and the
  clock starts when they continue (SIGCONT): neither producing nor start-up is timed,
  as neither is for the loader. Throughput: all lines / seconds from then to the moment
  Kafka has every offset committed (committed = acknowledged by every sink).
- bare consumer: one plain Kafka consumer (logml's fetch settings) only taking the records
  out, its CPU a record, and the broker's and Elasticsearch's CPU during each timed part
  (from tests/services/up's pid files): what bounds a consumer on this machine;
- rounds (LOGML_BENCH_ROUNDS, default 3): each round runs the loader (logml's documents),
  the bare consumer and one logml consumer with and without documents, alternating which
  goes first; the ratio is
  the median of the rounds' ratios. Then the scale-out table: 2 and 4 consumers, documents
  on and off, once each (LOGML_BENCH_CONSUMERS), and the raw-events loader once.
"""
import gc
import hashlib
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import tomllib
import urllib.request
import uuid
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, Message, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from logml import setup as S
from logml.decode import Decoder
from logml.docs import LogDocs, day_name
from logml.config import load
from logml.generate import write
from logml.pipeline import Pipeline
from logml.sources.kafka import FETCH_SETTINGS
from logml.template import TemplateEngine

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "integration")]
from kafka_helpers import produce  # noqa: E402
from servicekit import services, stop_group  # noqa: E402

pytestmark = pytest.mark.integration
PARTITIONS = 4
SERVICES = 8
BULK_DOCS = 5000


def _topics(bootstrap: str, *specs) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(name, parts, 1, config=cfg or {})
                                  for name, parts, cfg in specs]).values():
        f.result(30)


class Committed:
    """The group's committed offsets, summed over the partitions (one client, reused)."""

    def __init__(self, bootstrap: str, group: str, topic: str):
        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
        self.tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]

    def __call__(self) -> int:
        return sum(tp.offset for tp in self.c.committed(self.tps, timeout=10)
                   if tp.offset > 0)

    def close(self) -> None:
        self.c.close()


def _service_cpu() -> dict[str, float]:
    """CPU seconds used so far by the Kafka broker and Elasticsearch (JVMs started by
    tests/services/up; empty when they run elsewhere): who else works while logml runs."""
    out = {}
    run = os.environ.get("LOGML_SERVICES_RUN")
    for name in ("kafka", "elasticsearch") if run else ():
        try:
            pid = int((Path(run) / f"{name}.pid").read_text())
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, ValueError):
            continue
        out[name] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def _cpu_since(before: dict[str, float]) -> dict[str, float]:
    return {k: round(v - before[k], 2) for k, v in _service_cpu().items() if k in before}


def _es(url: str, path: str, method: str = "GET", body: bytes | None = None) -> dict:
    req = urllib.request.Request(f"{url}/{path}", data=body, method=method,
                                 headers={"Content-Type": "application/x-ndjson"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return orjson.loads(resp.read())


@pytest.fixture(scope="module")
def workload(tmp_path_factory):
    env = services("kafka", "elasticsearch")
    events, _ = write(tmp_path_factory.mktemp("gen"), seed=9, hours=1, services=SERVICES,
                      start=1_764_000_000.0, rate=6.0)
    lines = events.read_bytes().splitlines()
    for write_logs in (True, False):  # numba's on-disk caches filled before the clock runs
        class Sink:
            def __init__(self):
                self.write_logs, self.docs = write_logs, LogDocs()

            def write(self, kind, docs):
                pass

            def write_log_batch(self, events, idx, engine, source):
                self.docs.build(events, idx, engine, source)

            def dead_letter(self, errors):
                pass
        Pipeline(load(), Sink()).process_records(lines[:2000], list(range(2000)), "warm")
    records = [(orjson.loads(x)["service"]["name"].encode(), x) for x in lines]
    return env, records, lines


def raw_documents(lines: list[bytes]) -> list[tuple[bytes, bytes]]:
    """(action line, document) for the events as they are."""
    out = []
    for n, line in enumerate(lines):
        day = line[15:25].replace(b"-", b".")  # {"@timestamp":"YYYY-MM-DD
        doc_id = hashlib.blake2b(b"%d" % n, digest_size=12).hexdigest().encode()
        out.append((b'{"index":{"_index":"PREFIX-logs-' + day + b'","_id":"' + doc_id +
                    b'"}}\n', line))
    return out


def logml_documents(lines: list[bytes]) -> list[tuple[bytes, bytes]]:
    """(action line, document) of the per-line documents logml writes for these lines
    (built here, before the clock starts)."""
    engine, builder, out = TemplateEngine(), LogDocs(), []
    for k in range(0, len(lines), 20000):
        events, _ = Decoder(keep_events=True).decode_block(
            b"\n".join(lines[k:k + 20000]) + b"\n", k, "bench", now=2e9)
        idx, _ = engine.template_events(events)
        days, ids, docs = builder.build(events, idx, engine, "bench")
        for day, doc_id, doc in zip(days.tolist(), ids, docs):
            out.append((b'{"index":{"_index":"PREFIX-logs-' + day_name(day).encode() +
                        b'","_id":"' + doc_id.encode() + b'"}}\n', doc))
    return out


def bare_loader(url: str, docs: list[tuple[bytes, bytes]]) -> float:
    """Documents a second: one thread, one request of 5000 at a time, nothing else."""
    prefix = f"bare{uuid.uuid4().hex[:6]}"
    assert S.setup(url, prefix=prefix).ok
    try:
        t0 = time.perf_counter()
        for k in range(0, len(docs), BULK_DOCS):
            body = []
            for action, doc in docs[k:k + BULK_DOCS]:
                body += (action.replace(b"PREFIX", prefix.encode(), 1), doc, b"\n")
            resp = _es(url, "_bulk?filter_path=errors", "POST", b"".join(body))
            assert not resp["errors"]
        seconds = time.perf_counter() - t0
        _es(url, f"{prefix}-logs-*/_refresh", "POST")
        assert _es(url, f"{prefix}-logs-*/_count")["count"] == len(docs)
        return len(docs) / seconds
    finally:
        _es(url, f"{prefix}-*", "DELETE")
        for kind in S.KINDS:
            _es(url, f"_index_template/{prefix}-{kind}", "DELETE")


def _tail(log) -> str:
    log.flush()
    log.seek(0)
    return "".join(x for x in log.read().splitlines(True)[-30:] if "rdkafka" not in x)


def _stable(bootstrap: str, group: str, consumers: int) -> bool:
    """Every consumer in the group with its share of the partitions, no rebalance going on."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        desc = admin.describe_consumer_groups([group])[group].result(10)
    except Exception:  # noqa: BLE001 - not there yet
        return False
    if str(desc.state).split(".")[-1] != "STABLE" or len(desc.members) != consumers:
        return False
    shares = [len(m.assignment.topic_partitions) for m in desc.members]
    return sum(shares) == PARTITIONS and max(shares) - min(shares) <= 1


def run_logml(env, records, lines: list[bytes], consumers: int, write_logs: bool,
              tmp_path: Path) -> dict:
    """Acknowledged lines a second of ``consumers`` processes, and their own timings."""
    bootstrap, url = env["KAFKA_BOOTSTRAP"], env["ES_URL"]
    tag = uuid.uuid4().hex[:8]
    group, prefix = f"bench-{tag}", f"bench{tag}"
    topic, dlq, state = f"bench.{tag}.raw", f"bench.{tag}.dlq", f"bench.{tag}.state"
    _topics(bootstrap, (topic, PARTITIONS, None), (dlq, 1, None),
            (state, 1, {"cleanup.policy": "compact", "max.message.bytes": "67108864"}))
    assert S.setup(url, prefix=prefix).ok
    shipped = tomllib.loads((REPO / "pipelines" / "kafka.toml").read_text())
    cfg = tmp_path / f"{tag}.toml"
    # pipelines/kafka.toml's settings; a session long enough for the pause while producing
    cfg.write_text(f"""
source = "kafka"
sink = "elasticsearch"
[kafka]
bootstrap = "{bootstrap}"
topic = "{topic}"
dlq_topic = "{dlq}"
state_topic = "{state}"
group = "{group}"
batch_size = {shipped["kafka"]["batch_size"]}
commit_interval_s = {shipped["kafka"]["commit_interval_s"]}
session_timeout_s = 60
[elasticsearch]
url = "{url}"
index_prefix = "{prefix}"
write_logs = {str(write_logs).lower()}
""")
    logs = [open(tmp_path / f"{tag}-{k}.log", "w+") for k in range(consumers)]
    procs = [subprocess.Popen([sys.executable, "-m", "logml.cli", "run", "-c", str(cfg),
                               "--exit-when-idle", "120"], stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True, cwd=REPO) for log in logs]
    committed = Committed(bootstrap, group, topic)
    stopped = False
    try:
        # every consumer in the group with its partitions; stopped while the lines arrive
        deadline = time.time() + 180
        while not (all("opened [" in Path(log.name).read_text() for log in logs)
                   and _stable(bootstrap, group, consumers)):
            assert time.time() < deadline and all(p.poll() is None for p in procs), \
                "\n".join(_tail(log) for log in logs)
            time.sleep(0.3)
        time.sleep(0.5)
        for p in procs:
            os.kill(p.pid, signal.SIGSTOP)
        stopped = True
        produce(bootstrap, topic, records)
        start, services_cpu = time.time(), _service_cpu()
        for p in procs:
            os.kill(p.pid, signal.SIGCONT)
        stopped = False
        deadline = time.time() + 1800
        while time.time() < deadline:
            done = committed()
            end = time.time()
            if done >= len(lines):
                break
            failed = any(p.poll() is not None for p in procs)
            if failed and committed() < len(lines):
                raise AssertionError("consumers failed or ended early:\n" + "\n".join(
                    _tail(log) for log in logs))
            time.sleep(0.05)
        services_cpu = _cpu_since(services_cpu)
        assert done == len(lines), (done, len(lines))
        for p in procs:  # a graceful stop (flush, checkpoint, commit, leave the group)
            os.kill(p.pid, signal.SIGTERM)
        for p in procs:
            assert p.wait(120) == 0
        if write_logs:  # nothing lost, nothing doubled
            _es(url, f"{prefix}-logs-*/_refresh", "POST")
            assert _es(url, f"{prefix}-logs-*/_count")["count"] == len(lines)
    finally:
        committed.close()
        for p in procs:
            if stopped:
                os.kill(p.pid, signal.SIGCONT)
            stop_group(p)
        _es(url, f"{prefix}-*", "DELETE")
        for kind in S.KINDS:
            _es(url, f"_index_template/{prefix}-{kind}", "DELETE")
    timings = []
    for log in logs:
        log.seek(0)
        text = log.read()
        m = re.search(r"done: (\d+) records in [\d.]+ s \((\d+) records/s while busy\); "
                      r"seconds in (.*)", text)
        assert m, text[-3000:]
        cpu = re.search(r"cpu: ([\d.]+) s", text)
        assert cpu, text[-3000:]
        timings.append({"records": int(m.group(1)), "busy_lines_per_s": int(m.group(2)),
                        "cpu_s": float(cpu.group(1)),
                        "seconds": {k: float(v) for k, v in
                                    (x.split() for x in m.group(3).split(", "))}})
        log.close()
    rate = len(lines) / (end - start)
    # CPU of the consumer processes (all their threads) a line: what a busy machine
    # inflates least; 1e6 / it is the lines a second one consumer makes on a core of its own
    cpu = sum(t["cpu_s"] for t in timings) / len(lines) * 1e6
    return {"lines_per_s": round(rate), "cpu_us_per_line": round(cpu, 2),
            "services_cpu_s": services_cpu, "consumers": timings}


def bare_consumer(env, records, lines: list[bytes]) -> dict:
    """Records a second one plain consumer takes out of Kafka, doing nothing with them
    (logml's fetch settings), from the first poll to the last record (not a poll timeout
    later): the ceiling for one logml consumer on this broker and machine. With its own
    CPU (all threads: librdkafka's fetcher and the Python objects of the messages) and the
    broker's, to tell which of them bounds it."""
    bootstrap = env["KAFKA_BOOTSTRAP"]
    topic = f"bench.{uuid.uuid4().hex[:8]}.bare"
    _topics(bootstrap, (topic, PARTITIONS, None))
    produce(bootstrap, topic, records)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bare-{uuid.uuid4().hex}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  **FETCH_SETTINGS})
    try:
        c.subscribe([topic])
        while not c.assignment():
            c.poll(0.1)
        n, services, cpu0 = 0, _service_cpu(), time.process_time()
        gc.freeze()  # this process's millions of lines and documents are not the consumer's
        t0 = time.perf_counter()
        while n < len(lines):
            msgs = c.consume(20000, 0.05)
            values = list(map(Message.value, msgs))
            n += len(values)
        seconds = time.perf_counter() - t0
        return {"records_per_s": round(n / seconds),
                "cpu_us_per_record": round((time.process_time() - cpu0) / n * 1e6, 2),
                "services_cpu_s": _cpu_since(services)}
    finally:
        gc.unfreeze()
        c.close()
        AdminClient({"bootstrap.servers": bootstrap}).delete_topics([topic])


def _median(xs):
    return float(statistics.median(xs))


def test_streaming_vs_bare_bulk_loader(workload, tmp_path, record):
    env, records, lines = workload
    url = env["ES_URL"]
    raw, enriched = raw_documents(lines), logml_documents(lines)
    rounds = int(os.environ.get("LOGML_BENCH_ROUNDS", "3"))
    counts = [int(x) for x in os.environ.get("LOGML_BENCH_CONSUMERS", "1,2,4").split(",")]
    bare_loader(url, enriched[:20000])  # warm-up: the server's caches, the index template
    per_round = []
    for r in range(rounds):
        row = {}
        steps = [("loader", lambda: bare_loader(url, enriched)),
                 ("bare_consumer", lambda: bare_consumer(env, records, lines)),
                 ("logml_documents", lambda: run_logml(env, records, lines, 1, True, tmp_path)),
                 ("logml_no_documents",
                  lambda: run_logml(env, records, lines, 1, False, tmp_path))]
        for name, step in (steps if r % 2 == 0 else steps[::-1]):  # alternate the order
            row[name] = step()
        row["ratio"] = round(row["logml_documents"]["lines_per_s"] / row["loader"], 3)
        row["ratio_no_documents_to_bare_consumer"] = round(
            row["logml_no_documents"]["lines_per_s"]
            / row["bare_consumer"]["records_per_s"], 3)
        per_round.append(row)
        print(f"round {r + 1}: loader {row['loader']:.0f} docs/s, logml with documents "
              f"{row['logml_documents']['lines_per_s']} lines/s (ratio {row['ratio']}), "
              f"without {row['logml_no_documents']['lines_per_s']} lines/s (bare consumer "
              f"{row['bare_consumer']['records_per_s']} records/s); CPU a line with/without documents "
              f"{row['logml_documents']['cpu_us_per_line']}/"
              f"{row['logml_no_documents']['cpu_us_per_line']} us; consumer seconds with "
              f"documents {row['logml_documents']['consumers'][0]['seconds']}")
    runs = {}
    for write_logs in (True, False):
        for consumers in counts:
            if consumers == 1:
                key = "logml_documents" if write_logs else "logml_no_documents"
                runs[(write_logs, 1)] = {
                    "lines_per_s": round(_median([x[key]["lines_per_s"] for x in per_round])),
                    "cpu_us_per_line": round(_median([x[key]["cpu_us_per_line"]
                                                      for x in per_round]), 2),
                    "rounds": [x[key]["lines_per_s"] for x in per_round]}
            else:
                runs[(write_logs, consumers)] = run_logml(env, records, lines, consumers,
                                                          write_logs, tmp_path)
    bare_raw = bare_loader(url, raw)
    loader = _median([x["loader"] for x in per_round])
    ratio = _median([x["ratio"] for x in per_round])
    table = [{"lines": len(lines), "services": SERVICES, "partitions": PARTITIONS,
              "per_line_documents": wl, "consumers": c, "lines_per_s": r["lines_per_s"],
              "lines_per_s_per_consumer": round(r["lines_per_s"] / c),
              "consumer_cpu_us_per_line": r["cpu_us_per_line"],
              "ratio_to_bare_loader_logml_documents": round(r["lines_per_s"] / loader, 2),
              "ratio_to_bare_loader_raw_events": round(r["lines_per_s"] / bare_raw, 2)}
             for (wl, c), r in runs.items()]
    record("streaming_vs_bare_loader" + ("" if counts == [1, 2, 4] and rounds >= 3
                                         else "_partial"),
           lines=len(lines), services=SERVICES, partitions=PARTITIONS, rounds=rounds,
           load_average=os.getloadavg()[0],
           bare_loader_logml_documents_docs_per_s=[round(x["loader"]) for x in per_round],
           bare_loader_raw_events_docs_per_s=round(bare_raw),
           bare_consumer_records_per_s=[x["bare_consumer"]["records_per_s"]
                                        for x in per_round],
           bare_consumer_cpu_us_per_record=[x["bare_consumer"]["cpu_us_per_record"]
                                            for x in per_round],
           # CPU seconds of the broker and Elasticsearch during each timed read/run
           services_cpu_s={
               **{f"round{k + 1}_bare_consumer": x["bare_consumer"]["services_cpu_s"]
                  for k, x in enumerate(per_round)},
               **{f"round{k + 1}_{name}": x[name]["services_cpu_s"]
                  for k, x in enumerate(per_round)
                  for name in ("logml_documents", "logml_no_documents")},
               **{f"{'logs' if wl else 'nologs'}_{c}": r["services_cpu_s"]
                  for (wl, c), r in runs.items() if c != 1}},
           ratio_without_documents_to_bare_consumer_per_round=[
               x["ratio_no_documents_to_bare_consumer"] for x in per_round],
           ratio_with_documents_per_round=[x["ratio"] for x in per_round],
           ratio_with_documents_median=round(ratio, 2),
           logml_1_consumer_with_documents_lines_per_s=runs[(True, 1)]["lines_per_s"],
           logml_1_consumer_without_documents_lines_per_s=runs[(False, 1)]["lines_per_s"],
           consumer_cpu_us_per_line={
               name: [x[name]["cpu_us_per_line"] for x in per_round]
               for name in ("logml_documents", "logml_no_documents")},
           lines_per_cpu_second_median={
               name: round(1e6 / _median([x[name]["cpu_us_per_line"] for x in per_round]))
               for name in ("logml_documents", "logml_no_documents")},
           table=table,
           consumers={**{f"round{k + 1}_{name}": x[name]["consumers"]
                         for k, x in enumerate(per_round)
                         for name in ("logml_documents", "logml_no_documents")},
                      **{f"{'logs' if wl else 'nologs'}_{c}": r["consumers"]
                         for (wl, c), r in runs.items() if c != 1}})
