"""A scenario in Kafka and what a run of consumers makes of it, for the hand-over tests.

One input topic holds the scenario (``logml generate``: six services, one per partition,
labelled incidents, plus bad and late records every few hundred lines). Each run has its
own group, state topic, dead-letter topic and Elasticsearch prefix, so runs over the same
input can be compared: Elasticsearch documents (index kind, id, source), anomalies and
dead letters (source, offset, reason).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import orjson
from confluent_kafka import Producer
from confluent_kafka.admin import NewTopic
from elasticsearch import Elasticsearch, helpers

from kafka_helpers import committed, create_topics, pipeline_toml, read_all

REPO = Path(__file__).resolve().parents[2]
PARTITIONS = 6
BAD = [b"", b"\xff\xfe not utf8", b"[1, 2]", b'{"message": 3}', b'{"no": "message"}']


def scenario_records(tmp: Path, start: float, hours: float = 1.5, rate: float = 0.5, seed: int = 11,
                     bad_every: int = 250, late_every: int = 900) -> list:
    """(partition, key, value): the generated events, each service in a partition of its
    own, with a bad record after every ``bad_every`` lines of a service and, after every
    ``late_every``, a copy of a line 20 minutes older (late: dead-lettered)."""
    from logml.generate import service_names, write
    events, _ = write(tmp / "gen", seed=seed, hours=hours, services=PARTITIONS, start=start,
                      rate=rate)
    part = {name: k for k, name in enumerate(service_names(PARTITIONS))}
    seen: dict[str, list[bytes]] = {s: [] for s in part}
    out = []
    for line in events.read_bytes().splitlines():
        ev = orjson.loads(line)
        svc = ev["service"]["name"]
        rows = seen[svc]
        rows.append(line)
        out.append((part[svc], svc.encode(), line))
        n = len(rows)
        if n % bad_every == 0:
            out.append((part[svc], svc.encode(), BAD[(n // bad_every) % len(BAD)]))
        if n % late_every == 0 and n > 1200:
            out.append((part[svc], svc.encode(), rows[n - 1200]))  # ~20 min earlier
    return out


def create_input(bootstrap: str) -> str:
    topic = f"test.{uuid.uuid4().hex[:8]}.raw"
    create_topics(bootstrap, [NewTopic(topic, PARTITIONS, 1)])
    return topic


def scenario_topic(bootstrap: str, tmp: Path) -> tuple[str, list]:
    """The hand-over scenario produced to a new input topic: (topic, records)."""
    topic = create_input(bootstrap)
    records = scenario_records(tmp, start=1_764_000_000.0)
    produce(bootstrap, topic, records)
    return topic, records


def produce(bootstrap: str, topic: str, records, pace_s: float = 0.0, chunks: int = 1):
    """Produce in order; with ``pace_s``, in ``chunks`` parts ``pace_s`` apart (a live
    stream)."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 20,
                  "enable.idempotence": True})
    size = -(-len(records) // chunks)
    for c in range(chunks):
        for part, key, value in records[c * size:(c + 1) * size]:
            p.produce(topic, key=key, value=value, partition=part)
            p.poll(0)
        assert p.flush(60) == 0
        if pace_s and c < chunks - 1:
            time.sleep(pace_s)


def ends(records) -> dict[int, int]:
    out: dict[int, int] = {}
    for part, _, _ in records:
        out[part] = out.get(part, 0) + 1
    return out


def new_run(bootstrap: str, topic: str) -> dict[str, str]:
    """Topics and group of one run over ``topic``: dead letters, state, ES prefix."""
    tag = uuid.uuid4().hex[:8]
    names = {"topic": topic, "dlq_topic": f"test.{tag}.dlq", "state_topic": f"test.{tag}.state",
             "group": f"logml-test-{tag}", "prefix": f"ho{tag}"}
    create_topics(bootstrap, [
        NewTopic(names["dlq_topic"], 1, 1),
        NewTopic(names["state_topic"], 1, 1, config={
            "cleanup.policy": "compact", "max.message.bytes": "67108864"})])
    return names


def pipeline_file(path: Path, names: dict, bootstrap: str, es_url: str,
                  write_logs: bool = True, checkpoint_interval_s: float = 1.0,
                  commit_interval_s: float = 0.0, es_extra: str = "") -> Path:
    """A pipeline file of one run; ``es_extra``: more [elasticsearch] lines."""
    path.write_text(pipeline_toml(names, bootstrap, "elasticsearch", f"""batch_size = 500
session_timeout_s = 6.0
checkpoint_interval_s = {checkpoint_interval_s}
commit_interval_s = {commit_interval_s}
[elasticsearch]
url = "{es_url}"
index_prefix = "{names['prefix']}"
write_logs = {str(write_logs).lower()}
{es_extra}"""))
    return path


def shipped_config(path: Path, names: dict) -> Path:
    """pipelines/kafka.toml as shipped, on this run's topics, group and index prefix."""
    text = (REPO / "pipelines" / "kafka.toml").read_text()
    for old, new in (('topic = "logs.raw"', f'topic = "{names["topic"]}"'),
                     ('dlq_topic = "logs.dlq"', f'dlq_topic = "{names["dlq_topic"]}"'),
                     ('state_topic = "logml.state"', f'state_topic = "{names["state_topic"]}"'),
                     ('group = "logml"', f'group = "{names["group"]}"'),
                     ('index_prefix = "logml"', f'index_prefix = "{names["prefix"]}"')):
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text)
    return path


