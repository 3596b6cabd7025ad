"""Per-line documents as bytes (docs.LogDocs) against the reference dict path (docs.log_doc)."""
import hashlib

import numpy as np
import orjson
import pytest

from logml.decode import Decoder
from logml.docs import LogDocs, _cut, _TemplatePlan, day_name, iso, iso_batch, log_doc
from logml.template import TemplateEngine

NOW = 1767225600.0 + 3 * 86400


def reference(events, idx, engine, source):
    return [log_doc(events, i, engine.template_id(t), engine.template_text(t),
                    engine.params(events.text(i), t), source, engine.lineage(t)["parents"])
            for i, t in enumerate(idx.tolist())]


def check(events, engine, source="kafka:logs.raw:3"):
    idx, _ = engine.template_events(events)
    days, ids, docs = LogDocs().build(events, idx, engine, source)
    want = reference(events, idx, engine, source)
    assert ids == [i for i, _ in want]
    assert [orjson.loads(d) for d in docs] == [d for _, d in want]
    assert [day_name(d) for d in days.tolist()] == \
        [d["@timestamp"][:10].replace("-", ".") for _, d in want]
    return docs


def test_iso_batch_equals_iso_including_rounding_edges():
    rng = np.random.default_rng(3)
    ts = np.concatenate([rng.uniform(631152000, 2e9, 2000),
                         np.floor(rng.uniform(1.7e9, 1.8e9, 200)) + 0.9995,
                         np.floor(rng.uniform(1.7e9, 1.8e9, 200)) + 0.0005,
                         [1767225599.9999, 1767225600.0, 946684799.9996]])
    stamps, days = iso_batch(ts)
    assert [s.decode() for s in stamps] == [iso(t) for t in ts.tolist()]
    assert [day_name(d) for d in days.tolist()] == \
        [iso(t)[:10].replace("-", ".") for t in ts.tolist()]


def test_plain_lines_with_headers_levels_and_truncation():
    lines = [b"2026-01-01T10:00:00.123Z ERROR conn reset by 10.0.0.1 after 35ms",
             b"2026-01-01T10:00:01Z INFO user 42 logged in from \"home\\office\"",
             b"Jan  2 03:04:05 sshd[123]: Accepted key for \xc3\xa9lise port 2222",
             b"no header at all, tab\there and unicode \xe2\x9c\x93",
             b"2026-01-01T23:59:59.9996Z WARN x" + b"y" * 300]
    events, errors = Decoder().decode_block(b"\n".join(lines) + b"\n", 100, "f", now=NOW)
    events.ts[np.isnan(events.ts)] = NOW
    dec = Decoder()
    dec.config.max_line_bytes = 200
    long_events, _ = dec.decode_block(lines[-1] + b"\n", 7, "f", now=NOW)
    assert long_events.truncated.all()
    engine = TemplateEngine()
    check(events, engine)
    docs = check(long_events, engine)
    assert orjson.loads(docs[0])["logml"]["truncated"] is True


def test_json_events_keep_their_other_fields():
    events_in = [
        {"@timestamp": "2026-01-01T00:00:01.250Z", "message": "conn reset by 10.0.0.1",
         "service": {"name": "api", "type": "web"}, "host": {"name": "web-1"},
         "log": {"level": "ERROR", "offset": 1234, "file": {"path": "/var/log/api.log"}},
         "agent": {"type": "filebeat", "version": "8.19.0"}, "_id": "x", "logml": {"a": 1}},
        {"@timestamp": 1767225700123, "message": "GET /a/b 200 in 12 ms", "service": "worker",
         "host": "h2", "level": "warn", "tags": ["a", "b"], "n": 1.5},
        {"timestamp": "2026-01-01T00:02:00Z", "message": "job 7 done", "host.name": "h3",
         "fields": {"service": "db"}, "log": "not a dict"},
        {"@timestamp": "2026-01-02T00:00:00Z", "message": "job 8 done", "log": {"x": 1}},
        {"message": "plain \"quoted\" \\ text\u2028 \x01", "service": {"name": "api"}},
    ]
    records = [orjson.dumps(e) for e in events_in] + [b"INFO a plain line in the mix 17"]
    events, errors = Decoder(keep_events=True).decode(records, list(range(10, 16)), "k",
                                                       now=NOW)
    assert not errors and len(events) == 6
    events.ts[np.isnan(events.ts)] = NOW  # the pipeline's window stage gives them a time
    docs = check(events, TemplateEngine())
    first = orjson.loads(docs[0])
    assert first["service"] == {"name": "api", "type": "web"} and "_id" not in first
    assert first["log"]["file"]["path"] == "/var/log/api.log"


