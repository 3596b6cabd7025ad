"""ElasticsearchSink against the real Elasticsearch 8 node of tests/services/up (no mocks).

Counts after a flush, idempotent replays (deterministic _id), dead-lettering of documents
the mapping refuses, retries of items refused for the index state (a write block, what a
full disk does), and Elasticsearch being unreachable: SinkUnavailable with the buffer kept,
then everything flushed once Elasticsearch is back.
"""
import threading
import time
import uuid

import orjson
import pytest
from elasticsearch import Elasticsearch

from logml import setup as S
from logml.config import ElasticsearchConfig
from logml.decode import Decoder
from logml.detect import Anomaly, ServiceWindow
from logml.docs import anomaly_doc, log_doc, window_doc
from logml.errors import Reason
from logml.metrics import Stats
from logml.sinks.elasticsearch import ElasticsearchSink, SinkUnavailable, index_name

pytestmark = pytest.mark.integration

DAY0 = 1767225600.0  # 2026-01-01T00:00:00Z
SERVICES = ["api", "worker", "db", "auth"]


@pytest.fixture
def prefix(es, es_url):
    """A unique prefix with logml's templates installed; all removed afterwards."""
    p = f"logmlsink{uuid.uuid4().hex[:8]}"
    report = S.setup(es_url, prefix=p)
    assert report.ok, report.format()
    yield p
    es.indices.delete(index=f"{p}-*", ignore_unavailable=True, allow_no_indices=True)
    for kind in S.KINDS:
        es.options(ignore_status=404).indices.delete_index_template(name=f"{p}-{kind}")


class DeadLetters(list):
    def __call__(self, records):
        self.extend(records)


def make_sink(url, prefix, **kw):
    cfg_kw = {k: kw.pop(k) for k in ("bulk_max_docs", "bulk_max_bytes", "max_in_flight",
                                      "max_retries", "compress") if k in kw}
    config = ElasticsearchConfig(url=url, index_prefix=prefix, **cfg_kw)
    stats, dlq = Stats(), DeadLetters()
    return ElasticsearchSink(config, stats, dlq, **kw), stats, dlq


def window_docs(n):
    out = []
    for k in range(n):
        svc, w = SERVICES[k % len(SERVICES)], k // len(SERVICES)
        start = DAY0 + 480.0 * w  # 800 windows span 2026-01-01 and 2026-01-02
        win = ServiceWindow(service=0, start=start, end=start + 60, lines=100 + k, errors=k % 7,
                            error_ratio=(k % 7) / (100 + k), error_ratio_z=0.5,
                            anomaly_score=k % 100, outage_probability=(k % 100) / 100,
                            expected_lines=100.0,
                            expected_error_ratio=0.01)
        out.append(window_doc(win, svc))
    return out


def anomaly_docs(n):
    out = []
    for k in range(n):
        start = DAY0 + 43200.0 + 120.0 * k  # both days
        a = Anomaly(service=0, type=("spike", "drop", "new_template", "error_rate")[k % 4],
                    start=start, end=start + 60, template=k, actual=float(k), expected=2.5,
                    lower=0.0, upper=6.0, zscore=4.5, score=70.0,
                    severity=("warning", "critical")[k % 2], samples=[f"line {k}"],
                    incident_id="2026-01-01T00:00Z")
        out.append(anomaly_doc(a, SERVICES[k % len(SERVICES)], f"t{k:05d}", f"tmpl <NUM> {k}"))
    return out


def log_docs(n):
    records = [orjson.dumps({
        "@timestamp": DAY0 + 86400 * (k % 2) + k, "message": f"request {k} served in {k % 97} ms",
        "service": {"name": SERVICES[k % len(SERVICES)]}, "host": {"name": f"web-{k % 3}"},
        "log": {"level": "ERROR" if k % 10 == 0 else "INFO", "offset": k * 80,
                "file": {"path": "/var/log/app.log"}},
        "agent": {"type": "filebeat", "version": "8.19.0"}}) for k in range(n)]
    events, errors = Decoder().decode(records, list(range(n)), "kafka:logs.raw:0",
                                      now=DAY0 + 3 * 86400)
    assert not errors and len(events) == n
    return [log_doc(events, i, "t00001", "request <NUM> served in <NUM> ms",
                    [str(i), str(i % 97)], "kafka:logs.raw:0") for i in range(n)]


