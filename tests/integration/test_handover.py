"""Streaming hand-over on the real Kafka and Elasticsearch: a consumer killed (kill -9, by
the LOGML_FAULT hook) at each crash point and started again, or made to replay offsets
from an older checkpoint, ends with exactly what an uninterrupted run wrote: the same
Elasticsearch documents (ids and contents), the same anomalies, each dead letter once."""
from __future__ import annotations

import os
import re
import signal
import time
import pytest
from confluent_kafka import Producer

from handover_kit import (Baseline, dead_letters, delete_indices, differences, es_documents,
                          new_run, pipeline_file, run, start, uninterrupted_run,
                          wait_committed)
from kafka_helpers import read_all
from servicekit import stop_group

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def baseline(kafka_env, es_env, es, tmp_path_factory):
    """The scenario in Kafka and an uninterrupted run over it."""
    base = uninterrupted_run(kafka_env["KAFKA_BOOTSTRAP"], es_env["ES_URL"], es,
                             tmp_path_factory.mktemp("handover"))
    kinds = {kind for kind, _ in base.docs}
    assert kinds == {"logs", "windows", "anomalies"}, kinds
    reasons = {r for _, _, r in base.dead_letters}
    assert {"late", "empty", "invalid_utf8", "not_an_object", "missing_message"} <= reasons
    return base


def anomalies(docs: dict) -> set:
    return {v for (kind, _), v in docs.items() if kind == "anomalies"}


def assert_same_as_baseline(base: Baseline, bootstrap: str, es, names: dict) -> None:
    docs = es_documents(es, names["prefix"])
    missing, extra = base.docs.keys() - docs.keys(), docs.keys() - base.docs.keys()
    assert not missing and not extra, f"{len(missing)} missing, {len(extra)} extra: " \
        f"{sorted(missing)[:3]} {sorted(extra)[:3]}"
    assert docs == base.docs, differences(docs, base.docs)
    assert anomalies(docs) == anomalies(base.docs) and anomalies(docs)
    got = dead_letters(bootstrap, names["dlq_topic"])
    doubled = sorted({d for d in got if got.count(d) > 1})
    assert not doubled, f"{len(got) - len(set(got))} duplicate dead letters, e.g. {doubled[:3]}"
    assert got == base.dead_letters
    wait_committed(bootstrap, names, base.ends, timeout=10)


def restored(log_text: str) -> int:
    return sum(int(n) for n in re.findall(r"opened \[[\d, ]*\] in [\d.]+ s: (\d+) restored",
                                          log_text))


def skipped(log_text: str) -> int:
    return sum(int(n) for n in re.findall(r"replay: (\d+) dead letters", log_text))


@pytest.mark.parametrize("fault,interval,commit_every", [
    ("mid_batch:20", 1.0, 0.0),    # records processed, nothing flushed
    ("after_bulk:20", 1.0, 0.0),   # Elasticsearch and dead letters acknowledged, no commit
    ("checkpoint:12", 0.001, 0.0),  # one partition's checkpoint written, the others not
    # as pipelines/kafka.toml runs: several batches indexed between two commits
    ("after_bulk:3", 0.001, 0.05),
])
def test_kill_at_a_crash_point_then_takeover_writes_what_an_uninterrupted_run_does(
        baseline, kafka_env, es_env, es, tmp_path, fault, interval, commit_every):
    bootstrap = kafka_env["KAFKA_BOOTSTRAP"]
    names = new_run(bootstrap, baseline.topic)
    cfg = pipeline_file(tmp_path / "k.toml", names, bootstrap, es_env["ES_URL"],
                        checkpoint_interval_s=interval, commit_interval_s=commit_every)
    log = tmp_path / "consumer.log"
    try:
        rc = run(cfg, log, fault=fault)
        first = log.read_text()
        assert rc == 137 and "fault injected" in first, first[-3000:]  # died mid-stream
        assert run(cfg, log) == 0, log.read_text()[-3000:]
        second = log.read_text()[len(first):]
        assert restored(second) >= 1, second[-3000:]  # took over from checkpoints
        if fault.startswith("after_bulk"):  # acknowledged dead letters were replayed
            assert skipped(second) >= 1, second[-3000:]
        assert_same_as_baseline(baseline, bootstrap, es, names)
    finally:
        delete_indices(es, names["prefix"])