def test_many_generated_lines_and_a_generalising_template():
    engine = TemplateEngine()
    builder = LogDocs()
    for batch in range(3):
        lines = [f"2026-01-01T00:{k % 60:02d}:{k % 60:02d}Z INFO req {k * 7} from "
                 f"10.0.{batch}.{k % 250} took {k % 13}ms user=u{k % 5} "
                 f"{'ok' if k % 3 else 'retry ' + str(k)}".encode() for k in range(300)]
        events, _ = Decoder().decode_block(b"\n".join(lines) + b"\n", 300 * batch, "s", now=NOW)
        events.ts[np.isnan(events.ts)] = NOW
        idx, _ = engine.template_events(events)
        _, ids, docs = builder.build(events, idx, engine, "s")  # plans kept across batches
        want = reference(events, idx, engine, "s")
        assert [orjson.loads(d) for d in docs] == [d for _, d in want]
        assert ids == [hashlib.blake2b(f"log\x1fs\x1f{o}".encode(), digest_size=12).hexdigest()
                       for o in events.offset.tolist()]


def test_one_builder_for_pipelines_of_the_same_app_under_other_names():
    """Kafka mode: one sink (one builder) for every partition's pipeline, each with its
    own engine numbering templates from 0. Two services of the same app (the same lines
    under another service name) have the same template text at the same index; a line's
    document got the other service's template id (30 % of the log documents in a probe,
    different ones after a replay)."""
    builder = LogDocs()
    for service in ("api-eu", "api-us", "api-eu"):
        lines = [orjson.dumps({"@timestamp": "2026-01-01T00:00:%02dZ" % k, "message":
                               f"GET /items/{k} 200 in {k * 3} ms",
                               "service": {"name": service}}) for k in range(40)]
        events, _ = Decoder().decode_block(b"\n".join(lines) + b"\n", 0, "kafka:logs.raw:0",
                                           now=NOW)
        engine = TemplateEngine()
        idx, _ = engine.template_events(events)
        _, _, docs = builder.build(events, idx, engine, "kafka:logs.raw:0")
        want = reference(events, idx, engine, "kafka:logs.raw:0")
        assert [orjson.loads(d) for d in docs] == [d for _, d in want], service
        assert {orjson.loads(d)["logml"]["template_id"] for d in docs} == \
            {engine.template_id(t) for t in set(idx.tolist())}


@pytest.mark.parametrize("tok,pat", [("35ms", "<NUM>ms"), ("id=7", "id=<NUM>"),
                                     ("x", "<*>"), ("ab", "a<NUM>b>"), ("<7>", "<<NUM>>"),
                                     ("u5", "id=<NUM>"), ("a", "abc<NUM>def")])
def test_fast_cut_equals_the_general_cut(tok, pat):
    plan = _TemplatePlan("t", f"w {pat}")
    assert plan.params(f"w {tok}") == ([] if tok == pat else [_cut(tok, pat)])
    engine_params = TemplateEngine.params
    class E:  # noqa: E306  the engine's own method on a fixed template text
        template_text = staticmethod(lambda idx: f"w {pat}")
    assert plan.params(f"w {tok}") == engine_params(E, f"w {tok}", 0)


def test_params_equal_the_engines_on_random_lines_and_templates():
    """Random templates (literals, placeholders with literal ends, <*>) and random lines
    that fit them or not, with odd whitespace: the prepared plan cuts what the engine cuts."""
    rng = np.random.default_rng(11)
    alphabet = list("ab<>*=:x1") + ["\u00a0", "\u2003", "\x1c"]
    words = ["<NUM>", "<*>", "id=<NUM>", "<IP>:<NUM>", "[<HEX>]", "<NUM>ms", "a<NUM>b>",
             "GET", "x", "<<NUM>>", "<x"]

    class E:  # the engine's own method on a fixed template text
        def __init__(self, text):
            self.text = text

        def template_text(self, idx):
            return self.text

    for _ in range(3000):
        pat = [words[k] for k in rng.integers(0, len(words), rng.integers(1, 6))]
        tokens = []
        for p in pat:
            r = rng.random()
            if r < 0.2:
                tokens.append(p)
            elif r < 0.7:
                tokens.append(p.replace("<NUM>", str(rng.integers(0, 999)))
                              .replace("<*>", "v").replace("<IP>", "1.2.3.4")
                              .replace("<HEX>", "ff"))
            else:
                tokens.append("".join(rng.choice(alphabet, rng.integers(1, 6))))
        if rng.random() < 0.1:
            tokens.append("extra")
        seps = [" ", "  ", "\t", "\u00a0", " \u2003 "]
        line = rng.choice(["", " "]) + "".join(
            t + (rng.choice(seps) if k < len(tokens) - 1 else "") for k, t in enumerate(tokens))
        line = "".join(c for c in line) + rng.choice(["", " ", "\n"])
        text = " ".join(pat)
        assert _TemplatePlan("t", text).params(line) == \
            TemplateEngine.params(E(text), line, 0), (text, line)