def counts(es, prefix):
    es.indices.refresh(index=f"{prefix}-*")
    return {kind: es.count(index=f"{prefix}-{kind}-*")["count"] for kind in S.KINDS}


def test_index_name_is_the_utc_day_of_the_timestamp():
    assert index_name("logml", "windows", "2026-01-01T23:59:59.999Z") == \
        "logml-windows-2026.01.01"
    assert index_name("logml", "logs", "2026-01-02T00:30:00+02:00") == "logml-logs-2026.01.01"
    assert index_name("logml", "logs", DAY0 + 86400) == "logml-logs-2026.01.02"


def test_write_flush_counts_and_replay_is_idempotent(es, es_url, prefix):
    sink, stats, dlq = make_sink(es_url, prefix, bulk_max_docs=300)
    docs = {"windows": window_docs(800), "anomalies": anomaly_docs(400), "logs": log_docs(800)}
    for kind, batch in docs.items():
        sink.write(kind, batch)
    sink.write("dlq", [("x", {"@timestamp": "2026-01-01T00:00:00.000Z"})])  # not ours
    # full chunks are on their way already; the last 200 wait for the flush
    assert 200 <= sink.pending <= 2000
    sink.flush()
    assert sink.pending == 0 and not dlq
    assert counts(es, prefix) == {"logs": 800, "windows": 800, "anomalies": 400}
    assert dict(stats.bulk_errors) == {}
    assert sum(stats.bulk_latency.counts) == 7  # 2000 docs in chunks of 300
    # one index per kind and UTC day
    names = sorted(es.indices.get(index=f"{prefix}-*"))
    assert names == sorted(f"{prefix}-{k}-2026.01.0{d}" for k in S.KINDS for d in (1, 2))
    # the documents are stored as written, under their deterministic ids
    wid, wdoc = docs["windows"][5]
    got = es.get(index=index_name(prefix, "windows", wdoc["@timestamp"]), id=wid)["_source"]
    assert got == wdoc

    # a replay (same documents again) overwrites: counts unchanged
    for kind, batch in docs.items():
        sink.write(kind, batch)
    sink.flush()
    assert counts(es, prefix) == {"logs": 800, "windows": 800, "anomalies": 400}
    sink.flush()  # nothing buffered: a no-op
    sink.close()


def test_an_idle_sink_sends_a_part_chunk_without_waiting_for_the_flush(es, es_url, prefix):
    """Less than a chunk, nothing in flight: sent at once (indexed while the pipeline goes
    on); with a request in flight, kept for a full chunk or the flush."""
    sink, stats, dlq = make_sink(es_url, prefix, bulk_max_docs=100)
    docs = window_docs(30)
    sink.write("windows", docs[:10])
    assert len(sink._inflight) == 1 and not sink._buffer  # noqa: SLF001
    sink.write("windows", docs[10:])  # the first request may still be in flight
    assert len(sink._buffer) in (0, 20)  # noqa: SLF001
    deadline = time.time() + 30
    while sink._inflight and time.time() < deadline:  # noqa: SLF001 - acknowledged
        sink.backlog_full()  # (collects finished requests) without a flush
        time.sleep(0.05)
    assert sink.pending == len(sink._buffer)  # noqa: SLF001
    sink.flush()
    assert sink.pending == 0 and counts(es, prefix)["windows"] == 30 and not dlq
    sink.close()


def test_write_logs_off_drops_log_documents(es, es_url, prefix):
    config = ElasticsearchConfig(url=es_url, index_prefix=prefix, write_logs=False)
    sink = ElasticsearchSink(config, Stats(), DeadLetters())
    assert sink.write_logs is False
    sink.write("logs", log_docs(10))
    sink.write("windows", window_docs(10))
    sink.flush()
    assert counts(es, prefix) == {"logs": 0, "windows": 10, "anomalies": 0}
    sink.close()


def test_mapping_violation_is_dead_lettered_and_the_rest_indexed(es, es_url, prefix):
    sink, stats, dlq = make_sink(es_url, prefix)
    docs = window_docs(50)
    bad_id, bad = docs[17]
    bad["logml"]["lines"] = "not a number"
    sink.write("windows", docs)
    sink.flush()
    assert sink.pending == 0
    assert counts(es, prefix)["windows"] == 49
    (rec,) = dlq
    assert rec.reason == Reason.SINK_REJECTED and rec.doc()["reason"] == "sink_rejected"
    assert "parsing_exception" in rec.detail and "logml.lines" in rec.detail
    assert rec.raw == orjson.dumps(bad)
    assert rec.source == index_name(prefix, "windows", bad["@timestamp"])
    assert rec.offset == -1 and rec.key == bad["service"]["name"].encode()
    assert stats.bulk_errors["rejected"] == 1
    assert not es.exists(index=rec.source, id=bad_id)


