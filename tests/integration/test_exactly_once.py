"""Exactly once on the real Kafka and Elasticsearch, with Elasticsearch made to hold bulk
requests unanswered (docs/streaming.md, docs/elasticsearch.md: checkpoints and offset
commits cover only what Elasticsearch acknowledged).

The kill tests (test_handover.py) cannot see a commit that runs ahead of the
acknowledgements: Elasticsearch completes the requests a killed client had sent, and
almost nothing is unsent at the kill. Here a proxy (holdproxy.py) between the consumer and
Elasticsearch forwards the first bulk requests, then black-holes every later one: read,
never forwarded, never answered. The consumer goes on consuming until its backpressure
stops it. While it is held, nothing it commits or checkpoints may go past a line whose
document Elasticsearch does not have. Then it is killed (kill -9: the held requests die
with it, unsent), and a new consumer, straight on Elasticsearch, must end with exactly
what an uninterrupted run wrote: every document once (by id), the same anomalies, each
dead letter once. A consumer that commits before its bulks are acknowledged fails both
ways: offsets and checkpoints past held lines, and then those lines' documents missing.

Small bulk requests (500 documents) with 16 in flight: after the hold the consumer goes on
for several thousand lines and many 50 ms commit intervals before its backlog is full, so
a commit or checkpoint that does not wait for its requests is taken while they are held.
(Checked: the test fails when ElasticsearchSink.flush does not wait for the requests in
flight, and when the barrier-less commits of branch consume-trail do not wait for their
mark; it passes on that branch as it is, which does wait. The kill tests pass on both.)

The hold is what is observed, not an outage: ``unavailable_timeout_s`` is set far above
it (the sink would otherwise give up, keep the documents and retry them, which is the
outage path test_es_outage.py covers), and the hold ends (kill) long before the client's
30 s request timeout.
"""
from __future__ import annotations

import re
import time

import pytest
from elasticsearch import helpers

from handover_kit import (PARTITIONS, dead_letters, delete_indices, differences,
                          es_documents, new_run, pipeline_file, run, start, uninterrupted_run,
                          wait_committed)
from holdproxy import HoldProxy
from kafka_helpers import committed, read_all
from logml.docs import _id

pytestmark = pytest.mark.integration

HOLD_AFTER = 8  # bulk requests forwarded (and acknowledged) before the hold
# small chunks, many in flight: the consumer goes on for several batches (and commit
# intervals) after the hold before its backpressure stops it
ES_EXTRA = "bulk_max_docs = 500\nmax_in_flight = 16\nunavailable_timeout_s = 600.0\n"


@pytest.fixture(scope="module")
def baseline(kafka_env, es_env, es, tmp_path_factory):
    """The scenario in Kafka and what an uninterrupted run writes of it."""
    base = uninterrupted_run(kafka_env["KAFKA_BOOTSTRAP"], es_env["ES_URL"], es,
                             tmp_path_factory.mktemp("exactly"), es_extra=ES_EXTRA)
    assert {kind for kind, _ in base.docs} == {"logs", "windows", "anomalies"}
    return base


def line_offsets(topic: str, ends_: dict, docs: dict) -> dict[str, tuple[int, int]]:
    """Per-line document id -> (partition, offset) of every line the baseline indexed."""
    out = {}
    for p, end in ends_.items():
        for off in range(end):
            doc_id = _id("log", f"{topic}/{p}", off)
            if ("logs", doc_id) in docs:
                out[doc_id] = (p, off)
    return out


def first_unacknowledged(es, prefix: str, lines: dict) -> dict[int, int | None]:
    """Per partition, the lowest offset whose line has no document in Elasticsearch."""
    es.indices.refresh(index=f"{prefix}-*")
    have = {h["_id"] for h in helpers.scan(es, index=f"{prefix}-logs-*", _source=False,
                                           query={"query": {"match_all": {}}}, size=5000)}
    out: dict[int, int | None] = {p: None for p in range(PARTITIONS)}
    for doc_id, (p, off) in lines.items():
        if doc_id not in have and (out[p] is None or off < out[p]):
            out[p] = off
    return out


