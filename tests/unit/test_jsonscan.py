"""The numba JSON field scanner against the general path (orjson, record by record)."""
import math
import re

import numpy as np
import orjson
from hypothesis import example, given, settings, strategies as st

from logml.config import DecodeConfig
from logml.decode import Decoder
from splitref import reference_split

NOW = 1_764_000_000.0

EDGE = [
    b'{"message":"esc \\"q\\" \\u00e9 \\ud83d\\ude00 tab\\t/\\/","@timestamp":"2025-11-24T10:00:00Z",'
    b'"service":{"name":"x"},"log":{"level":"WARN"}}',
    b'{"message":"m","service":"flat","level":"error"}',
    b'{"message":"m","service.name":"dotted","log.level":"err"}',
    b'{"message":"m","@timestamp":1764000000,"host":"h"}',
    b'{"message":"m","fields":{"service":"fs"}}',
    b'{"message":"2025-11-24T10:00:00Z ERROR boom"}',
    b'{"message":"m","log":{"file":{"path":"/x"}},"level":"info"}',
    b'{"message":"m","log":"text","level":"info"}',
    b'{"message":"m","service":{"id":1}}', b'{"message":"m","service":""}',
    b'{"message": 5}', b"[1]", b'{"message":"x"} trailing', b'{"message":"\\u0000"}',
    b'{"a":tru,"message":"x"}', b'{"message":"x","@timestamp":"1970-01-01T00:00:00Z"}',
    b'{"message":"x","@timestamp":"2025-11-24 10:00:00"}', b'{"message":"x","timestamp":"x"}',
    b'  {"message" : "spaced" , "level" : null }  ', b'{"message":"x","a":{"b":[1,{"c":2}]}}',
    b'{"message":"x","a":' + b"[" * 80 + b"]" * 80 + b"}", b'{"message":"\\ud800"}',
    b'{"message":"dup","message":"second"}', b'{}', b'{"message":"x",}',
]


def both(data: bytes):
    fast = Decoder(DecodeConfig(), keep_events=False).decode_block(data, now=NOW)
    slow = Decoder(DecodeConfig(), keep_events=True).decode_block(data, now=NOW)
    return fast, slow


def _ts(t):
    return None if math.isnan(t) else float(t)  # NaN != NaN


def rows(batch):
    return [(batch.message(i), batch.text(i), _ts(batch.ts[i]), int(batch.level[i]),
             batch.service_name(i), int(batch.offset[i])) for i in range(len(batch))]


def errs(errors):
    return [(e.reason, e.offset, e.raw) for e in errors]


def test_edge_cases_agree_with_the_general_path():
    (a, ea), (b, eb) = both(b"\n".join(EDGE) + b"\n")
    assert rows(a) == rows(b)
    assert errs(ea) == errs(eb)


TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
LEVEL = st.sampled_from(["INFO", "warn", "Error", "fatal", "bogus", ""])
EVENT = st.fixed_dictionaries({"message": TEXT}, optional={
    "@timestamp": st.sampled_from(["2025-11-24T10:00:00.5Z", "2025-11-24T10:00:00+02:00",
                                   "not a time", "2025-11-24"]),
    "log": st.fixed_dictionaries({}, optional={"level": LEVEL}),
    "level": LEVEL,
    "service": st.one_of(st.fixed_dictionaries({"name": TEXT}), TEXT),
    "host": st.fixed_dictionaries({"name": TEXT}),
    "extra": st.recursive(st.integers(-2**63, 2**63 - 1) | st.floats(allow_nan=False) | TEXT, lambda c: st.lists(c, max_size=3), max_leaves=5),
})


@settings(max_examples=200, deadline=None)
@given(st.lists(EVENT, min_size=1, max_size=20))
def test_random_events_agree_with_the_general_path(events):
    data = b"\n".join(orjson.dumps(e) for e in events) + b"\n"
    (a, ea), (b, eb) = both(data)
    assert rows(a) == rows(b)
    assert errs(ea) == errs(eb)


# ---------------------------------------------------------------- strict JSON, raw text
GOOD_STRINGS = ['"plain"', '"esc \\" \\\\ \\/ \\b \\f \\n \\r \\t"', '"\\u00e9 \\ud83d\\ude00"',
                '"caf\u00e9"', '""', '"2025-11-24T10:00:00Z"', '"\\u0000"']
BAD_STRINGS = ['"\\ud800"', '"\\udc00"', '"\\ud83d\\u0041"', '"\\q"', '"\\u12"',
               '"raw \x01 control"', '"open']
GOOD_NUMBERS = ["0", "-0", "12", "-3.5", "1e5", "1E+5", "2.5e-3", "1e308", "1e-400",
                "1.7976931348623157e308", "123456789012345678901234567890", "0.0001e310"]
BAD_NUMBERS = ["01", "1.", ".5", "-", "1e", "+1", "NaN", "Infinity", "-Infinity", "nan",
               "inf", "1e400", "-1e309", "9e308", "0x1f", "1.5.2"]