SPLICE_EVENTS = [
    {"@timestamp": "2026-01-01T00:00:01.250Z", "message": "conn reset by 10.0.0.1",
     "service": {"name": "api", "type": "web"}, "host": {"name": "web-1", "ip": ["1.2.3.4"]},
     "log": {"level": "ERROR", "offset": 1234, "file": {"path": "/var/log/api.log"}},
     "agent": {"type": "filebeat", "version": "8.19.0"}, "_id": "x", "logml": {"a": 1}},
    {"@timestamp": "2026-01-01T00:00:02Z", "message": "GET /a/b 200 in 12 ms",
     "service": "worker", "host": "h2", "level": "warn", "tags": ["a", "b"], "n": 1.50},
    {"timestamp": "2026-01-01T00:02:00Z", "message": "job 7 done", "host.name": "h3",
     "service.name": "db", "x": None, "y": True, "z": -0.0},
    {"@timestamp": "2026-01-02T00:00:00Z", "message": "job 8 done", "log": {"x": 1}},
    {"message": "2026-01-02T00:00:00Z INFO plain \"quoted\" \\ text\u2028 \x01 \u00e9",
     "service": {"name": "api", "e\u00e9": "\u00e9"}, "log": {"level": "bogus"}},
    {"message": "no level", "log": {"file": {"path": "/x"}}, "host": {}},
    {"message": "m", "fields": {"service": "fs"}, "service": {"name": "s2"}},
]
SPLICE_LINES = [orjson.dumps(e) for e in SPLICE_EVENTS] + [
    b'  { "message" : "spaced out" , "service" : { "name" : "api" , "k" : [ 1 , {"a":"}"} ] } ,'
    b' "log" : { "level" : "info" }, "other": "a\\"b" }  ',
    b'{"message":"dup key","a":1,"a":2}',  # declined: the dict path keeps the last
    b'{"message":"dup nested","service":{"name":"x","k":1,"k":2},"level":"info"}',
    b'{"message":"escaped key","a\\u0062":1}',
    b'{"message":"escaped nested key","log":{"lev\\u0065l":"x","b":1},"level":"info"}',
    b'{"message":"a host number","host":5}',
    b'{"message":"host.name in a host object","host":{"id":1},"host.name":"h9"}',
    b"a plain line among JSON events 42",
]


@pytest.mark.parametrize("fmt", ["auto", "json"])
def test_spliced_json_events_equal_the_dict_path(fmt):
    """Events of the decoder's fast path (bytes kept, not dicts) spliced by the numba pass;
    the reference is log_doc on the same event as a dict."""
    from logml.config import DecodeConfig
    lines = SPLICE_LINES if fmt == "auto" else SPLICE_LINES[:-1]
    data = b"\n".join(lines) + b"\n"
    events, errors = Decoder(DecodeConfig(format=fmt), keep_raw=True).decode_block(
        data, 50, "k", now=NOW)
    assert not [e for e in errors if not e.kept] and len(events) == len(lines)
    assert (events.raw_span[:, 0] >= 0).sum() >= 10  # most went the fast path
    events.ts[np.isnan(events.ts)] = NOW
    docs = check(events, TemplateEngine())
    general, _ = Decoder(DecodeConfig(format=fmt), keep_events=True).decode_block(
        data, 50, "k", now=NOW)
    general.ts[np.isnan(general.ts)] = NOW
    engine = TemplateEngine()
    idx, _ = engine.template_events(general)
    assert [orjson.loads(d) for d in docs] == \
        [d for _, d in reference(general, idx, engine, "kafka:logs.raw:3")]
    first = orjson.loads(docs[0])
    assert first["service"] == {"name": "api", "type": "web"} and "_id" not in first
    assert first["logml"]["template"] and first["log"]["level"] == "error"


def test_spliced_documents_equal_the_general_paths_on_generated_events(tmp_path):
    from logml.generate import write
    events_file, _ = write(tmp_path, seed=3, hours=1, services=4, start=1_764_000_000.0,
                           rate=0.5)
    data = events_file.read_bytes()
    fast, _ = Decoder(keep_raw=True).decode_block(data, 0, "k", now=NOW)
    slow, _ = Decoder(keep_events=True).decode_block(data, 0, "k", now=NOW)
    assert (fast.raw_span[:, 0] >= 0).all() and len(fast) == len(slow)
    for ev in (fast, slow):
        ev.ts[np.isnan(ev.ts)] = NOW
    engine = TemplateEngine()
    idx, _ = engine.template_events(fast)
    a = LogDocs().build(fast, idx, engine, "k")
    b = LogDocs().build(slow, idx, engine, "k")
    assert a[1] == b[1] and [orjson.loads(x) for x in a[2]] == [orjson.loads(x) for x in b[2]]
