"""Kafka mode against the real broker: the same anomalies as embedded mode, dead letters
in the DLQ topic with their reason, offsets committed, state checkpointed and resumed; a
checkpoint that cannot be read holds its partition (reported, retried)."""
import re
import socket
import subprocess
import sys
import time
import urllib.request

import orjson
import pytest
from confluent_kafka import Producer

from logml.generate import write

from handover_kit import produce as produce_to
from kafka_helpers import committed, pipeline_toml, produce, read_all, unique_topics
from servicekit import stop_group

pytestmark = pytest.mark.integration


def pipeline_file(path, names, out_dir):
    path.write_text(pipeline_toml(names, "${KAFKA_BOOTSTRAP}", "jsonl",
                                  f'batch_size = 2000\n[output]\ndir = "{out_dir}"\n'))
    return path


def logml(*args, timeout=600):
    p = subprocess.run([sys.executable, "-m", "logml.cli", *map(str, args)],
                       capture_output=True, timeout=timeout)
    assert p.returncode == 0, p.stderr.decode()[-4000:]
    return p


def anomalies(path):
    return sorted(orjson.dumps(orjson.loads(line), option=orjson.OPT_SORT_KEYS)
                  for line in path.read_bytes().splitlines())


def test_kafka_mode_matches_embedded_mode_and_dead_letters(kafka_env, tmp_path):
    bootstrap = kafka_env["KAFKA_BOOTSTRAP"]
    names = unique_topics(bootstrap)
    events, _ = write(tmp_path / "gen", seed=77, hours=2.5, services=3,
                      start=1_764_000_000.0, rate=3.0)
    lines = events.read_bytes().splitlines()
    bad = [b"", b"\xff\xfe not utf8", b"[1, 2]", b'{"message": 3}']
    records = [(orjson.loads(x)["service"]["name"].encode(), x) for x in lines]
    records[100:100] = [(b"api", b) for b in bad]
    produce(bootstrap, names["topic"], records)

    logml("run", "--input", events, "--output", tmp_path / "embedded")
    cfg = pipeline_file(tmp_path / "k.toml", names, tmp_path / "kafka")
    logml("run", "-c", cfg, "--exit-when-idle", 3)

    assert anomalies(tmp_path / "kafka" / "anomalies.jsonl") == \
        anomalies(tmp_path / "embedded" / "anomalies.jsonl")
    dlq = read_all(bootstrap, names["dlq_topic"])
    reasons = sorted(dict(m.headers())["logml.reason"].decode() for m in dlq)
    assert reasons == sorted(["empty", "invalid_utf8", "not_an_object", "missing_message"])
    assert all(m.key() == b"api" for m in dlq)  # the input's key
    assert len({dict(m.headers())["logml.id"] for m in dlq}) == len(dlq)  # one id each
    assert sorted(m.value() for m in dlq) == sorted(bad)

    ends = {}
    for m in read_all(bootstrap, names["topic"]):
        ends[m.partition()] = max(ends.get(m.partition(), 0), m.offset() + 1)
    offsets = committed(bootstrap, names["group"], names["topic"], 6)
    assert all(offsets[p] == end for p, end in ends.items())
    states = {m.key().decode() for m in read_all(bootstrap, names["state_topic"])}
    assert states >= {f"{names['topic']}/{p}" for p in ends}

    # a second run resumes after the committed offsets: nothing is processed twice
    before = (tmp_path / "kafka" / "windows.jsonl").read_bytes()
    logml("run", "-c", cfg, "--exit-when-idle", 3)
    assert (tmp_path / "kafka" / "windows.jsonl").read_bytes() == before