def write_blocked_index(es, prefix, docs) -> str:
    """The windows index of the first doc, created with writes blocked."""
    index = index_name(prefix, "windows", docs[0][1]["@timestamp"])
    es.indices.create(index=index)
    es.indices.put_settings(index=index, settings={"index.blocks.write": True})
    return index


def test_items_refused_for_index_state_are_retried_until_accepted(es, es_url, prefix):
    docs = window_docs(40)
    index = write_blocked_index(es, prefix, docs)
    sink, stats, dlq = make_sink(es_url, prefix, max_retries=20, backoff_base_s=0.05,
                                 backoff_max_s=0.2)
    sink.write("windows", docs)
    lift = threading.Timer(1.0, lambda: es.indices.put_settings(
        index=index, settings={"index.blocks.write": False}))
    lift.start()
    try:
        sink.flush()  # cluster_block_exception (403) per item: retried, not dead-lettered
    finally:
        lift.join()
    assert not dlq and sink.pending == 0
    assert stats.bulk_errors["retried"] > 0 and stats.bulk_errors["rejected"] == 0
    assert counts(es, prefix)["windows"] == 40


def test_items_refused_too_long_raise_and_keep_the_buffer(es, es_url, prefix):
    docs = window_docs(12)
    index = write_blocked_index(es, prefix, docs)
    sink, stats, dlq = make_sink(es_url, prefix, max_retries=2, backoff_base_s=0.01,
                                 backoff_max_s=0.02)
    sink.write("windows", docs)
    with pytest.raises(SinkUnavailable) as excinfo:
        sink.flush()
    n_blocked = sum(1 for _, d in docs if index_name(prefix, "windows", d["@timestamp"]) == index)
    assert excinfo.value.pending == sink.pending == n_blocked and not dlq
    assert "cluster_block_exception" in str(excinfo.value)
    es.indices.put_settings(index=index, settings={"index.blocks.write": False})
    sink.flush()
    assert sink.pending == 0 and counts(es, prefix)["windows"] == 12


def test_unreachable_elasticsearch_raises_and_keeps_the_buffer(es, es_url, prefix):
    # the sink builds its own client from the config; nothing listens on port 1
    sink, stats, dlq = make_sink("http://127.0.0.1:1", prefix, unavailable_timeout_s=1.5,
                                 backoff_base_s=0.1, backoff_max_s=0.5)
    sink.write("windows", window_docs(200))
    sink.write("anomalies", anomaly_docs(100))
    t0 = time.monotonic()
    with pytest.raises(SinkUnavailable) as excinfo:
        sink.flush()
    elapsed = time.monotonic() - t0
    assert 1.5 <= elapsed < 10, elapsed
    assert "unavailable" in str(excinfo.value) and excinfo.value.pending == 300
    assert sink.pending == 300 and not dlq
    assert stats.bulk_errors["unavailable"] >= 2
    # a second flush while still down also raises, still without losing anything
    with pytest.raises(SinkUnavailable):
        sink.flush()
    assert sink.pending == 300

    # Elasticsearch is back (here: the client now points at the real node)
    sink.client.close()
    sink.client = Elasticsearch(es_url, request_timeout=30)
    sink.flush()
    assert sink.pending == 0 and not dlq
    assert counts(es, prefix) == {"logs": 0, "windows": 200, "anomalies": 100}
    sink.client.close()


def test_sink_unavailable_is_what_the_streaming_consumer_catches():
    from logml.sinks import kafka_dlq
    assert issubclass(SinkUnavailable, kafka_dlq.SinkUnavailable)