def test_replay_from_older_checkpoints_rewrites_nothing_twice(baseline, kafka_env, es_env, es,
                                                              tmp_path):
    """After a whole run, every partition's checkpoint is set back to an early one (as an
    operator restoring an older state would): the consumer replays those offsets.
    A checkpoint every batch: with one a second, a consumer that never waits for a full
    batch may be near the end by its second checkpoint, leaving little to replay."""
    bootstrap = kafka_env["KAFKA_BOOTSTRAP"]
    names = new_run(bootstrap, baseline.topic)
    cfg = pipeline_file(tmp_path / "k.toml", names, bootstrap, es_env["ES_URL"],
                        checkpoint_interval_s=0.001)
    log = tmp_path / "consumer.log"
    try:
        assert run(cfg, log) == 0, log.read_text()[-3000:]
        versions: dict[bytes, list] = {}
        for m in read_all(bootstrap, names["state_topic"]):
            versions.setdefault(m.key(), []).append(m)
        p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
        rewound = 0
        for key, ms in versions.items():
            old = ms[min(1, len(ms) - 1)]  # the first after the initial one
            pos = int(dict(old.headers())["logml.position"])
            rewound += baseline.ends[int(key.decode().rsplit("/", 1)[1])] - pos
            p.produce(names["state_topic"], key=key, value=old.value(), headers=old.headers())
        assert p.flush(30) == 0
        assert rewound > 1000, rewound  # a real replay, not a no-op
        first = log.read_text()
        assert run(cfg, log) == 0, log.read_text()[-3000:]
        second = log.read_text()[len(first):]
        assert restored(second) == len(versions) and skipped(second) >= 1, second[-3000:]
        assert_same_as_baseline(baseline, bootstrap, es, names)
    finally:
        delete_indices(es, names["prefix"])


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def wait_for(what: str, cond, timeout: float = 90.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_member_frozen_past_its_session_drops_its_lost_partitions(baseline, kafka_env,
                                                                    es_env, es, tmp_path):
    """A consumer freezes (SIGSTOP) after a bulk, its session expires and another member
    takes every partition over and finishes them. When it runs again it must not commit or
    checkpoint what it lost (it would put the state back in time): it drops them, rejoins,
    and takes some partitions over properly."""
    bootstrap = kafka_env["KAFKA_BOOTSTRAP"]
    names = new_run(bootstrap, baseline.topic)
    cfg = pipeline_file(tmp_path / "k.toml", names, bootstrap, es_env["ES_URL"])
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    a = start(cfg, logs[0], fault="after_bulk:15:stop")
    b = None
    try:
        wait_for("the first consumer to freeze", lambda: _state(a.pid) == "T")
        b = start(cfg, logs[1])
        wait_committed(bootstrap, names, baseline.ends, timeout=120)
        resumed = time.time()
        os.kill(a.pid, signal.SIGCONT)
        wait_for("the first consumer to take partitions over again", lambda: re.search(
            r"did not run for more than the session timeout(.|\n)*opened \[\d",
            logs[0].read_text()))
        wait_committed(bootstrap, names, baseline.ends, timeout=60)
        for proc, log in ((a, logs[0]), (b, logs[1])):
            stop_group(proc)
            assert proc.returncode == 0, log.read_text()[-3000:]
        # every checkpoint written since it ran again is of finished partitions
        for m in read_all(bootstrap, names["state_topic"]):
            if m.timestamp()[1] >= resumed * 1000:
                part = int(m.key().decode().rsplit("/", 1)[1])
                assert int(dict(m.headers())["logml.position"]) == baseline.ends[part]
        assert_same_as_baseline(baseline, bootstrap, es, names)
    finally:
        for proc in (a, b):
            if proc is not None:
                if proc.poll() is None:
                    os.kill(proc.pid, signal.SIGCONT)
                stop_group(proc)
        delete_indices(es, names["prefix"])