GOOD = st.sampled_from(GOOD_STRINGS + GOOD_NUMBERS + ["true", "false", "null"])
BAD = st.sampled_from(BAD_STRINGS + BAD_NUMBERS + ["tru", "nul", "True", "falsey", ""])
VALUE = st.recursive(
    GOOD,
    lambda inner: st.lists(inner, max_size=3).map(lambda xs: "[" + ",".join(xs) + "]")
    | st.lists(st.tuples(st.sampled_from(["a", "name", "level"]), inner), max_size=3).map(
        lambda kv: "{" + ",".join(f'"{k}":{v}' for k, v in kv) + "}"),
    max_leaves=6)
POISON = st.one_of(BAD, BAD.map(lambda x: f"[1,{x}]"), BAD.map(lambda x: '{"a":[' + x + "]}"),
                   st.sampled_from(["[1,]", '{"a":1,}', '{"a" 1}', "[1 2]", "{1:2}"]))
KEY = st.sampled_from(['"message"', '"@timestamp"', '"service"', '"level"', '"log"', '"host"',
                       '"x"', '"mess\\u0061ge"'])
WS = st.sampled_from(["", "", "", " ", "\t", "\r"])


@st.composite
def raw_events(draw):
    """A JSON object that is valid, or valid but for one poisoned value or one slip."""
    members = draw(st.lists(st.tuples(KEY, VALUE), max_size=4))
    if draw(st.booleans()):
        members.insert(draw(st.integers(0, len(members))),
                       ('"message"', draw(st.sampled_from(GOOD_STRINGS))))
    if draw(st.booleans()):
        # mostly under a key the scanner skips: that is where it must still validate
        key = draw(st.sampled_from(['"x"', '"extra"', '"y"', '"log"', '"service"']))
        members.insert(draw(st.integers(0, len(members))), (key, draw(POISON)))
    ws = draw(WS)
    body = ",".join(f"{ws}{k}{ws}:{ws}{v}{ws}" for k, v in members)
    tail = draw(st.sampled_from(["", "", "", "", " ", " x", ",", "\x0b"]))
    return ("{" + body + "}" + tail).encode()


@settings(max_examples=300, deadline=None)
@given(st.lists(raw_events(), min_size=1, max_size=10))
@example([b'{"message":"m","x":NaN}', b'{"message":"m","x":[1,-Infinity]}',
          b'{"message":"m","x":"\\ud800"}', b'{"message":"m","x":{"a":1e400}}'])
def test_raw_json_lines_agree_with_the_general_path(lines):
    """Whatever the scanner accepts, orjson accepts with the same fields; whatever it
    refuses gets the general path's precise error."""
    (a, ea), (b, eb) = both(b"\n".join(lines) + b"\n")
    assert rows(a) == rows(b)
    assert errs(ea) == errs(eb)


# ---------------------------------------------------------------- splitting, detection
BYTES = st.lists(st.sampled_from([b"a", b"{", b" ", b"\t", b"\r", b"\n", b"\n", b"\xef\xbb\xbf",
                                  b"\xef", b"\x0b", b"xyz"]), max_size=40).map(b"".join)


@settings(max_examples=500, deadline=None)
@given(BYTES)
def test_split_lines_against_reference(data):
    from logml.plaintext import split_lines
    buf, starts, ends, line, runs, n = split_lines(data)
    kept, ref_runs, ref_n = reference_split(data)
    assert n == ref_n
    assert [(int(k), data[s:e]) for k, s, e in zip(line, starts, ends)] == kept
    assert [[f, c, data[s:e]] for f, c, s, e in runs.tolist()] == ref_runs


def reference_shaped(line: bytes) -> bool:
    """Format auto reads as JSON: a line opening an object, or one whole JSON array."""
    head = line.lstrip(b" \t\r\n")
    if head[:1] == b"{":
        return re.match(rb'\{[ \t\r\n]*["}]', head) is not None
    if head[:1] == b"[":
        try:
            return isinstance(orjson.loads(line), list)
        except orjson.JSONDecodeError as e:
            return "recursion" in str(e)
    return False


SHAPES = st.lists(st.sampled_from([b"{", b"}", b"[", b"]", b'"', b'"a"', b" ", b"\t", b"\r",
                                   b"\x0b", b",", b":", b"1", b"-2.5e3", b"01", b"NaN", b"null",
                                   b"tru", b"main", b"\\u00e9", b"\\ud800"]),
                  max_size=8).map(b"".join)


@settings(max_examples=1000, deadline=None)
@given(SHAPES)
@example(b"[" * 100 + b"]" * 100)
@example(b"[main] started [x]")
@example(b" [1, [2, {\"a\": [3]}]] ")
def test_json_shaped_against_reference(line):
    from logml.jsonscan import json_shaped
    buf = np.frombuffer(line, dtype=np.uint8)
    got = json_shaped(buf, np.array([0]), np.array([len(line)]), 64)[0]
    assert bool(got) == reference_shaped(line)
    assert Decoder()._is_json(line) == bool(got)