def test_log_batches_are_indexed_as_log_doc_would_write_them(es, es_url, prefix):
    from logml.template import TemplateEngine
    records = [orjson.dumps({
        "@timestamp": DAY0 + 86400 * (k % 2) + k, "message": f"request {k} served in {k % 97} ms",
        "service": {"name": SERVICES[k % len(SERVICES)]}, "host": {"name": f"web-{k % 3}"},
        "log": {"level": "ERROR" if k % 10 == 0 else "INFO", "offset": k * 80},
        "agent": {"type": "filebeat"}}) for k in range(300)]
    records += [f"2026-01-01T10:00:{k % 60:02d}Z WARN plain {k} line".encode()
                for k in range(100)]
    events, errors = Decoder(keep_events=True).decode(records, list(range(400)), "k:0",
                                                      now=DAY0 + 3 * 86400)
    engine = TemplateEngine()
    idx, _ = engine.template_events(events)
    sink, stats, dlq = make_sink(es_url, prefix, bulk_max_docs=150)
    sink.write_log_batch(events, idx, engine, "k:0")
    sink.write_log_batch(events, idx, engine, "k:0")  # a replay: same ids
    sink.flush()
    assert sink.pending == 0 and not dlq
    assert counts(es, prefix)["logs"] == 400
    for i in (0, 1, 7, 350):
        t = int(idx[i])
        want_id, want = log_doc(events, i, engine.template_id(t), engine.template_text(t),
                                engine.params(events.text(i), t), "k:0")
        got = es.get(index=index_name(prefix, "logs", want["@timestamp"]), id=want_id)
        assert got["_source"] == want
    sink.close()


def test_chunks_in_flight_fill_the_backlog_and_flush_waits_for_all(es, es_url, prefix):
    docs = window_docs(30)
    index = write_blocked_index(es, prefix, docs)
    sink, stats, dlq = make_sink(es_url, prefix, bulk_max_docs=10, max_in_flight=2,
                                 max_retries=100, backoff_base_s=0.05, backoff_max_s=0.1)
    sink.write("windows", docs)  # 3 chunks: 2 threads busy retrying, 1 waiting
    assert sink.backlog_full() and sink.pending > 0
    lift = threading.Timer(1.0, lambda: es.indices.put_settings(
        index=index, settings={"index.blocks.write": False}))
    lift.start()
    try:
        sink.flush()  # the barrier: returns after every chunk is acknowledged
    finally:
        lift.join()
    assert sink.pending == 0 and not sink.backlog_full() and not dlq
    assert counts(es, prefix)["windows"] == 30
    sink.close()


def test_relieve_waits_for_the_oldest_chunk_only(es, es_url, prefix):
    """Backpressure without the barrier: relieve returns once the backlog is not full, with
    the newer chunks still counted as pending (not acknowledged), and reports an outage."""
    docs = window_docs(30)
    index = write_blocked_index(es, prefix, docs)
    sink, stats, dlq = make_sink(es_url, prefix, bulk_max_docs=10, max_in_flight=2,
                                 max_retries=100, backoff_base_s=0.05, backoff_max_s=0.1)
    sink.write("windows", docs)  # 3 chunks of 10: more than the 2 threads take
    assert sink.backlog_full()
    lift = threading.Timer(1.0, lambda: es.indices.put_settings(
        index=index, settings={"index.blocks.write": False}))
    lift.start()
    try:
        assert sink.relieve() and not sink.backlog_full()
    finally:
        lift.join()
    assert sink.waited > 0.5
    sink.flush()
    assert sink.pending == 0 and counts(es, prefix)["windows"] == 30 and not dlq
    sink.close()
    # an outage: the chunk gives up (no retries left), relieve leaves it to flush
    write_blocked_index(es, prefix + "-b", docs)
    sink, stats, dlq = make_sink(es_url, prefix + "-b", bulk_max_docs=10, max_in_flight=1,
                                 max_retries=1, backoff_base_s=0.01, backoff_max_s=0.02)
    sink.write("windows", docs)
    deadline = time.time() + 30
    while sink._inflight and time.time() < deadline:  # noqa: SLF001 - until every chunk
        sink.backlog_full()  # has met the blocked index (this collects finished ones)
        time.sleep(0.05)
    assert not sink.relieve() and sink.backlog_full()
    with pytest.raises(SinkUnavailable):
        sink.flush()
    assert sink.pending == 30
    sink.close()


@pytest.mark.parametrize("compress", [False, True])
def test_chunks_are_sized_by_bytes_and_may_be_gzipped(es, es_url, prefix, compress):
    docs = window_docs(40)
    size = sum(len(orjson.dumps(d)) for _, d in docs)
    sink, stats, dlq = make_sink(es_url, prefix, bulk_max_bytes=2000, compress=compress)
    sink.write("windows", docs)
    sink.flush()
    assert sum(stats.bulk_latency.counts) >= size // 2000
    assert counts(es, prefix)["windows"] == 40 and not dlq
    sink.close()
