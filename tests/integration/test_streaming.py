"""Kafka mode against the real broker: the same anomalies as embedded mode, dead letters
in the DLQ topic with their reason, offsets committed, state checkpointed and resumed."""
import subprocess
import sys

import orjson
import pytest

from logml.generate import write

from kafka_helpers import committed, pipeline_toml, produce, read_all, unique_topics

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
    assert all(dict(m.headers())["logml.key"] == b"api" for m in dlq)  # the input's key
    assert len({m.key() for m in dlq}) == len(dlq)  # each dead letter its own id
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