def start(cfg: Path, log: Path, *args, fault: str = "") -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "LOGML_FAULT"}
    # one numba thread: the parallel kernels' thread pool costs ~10x on a busy 2-core CI
    # machine with batches this small; results do not depend on it
    env["NUMBA_NUM_THREADS"] = "1"
    if fault:
        env["LOGML_FAULT"] = fault
    out = open(log, "ab")
    try:
        return subprocess.Popen([sys.executable, "-m", "logml.cli", "run", "-c", str(cfg),
                                 *map(str, args)], stdout=out, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)
    finally:
        out.close()


def run(cfg: Path, log: Path, *args, fault: str = "", timeout: float = 240) -> int:
    """Run one consumer to its end (exit when idle unless a fault ends it first)."""
    proc = start(cfg, log, "--exit-when-idle", 2, *args, fault=fault)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"consumer still running after {timeout} s:\n"
                             + log.read_text()[-3000:]) from None


@dataclass
class Baseline:
    """The scenario in Kafka and what an uninterrupted run wrote of it."""
    topic: str
    ends: dict
    docs: dict
    dead_letters: list


def uninterrupted_run(bootstrap: str, es_url: str, es: Elasticsearch, tmp: Path,
                      es_extra: str = "") -> Baseline:
    """The hand-over scenario in a new input topic and one consumer's run over it, to its
    end; its indices are deleted once read."""
    topic, records = scenario_topic(bootstrap, tmp)
    names = new_run(bootstrap, topic)
    cfg = pipeline_file(tmp / "base.toml", names, bootstrap, es_url, es_extra=es_extra)
    assert run(cfg, tmp / "base.log") == 0, (tmp / "base.log").read_text()[-3000:]
    wait_committed(bootstrap, names, ends(records), timeout=10)
    base = Baseline(topic, ends(records), es_documents(es, names["prefix"]),
                    dead_letters(bootstrap, names["dlq_topic"]))
    delete_indices(es, names["prefix"])
    return base


def wait_committed(bootstrap: str, names: dict, want: dict[int, int], timeout: float = 120):
    deadline = time.time() + timeout
    got = {}
    while time.time() < deadline:
        got = committed(bootstrap, names["group"], names["topic"], PARTITIONS)
        if all(got.get(p) == end for p, end in want.items()):
            return
        time.sleep(1)
    raise AssertionError(f"offsets committed {got}, expected {want}")


# Template text in documents is Drain's text of the template at the end of the batch that
# wrote them (a template is refined as lines arrive), so it depends on where batches were
# cut, which differs between any two runs, interrupted or not. These fields are left out
# of comparisons; ids, template ids, counts and scores are compared. (Reported: the
# pipeline could write each document with the text as of its own line or window.)
BATCH_DEPENDENT = {"logs": (("logml", "template"), ("logml", "params")),
                   "anomalies": (("logml", "template"), ("message",))}


def es_documents(es: Elasticsearch, prefix: str, kinds=("logs", "windows", "anomalies")):
    """{(kind, id): source as canonical JSON, without the BATCH_DEPENDENT fields}."""
    es.indices.refresh(index=f"{prefix}-*")
    out = {}
    for kind in kinds:
        for hit in helpers.scan(es, index=f"{prefix}-{kind}-*", query={"query": {
                "match_all": {}}}, size=5000):
            key = (kind, hit["_id"])
            assert key not in out, f"{key} in two indices"
            src = hit["_source"]
            for *parents, leaf in BATCH_DEPENDENT.get(kind, ()):
                node = src
                for part in parents:
                    node = node.get(part, {})
                node.pop(leaf, None)
            out[key] = orjson.dumps(src, option=orjson.OPT_SORT_KEYS)
    return out


def differences(got: dict, want: dict, limit: int = 3) -> list:
    """The first documents whose sources differ, each with the fields that differ."""
    def flat(doc, at=""):
        if isinstance(doc, dict):
            return {k: v for key, sub in doc.items() for k, v in flat(sub, f"{at}.{key}").items()}
        return {at: doc}
    out = []
    for key in [k for k in got if got[k] != want.get(k)][:limit]:
        a, b = flat(orjson.loads(got[key])), flat(orjson.loads(want[key]))
        out.append((key, {f: (a.get(f), b.get(f)) for f in a.keys() | b.keys()
                          if a.get(f) != b.get(f)}))
    return out


def dead_letters(bootstrap: str, topic: str) -> list[tuple[str, int, str]]:
    rows = []
    for m in read_all(bootstrap, topic):
        h = dict(m.headers())
        rows.append((h["logml.source"].decode(), int(h["logml.offset"]),
                     h["logml.reason"].decode()))
    return sorted(rows)


def delete_indices(es: Elasticsearch, prefix: str) -> None:
    es.options(ignore_status=404).indices.delete(index=f"{prefix}-*")