# ---------------------------------------------------------------- over-long events
LIMIT = 64
FIELD = st.sampled_from(["@timestamp", "service", "level", "log", "host", "pad", "fields"])
FIELD_VALUE = {
    "@timestamp": st.sampled_from(["2025-11-24T10:00:00Z", "2025-11-24T10:00:00.25+01:00",
                                   1764000000]),
    "service": st.one_of(TEXT, st.fixed_dictionaries({"name": TEXT})),
    "level": LEVEL, "log": st.fixed_dictionaries({"level": LEVEL}),
    "host": st.fixed_dictionaries({"name": TEXT}),
    "pad": st.text(min_size=0, max_size=300), "fields": st.fixed_dictionaries({"service": TEXT}),
}


@st.composite
def long_events(draw):
    keys = draw(st.lists(FIELD, unique=True, max_size=6))
    items = [(k, draw(FIELD_VALUE[k])) for k in keys]
    items.insert(draw(st.integers(0, len(items))),
                 ("message", draw(st.text(st.characters(blacklist_categories=("Cs",)),
                                          min_size=0, max_size=200))))
    return items


def _serialise(items):
    """The line, and the end of each member's value in it."""
    out, ends = b"{", []
    for k, v in items:
        if len(out) > 1:
            out += b","
        out += orjson.dumps(k) + b":"
        start = len(out)
        out += orjson.dumps(v)
        ends.append((start, len(out)))
    return out + b"}", ends


def _prefix_text(raw: bytes) -> str:
    """The longest prefix of a JSON string body that decodes."""
    for j in range(len(raw), -1, -1):
        try:
            return orjson.loads(b'"' + raw[:j] + b'"')
        except orjson.JSONDecodeError:
            continue
    return ""


@settings(max_examples=300, deadline=None)
@given(long_events(), st.integers(0, 10_000))
def test_over_long_events_against_the_general_path(items, cut_at):
    """An over-long event, whole or cut anywhere: the fields that lie wholly before the cut
    are read as the general path reads a small event made of them, the message is cut to
    max_line_bytes on a character boundary."""
    line, spans = _serialise(items)
    if len(line) <= LIMIT:
        return
    n = LIMIT + 1 + cut_at % (len(line) - LIMIT)  # the reader keeps at least LIMIT + 1
    known = {}
    for (k, v), (s, e) in zip(items, spans):
        number = isinstance(v, (int, float)) and not isinstance(v, bool)
        if e < n or (e == n and not number):  # a number cut at its end may go on
            known[k] = v
        elif k == "message" and s < n:
            known[k] = _prefix_text(line[s + 1:n])
        if e > n:
            break
    config = DecodeConfig(max_line_bytes=LIMIT)
    got_events, got_errors = Decoder(config).decode([line[:n]], now=NOW)
    if "message" not in known:
        assert len(got_events) == 0
        assert [e.reason for e in got_errors] == ["too_long" if n < len(line) else
                                                  "missing_message"]
        return
    known["message"] = known["message"].encode()[:LIMIT].decode("utf-8", "ignore")
    for k in ("service", "host", "log", "fields"):
        if k in known and len(orjson.dumps(known[k])) > 4096:
            del known[k]
    want_events, want_errors = Decoder(config).decode([orjson.dumps(known)], now=NOW)
    assert [(e.reason, e.kept) for e in got_errors] == (
        [("too_long", True)] if len(want_events) else [(e.reason, e.kept) for e in want_errors])
    got, want = rows(got_events), rows(want_events)
    assert [r[:5] for r in got] == [r[:5] for r in want]
    assert got_events.truncated.all()


@settings(max_examples=150, deadline=None)
@given(st.lists(EVENT, min_size=0, max_size=20), st.integers(0, 2 ** 32 - 1))
def test_event_fields_against_reference(events, seed):
    """The fused columns kernel (timestamp bounds, level, service ids) against its
    Python reference, on the rows the scanner took, in a shuffled subset."""
    from logml import jsonscan
    from logml.plaintext import split_lines
    data = b"\n".join(orjson.dumps(e) for e in events) + b"\n"
    buf, starts, ends, _, _, _ = split_lines(data)
    status, spans, _, _ = jsonscan.scan(buf, starts, ends, 64)
    rows = np.flatnonzero(status == jsonscan.FAST)
    rows = np.random.default_rng(seed).permutation(rows)[: max(len(rows) - 1, 0)]
    got = jsonscan.fields(buf, spans, rows)
    want = jsonscan.event_fields_reference(buf, spans, rows, jsonscan.LEVEL_TABLE,
                                           jsonscan.LEVEL_CODE)
    for g, w in zip(got, want):
        assert g.tolist() == w.tolist()
