"""The numba JSON field scanner against the general path (orjson, record by record)."""
import math

import orjson
from hypothesis import given, settings, strategies as st

from logml.config import DecodeConfig
from logml.decode import Decoder

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
