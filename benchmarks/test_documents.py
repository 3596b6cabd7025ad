"""Building per-line Elasticsearch documents: the bytes path (docs.LogDocs, what the sink
sends) against the per-line dict path (docs.log_doc + orjson per document + the action
line), on the same decoded batches in the same run. Generated Filebeat events (JSON, the
original events kept as streaming with write_logs does) and plain lines with headers."""
import time

import orjson
import pytest

from logml.decode import Decoder
from logml.docs import LogDocs, log_doc
from logml.generate import write
from logml.sinks.elasticsearch import index_name
from logml.template import TemplateEngine

BATCH = 5000


@pytest.fixture(scope="module")
def batches(tmp_path_factory):
    """Decoded, templated batches of 5000 lines: (kind, events, template index)."""
    events_path, _ = write(tmp_path_factory.mktemp("docs"), seed=5, hours=0.5, services=5,
                           start=1_764_000_000.0, rate=10.0)
    lines = events_path.read_bytes().splitlines()[:4 * BATCH]
    plain = [b"%s %s %s" % (orjson.loads(x)["@timestamp"].encode(),
                            orjson.loads(x)["log"]["level"].upper().encode(),
                            orjson.loads(x)["message"].encode()) for x in lines]
    engine = TemplateEngine()
    out = {"json": [], "plain": [], "json_spliced": []}
    for kind, source in (("json", lines), ("plain", plain), ("json_spliced", lines)):
        for k in range(0, len(source), BATCH):
            block = b"\n".join(source[k:k + BATCH]) + b"\n"
            # json_spliced: the pipeline's decoder when documents are on (the JSON fast
            # path keeps the events' bytes, LogDocs splices them); json: every event a dict
            decoder = Decoder(keep_raw=True) if kind == "json_spliced" else \
                Decoder(keep_events=True)
            events, _ = decoder.decode_block(block, k, "b", now=1.8e9)
            idx, _ = engine.template_events(events)
            out[kind].append((events, idx))
    return engine, out


def dict_path(engine, events, idx):
    """What the pipeline and the sink did before: a dict per line, then its JSON."""
    body = []
    for i, t in enumerate(idx.tolist()):
        _id, doc = log_doc(events, i, engine.template_id(t), engine.template_text(t),
                           engine.params(events.text(i), t), "b")
        index = index_name("logml", "logs", doc["@timestamp"])
        body.append(orjson.dumps({"index": {"_index": index, "_id": _id}}))
        body.append(orjson.dumps(doc))
    return body


def bytes_path(builder, engine, events, idx):
    days, ids, docs = builder.build(events, idx, engine, "b")
    body = []
    for i, (_id, doc) in enumerate(zip(ids, docs)):  # the sink's action line
        body.append(b'{"index":{"_index":"logml-logs-x","_id":"' + _id.encode() + b'"}}')
        body.append(doc)
    return body


@pytest.mark.parametrize("kind", ["json", "plain", "json_spliced"])
def test_document_build_cost(benchmark, batches, record, kind):
    engine, data = batches
    runs = data[kind]
    lines = sum(len(e) for e, _ in runs)
    builder = LogDocs()
    benchmark.pedantic(lambda: [bytes_path(builder, engine, e, i) for e, i in runs],
                       rounds=5, iterations=1, warmup_rounds=1)
    # CPU seconds of this process (the machine is shared: wall time says more about the
    # neighbours), both paths interleaved in the same run, best of 7 each
    new_s, old_s = [], []
    for _ in range(7):
        t0 = time.process_time()
        for e, i in runs:
            bytes_path(builder, engine, e, i)
        t1 = time.process_time()
        for e, i in runs:
            dict_path(engine, e, i)
        new_s.append(t1 - t0)
        old_s.append(time.process_time() - t1)
    new_s, old_s = min(new_s), min(old_s)
    # same documents either way
    e, i = runs[0]
    new_docs = bytes_path(builder, engine, e, i)[1::2]
    assert [orjson.loads(d) for d in new_docs] == \
        [orjson.loads(d) for d in dict_path(engine, e, i)[1::2]]
    record(f"documents_{kind}", lines=lines, batch=BATCH, kind=kind,
           bytes_path_cpu_us_per_line=round(new_s / lines * 1e6, 2),
           dict_path_cpu_us_per_line=round(old_s / lines * 1e6, 2),
           bytes_path_wall_us_per_line_min=round(benchmark.stats.stats.min / lines * 1e6, 2),
           speedup=round(old_s / new_s, 1))