def test_nothing_is_committed_or_checkpointed_past_bulks_elasticsearch_holds(
        baseline, kafka_env, es_env, es, tmp_path):
    bootstrap = kafka_env["KAFKA_BOOTSTRAP"]
    topic = baseline.topic
    names = new_run(bootstrap, topic)
    proxy = HoldProxy(es_env["ES_URL"], hold_after=HOLD_AFTER)
    # commits every 50 ms: several batches indexed between two commits, as
    # pipelines/kafka.toml runs; a checkpoint at every commit
    held_cfg = pipeline_file(tmp_path / "held.toml", names, bootstrap, proxy.url,
                             checkpoint_interval_s=0.001, commit_interval_s=0.05,
                             es_extra=ES_EXTRA)
    log = tmp_path / "consumer.log"
    proc = start(held_cfg, log)
    try:
        deadline = time.time() + 90
        while proxy.held == 0:
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.time() < deadline, f"no bulk held ({proxy.forwarded} forwarded)\n" \
                + log.read_text()[-3000:]
            time.sleep(0.1)
        # the consumer goes on (processing, sending, committing) until its backpressure
        # stops it: give it that time, then some
        held, still = proxy.held, time.time()
        while time.time() - still < 2.0:
            time.sleep(0.2)
            if proxy.held != held:
                held, still = proxy.held, time.time()
        time.sleep(1.0)
        assert proc.poll() is None, log.read_text()[-3000:]
        proc.kill()  # kill -9: the held requests die unsent
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proxy.close()
    try:
        first = log.read_text()
        lines = line_offsets(topic, baseline.ends, baseline.docs)
        gap = first_unacknowledged(es, names["prefix"], lines)
        offsets = {p: max(o, 0) for p, o in
                   committed(bootstrap, names["group"], topic, PARTITIONS).items()}
        print(f"held: {proxy.forwarded} bulk requests forwarded, {proxy.held} held; "
              f"committed {offsets}; first unacknowledged {gap}")
        # the hold is mid-stream: something was acknowledged and committed before it,
        # and lines were held unacknowledged
        assert sum(offsets.values()) > 0, (offsets, first[-3000:])
        assert any(g is not None for g in gap.values()), (gap, proxy.held)
        ahead = {p: (o, gap[p]) for p, o in offsets.items()
                 if gap[p] is not None and o > gap[p]}
        assert not ahead, (
            f"offsets committed past lines Elasticsearch never acknowledged "
            f"(partition: (committed, first offset without its document)): {ahead}; "
            f"{proxy.forwarded} bulk requests forwarded, {proxy.held} held")
        checkpoints = [(int(m.key().decode().rsplit("/", 1)[1]),
                        int(dict(m.headers())["logml.position"]))
                       for m in read_all(bootstrap, names["state_topic"])
                       if "logml.position" in dict(m.headers())]
        assert checkpoints, first[-3000:]
        past = sorted({(p, pos, gap[p]) for p, pos in checkpoints
                       if gap[p] is not None and pos > gap[p]})
        assert not past, (
            f"checkpoints past lines Elasticsearch never acknowledged "
            f"(partition, position, first offset without its document): {past[:6]}")

        # a new consumer, straight on Elasticsearch, takes over from the checkpoints
        cfg = pipeline_file(tmp_path / "direct.toml", names, bootstrap, es_env["ES_URL"],
                            checkpoint_interval_s=0.001, commit_interval_s=0.05,
                            es_extra=ES_EXTRA)
        assert run(cfg, log) == 0, log.read_text()[-3000:]
        second = log.read_text()[len(first):]
        assert sum(int(n) for n in re.findall(
            r"opened \[[\d, ]*\] in [\d.]+ s: (\d+) restored", second)) >= 1, second[-3000:]
        docs = es_documents(es, names["prefix"])  # asserts no id is in two indices
        want = baseline.docs
        missing, extra = want.keys() - docs.keys(), docs.keys() - want.keys()
        assert not missing and not extra, f"{len(missing)} missing, {len(extra)} extra: " \
            f"{sorted(missing)[:3]} {sorted(extra)[:3]}"
        assert docs == want, differences(docs, want)
        anomalies = {v for (kind, _), v in docs.items() if kind == "anomalies"}
        assert anomalies and anomalies == {v for (kind, _), v in want.items()
                                           if kind == "anomalies"}
        got = dead_letters(bootstrap, names["dlq_topic"])
        doubled = sorted({d for d in got if got.count(d) > 1})
        assert not doubled, f"{len(got) - len(set(got))} duplicate dead letters: {doubled[:3]}"
        assert got == baseline.dead_letters
        wait_committed(bootstrap, names, baseline.ends, timeout=10)
    finally:
        delete_indices(es, names["prefix"])