def test_log_documents_of_one_app_under_several_names_carry_their_own_template_ids(
        kafka_env, tmp_path):
    """The same app deployed as four services, one per partition: every partition's
    engine numbers the same texts from 0, and one sink writes all their per-line
    documents. Each line's template id is its own service's, as in embedded mode (a
    builder shared by index gave 30 % of the lines another partition's id)."""
    from confluent_kafka import Producer as _Producer
    bootstrap = kafka_env["KAFKA_BOOTSTRAP"]
    names = unique_topics(bootstrap, raw_partitions=4)
    events, _ = write(tmp_path / "gen", seed=5, hours=0.5, services=1,
                      start=1_764_000_000.0, rate=4.0)
    lines = events.read_bytes().splitlines()
    copies = []
    producer = _Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for p, name in enumerate(["shop-a", "shop-b", "shop-c", "shop-d"]):
        for x in lines:
            ev = orjson.loads(x)
            ev["service"] = {"name": name}
            copies.append(orjson.dumps(ev))
            producer.produce(names["topic"], key=name.encode(), value=copies[-1], partition=p)
            producer.poll(0)
    assert producer.flush(60) == 0
    embedded = tmp_path / "copies.jsonl"
    embedded.write_bytes(b"\n".join(copies) + b"\n")
    logml("run", "--input", embedded, "--output", tmp_path / "embedded", "--write-logs")
    cfg = tmp_path / "k.toml"
    cfg.write_text(pipeline_toml(names, "${KAFKA_BOOTSTRAP}", "jsonl",
                                 f'batch_size = 2000\n[output]\ndir = "{tmp_path / "kafka"}"\n'
                                 f"write_logs = true\n"))
    logml("run", "-c", cfg, "--exit-when-idle", 3)

    def ids(path):
        return sorted((d["service"]["name"], d["@timestamp"], d["message"],
                       d["logml"]["template_id"])
                      for d in map(orjson.loads, path.read_bytes().splitlines()))
    got = ids(tmp_path / "kafka" / "logs.jsonl")
    assert len(got) == len(copies) and len({g[3] for g in got}) > 4
    assert got == ids(tmp_path / "embedded" / "logs.jsonl")


def test_a_checkpoint_that_cannot_be_read_holds_its_partition_until_it_can(kafka_env, tmp_path):
    """Unreadable state is reported and retried, never replaced by a fresh start; a
    partition that really has no checkpoint (here: after a tombstone) starts fresh."""
    bootstrap = kafka_env["KAFKA_BOOTSTRAP"]
    names = unique_topics(bootstrap, raw_partitions=2)
    records = [(k % 2, b"svc%d" % (k % 2), orjson.dumps({
        "@timestamp": f"2025-11-24T16:{k // 120:02d}:{k % 60:02d}.000Z",
        "message": f"request {k} served in {k % 50} ms", "service": {"name": f"svc{k % 2}"}}))
        for k in range(2000)]
    produce_to(bootstrap, names["topic"], records)
    key = f"{names['topic']}/0".encode()
    p = Producer({"bootstrap.servers": bootstrap})
    p.produce(names["state_topic"], key=key, value=b"LOGMLSNAP\nnot a checkpoint")
    assert p.flush(10) == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = tmp_path / "k.toml"
    cfg.write_text(pipeline_toml(names, bootstrap, "jsonl", f'[output]\ndir = "{tmp_path}"\n'
                                 f'[metrics]\nport = {port}\n'))
    log = tmp_path / "consumer.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "logml.cli", "run", "-c", str(cfg)],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        until(lambda: committed(bootstrap, names["group"], names["topic"], 2)[1] == 1000)
        assert committed(bootstrap, names["group"], names["topic"], 2)[0] < 0
        assert metric(port, "logml_partitions_waiting_for_state") == 1
        assert metric(port, 'logml_checkpoint_errors_total{operation="load"}') >= 1
        assert re.search(r"partition \S+/0 waits for its state .*cannot be read",
                         log.read_text()), log.read_text()[-3000:]
        p.produce(names["state_topic"], key=key, value=None)  # delete it: start afresh
        assert p.flush(10) == 0
        until(lambda: committed(bootstrap, names["group"], names["topic"], 2)[0] == 1000)
        assert metric(port, "logml_partitions_waiting_for_state") == 0
    finally:
        stop_group(proc)
    assert proc.returncode == 0, log.read_text()[-3000:]
    assert "opened [0] in" in log.read_text() and "1 fresh" in log.read_text()


def until(cond, timeout: float = 90.0) -> None:
    deadline = time.time() + timeout
    while not cond():
        assert time.time() < deadline, "timed out"
        time.sleep(0.5)


def metric(port: int, name: str) -> float:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    for line in body.decode().splitlines():
        if line.startswith(name + " "):  # NAME or NAME{labels} as given
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")
