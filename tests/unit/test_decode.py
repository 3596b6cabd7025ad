import time

import numpy as np
import orjson
import pytest
from hypothesis import given, settings, strategies as st

from logml.config import DecodeConfig
from logml.decode import LEVELS, Decoder, parse_header
from logml.errors import Reason

NOW = 1_764_000_000.0  # 2025-11-24


def decode(records, **cfg):
    return Decoder(DecodeConfig(**cfg)).decode(records, now=NOW)


def test_filebeat_ecs_event():
    ev = {"@timestamp": "2025-11-24T10:00:00.250Z", "message": "payment failed for order 42",
          "log": {"level": "error", "file": {"path": "/var/log/pay.log"}},
          "service": {"name": "payments"}, "host": {"name": "web-1"}}
    events, errors = decode([orjson.dumps(ev)])
    assert not errors
    assert events.service_name(0) == "payments" and events.host == ["web-1"]
    assert LEVELS[events.level[0]] == "error"
    assert events.ts[0] == pytest.approx(1763978400.25)
    assert events.event[0]["log"]["file"]["path"] == "/var/log/pay.log"


def test_logstash_event_and_service_fallbacks():
    ev = {"@timestamp": "2025-11-24T10:00:00+01:00", "message": "WARN disk low", "host": "db-2",
          "@version": "1"}
    events, errors = Decoder(DecodeConfig(), service="from-config").decode(
        [orjson.dumps(ev)], now=NOW)
    assert not errors
    assert events.service_name(0) == "from-config" and events.host == ["db-2"]
    assert LEVELS[events.level[0]] == "warn"  # from the message header
    assert events.ts[0] == pytest.approx(1763974800.0)
    assert decode([orjson.dumps({"message": "x"})])[0].service_name(0) == "default"


def test_a_service_name_that_is_no_name_is_the_default_service():
    """A list or object is no service name (it became the service "['a']"); a number is."""
    names = [["a"], {"x": 1}, True, None, 5]
    events, errors = decode([orjson.dumps({"message": "x", "service": {"name": n}})
                             for n in names])
    assert not errors
    assert [events.service_name(i) for i in range(len(names))] == ["default"] * 4 + ["5"]


@pytest.mark.parametrize("line,level,text", [
    ("2025-11-24 10:00:00,123 ERROR [main] boom", "error", "[main] boom"),
    ("2025-11-24T10:00:00Z INFO started", "info", "started"),
    ("Nov 24 10:00:00 host sshd[1]: accepted", "unknown", "host sshd[1]: accepted"),
    ("[Mon Nov 24 10:00:00 2025] [error] client denied", "error", "client denied"),
    ("11-24 10:00:00.811  1702  2395 D WindowManager: x", "unknown", "1702  2395 D WindowManager: x"),
    ("no header at all", "unknown", "no header at all"),
    ("WARNING: low memory", "warn", "low memory"),
])
def test_plain_headers(line, level, text):
    for events, errors in (decode([line.encode()]),
                           Decoder().decode_block(line.encode() + b"\n", now=NOW)):
        assert not errors
        assert LEVELS[events.level[0]] == level
        assert events.text(0) == text
        assert events.message(0) == line


def test_no_usable_time_is_nan_not_arrival_time():
    """The decoder never invents a time: the pipeline fills NaN from the event clock."""
    lines = [b"2025-11-24T10:00:00Z x", b"no time", b'{"message": "json without time"}']
    for events, _ in (decode(lines), Decoder().decode_block(b"\n".join(lines), now=NOW),
                      Decoder(keep_events=True).decode_block(b"\n".join(lines), now=NOW)):
        assert events.ts[0] == pytest.approx(1763978400.0)
        assert np.isnan(events.ts[1]) and np.isnan(events.ts[2])


HOSTILE = [
    (b"\xff\xfe bad utf8", Reason.INVALID_UTF8),
    (b"nul\x00inside", Reason.NUL_BYTES),
    (b"", Reason.EMPTY),
    (b"   \t", Reason.EMPTY),
    (b"[1, 2, 3]", Reason.NOT_AN_OBJECT),
    (b'"just a string"', Reason.NOT_AN_OBJECT),
    (b'{"msg": "no message field"}', Reason.MISSING_MESSAGE),
    (b'{"message": 12}', Reason.MISSING_MESSAGE),
    (b'{"message": "x", "@timestamp": "yesterday"}', Reason.BAD_TIMESTAMP),
    (b'{"message": "x", "@timestamp": "1970-01-01T00:00:01Z"}', Reason.ABSURD_TIMESTAMP),
    (b'{"message": "x", "@timestamp": "2999-01-01T00:00:00Z"}', Reason.ABSURD_TIMESTAMP),
    (b'{"message": "x", "a": ' + b'{"b": ' * 200 + b"1" + b"}" * 201, Reason.TOO_DEEP),
    (b'{"message": "x", "a": ' + b"[" * 5000 + b"]" * 5000 + b"}", Reason.TOO_DEEP),
    (b'{"message": "unterminated', Reason.INVALID_JSON),
    (b'{"message": "bad \xff utf8"}', Reason.INVALID_UTF8),
]


@pytest.mark.parametrize("raw,reason", HOSTILE)
def test_hostile_input_becomes_error_record_with_raw_bytes(raw, reason):
    fine = [b'{"message": "fine line"}', b'{"message": "another fine line"}']
    events, errors = decode([fine[0], raw, fine[1]], format="json")
    assert [events.text(i) for i in range(len(events))] == ["fine line", "another fine line"]
    assert [e.reason for e in errors] == [reason]
    assert errors[0].raw == raw and errors[0].offset == 1
    doc = errors[0].doc()
    assert doc["reason"] == reason.value and doc["bytes"] == len(raw)


def test_auto_format_reads_bracketed_plain_lines_as_text():
    events, errors = decode([b"[main] started", b'{"message": "json"}', b"{not json"])
    assert not errors
    assert [events.text(i) for i in range(3)] == ["[main] started", "json", "{not json"]


def test_ten_megabyte_line_is_truncated_flagged_and_kept_whole_in_dlq():
    raw = b"start " + b"x" * (10 * 1024 * 1024)
    t0 = time.perf_counter()
    events, errors = decode([raw], max_line_bytes=4096)
    assert time.perf_counter() - t0 < 5
    assert events.truncated.tolist() == [True] and len(events.message(0)) == 4096
    assert errors[0].reason == Reason.TOO_LONG and errors[0].kept and errors[0].raw == raw
    events, errors = Decoder(DecodeConfig(max_line_bytes=4096)).decode_block(raw + b"\n")
    assert events.truncated.tolist() == [True] and len(events.message(0)) == 4096
    assert errors[0].reason == Reason.TOO_LONG and errors[0].kept and errors[0].raw == raw


PLAIN_HOSTILE = [(b"\xff\xfe bad utf8", Reason.INVALID_UTF8), (b"nul\x00inside", Reason.NUL_BYTES),
                 (b"", Reason.EMPTY), (b"  \t", Reason.EMPTY),
                 (b"cut \xe2\x82", Reason.INVALID_UTF8)]


@pytest.mark.parametrize("raw,reason", PLAIN_HOSTILE)
def test_hostile_plain_lines_in_a_block(raw, reason):
    events, errors = Decoder().decode_block(b"first\n" + raw + b"\nlast\n", now=NOW)
    assert [events.text(i) for i in range(len(events))] == ["first", "last"]
    assert events.offset.tolist() == [0, 2]
    assert [(e.reason, e.raw, e.offset) for e in errors] == [(reason, raw, 1)]


def test_parse_header_year_rollover_for_syslog():
    jan = 1767225600.0 + 3600  # 2026-01-01 01:00
    ts, _, _ = parse_header("Dec 31 23:59:00 host x", jan)
    assert ts < jan


def test_an_access_log_line_has_its_own_time():
    """nginx and Apache access logs (Common/Combined Log Format) put the time after the
    client's address and user. It was not read: a replayed access log took one time for
    all its lines (three hours in one window). Read, and left in the text."""
    good = b'10.0.0.7 - bob [24/Nov/2025:10:00:00 +0100] "GET /items/5 HTTP/1.1" 200 512 "-" "curl"'
    json_line = b'{"message": "::1 - - [24/Nov/2025:10:00:01 -0000] \\"GET / HTTP/1.1\\" 200 5"}'
    impossible = b'10.0.0.7 - - [31/Nov/2025:10:00:00 +0000] "GET / HTTP/1.1" 200 5'
    other = b'10.0.0.7 - - [24/Nov/2025:10:00:00] "GET / HTTP/1.1" 200 5'
    for events, errors in paths(b"\n".join([good, json_line, impossible, other]) + b"\n"):
        assert events.ts[0] == 1_763_974_800.0 and events.text(0) == good.decode()  # 09:00Z
        assert events.ts[1] == 1_763_978_401.0
        assert [(e.reason.value, e.offset) for e in errors] == [("bad_timestamp", 2)]
        assert np.isnan(events.ts[2]) and events.text(2) == other.decode()


def test_a_klog_line_has_its_time_and_level():
    """Kubernetes components (and many Go services) log with klog: a level letter, then
    the month and day. It was not read: a replay took one time for all its lines."""
    data = (b"I1124 10:00:00.123456       1 controller.go:12] synced\n"
            b"E1124 10:00:01.5       1 reflector.go:138] watch failed\n"
            b"F1132 10:00:02 1 x.go:1] impossible day\n")
    for events, errors in paths(data):
        assert events.ts.tolist() == [1_763_978_400.123456, 1_763_978_401.5]
        assert [LEVELS[v] for v in events.level.tolist()] == ["info", "error"]
        assert events.text(0) == "1 controller.go:12] synced"
        assert [(e.reason.value, e.offset) for e in errors] == [("bad_timestamp", 2)]


# ---------------------------------------------------------------- every path, one outcome
def paths(data: bytes, **cfg):
    """(events, errors) of the three decoders of a block: records one by one, the block
    with the array paths, the block keeping the original events (general JSON path)."""
    config = DecodeConfig(**cfg)
    records = data.split(b"\n")
    if records and records[-1] == b"":
        records.pop()
    return [Decoder(config).decode(records, now=NOW),
            Decoder(config).decode_block(data, now=NOW),
            Decoder(config, keep_events=True).decode_block(data, now=NOW)]


def accounted(events, errors) -> list[int]:
    """Every line offset once: events, and the lines of the errors that were not kept."""
    lines = events.offset.tolist()
    for e in errors:
        if not e.kept:
            lines.extend(range(e.offset, e.offset + e.count))
    return sorted(lines)


def test_bom_is_stripped_before_json_detection_and_headers():
    bom = b"\xef\xbb\xbf"
    data = (bom + b'{"message": "m", "service": {"name": "api"}, "@timestamp": '
            b'"2025-11-24T10:00:00Z"}\n' + bom + b"2025-11-24T10:00:01Z ERROR plain\n")
    for events, errors in paths(data):
        assert not errors
        assert [events.service_name(i) for i in range(2)] == ["api", "default"]
        assert events.ts.tolist() == [1763978400.0, 1763978401.0]
        assert events.text(1) == "plain" and LEVELS[events.level[1]] == "error"


@pytest.mark.parametrize("fmt", ["auto", "json"])
@pytest.mark.parametrize("line", [
    b'{"message": "\\ud800", "service": "api"}',
    b'{"message": "x", "service": "api", "extra": "a\\udc00b"}',
    b'{"message": "x", "service": "api", "extra": ["\\ud83d x"]}',
])
def test_lone_surrogate_is_invalid_utf8_on_every_path(line, fmt):
    for events, errors in paths(b'{"message": "ok"}\n' + line + b"\n", format=fmt):
        assert [events.text(i) for i in range(len(events))] == ["ok"]
        assert [(e.reason, e.offset) for e in errors] == [(Reason.INVALID_UTF8, 1)]


@pytest.mark.parametrize("fmt", ["auto", "json"])
@pytest.mark.parametrize("value", [b"NaN", b"Infinity", b"-Infinity", b"[1, NaN]",
                                   b'{"a": -Infinity}', b"1e400", b"-2e308",
                                   b"1" + b"0" * 400])
def test_non_finite_numbers_are_dead_lettered_not_read_as_text(value, fmt):
    line = b'{"message": "x", "@timestamp": "2025-11-24T10:00:00Z", "v": ' + value + b"}"
    for events, errors in paths(line + b"\nplain after\n", format=fmt):
        assert [(e.reason, e.offset) for e in errors][:1] == [(Reason.NON_FINITE_NUMBER, 0)]
        if fmt == "auto":
            assert [events.text(i) for i in range(len(events))] == ["plain after"]


def test_large_finite_numbers_are_numbers():
    line = b'{"message": "x", "v": 1.7976931348623157e308, "w": 1e-400, "u": 18446744073709551616}'
    for events, errors in paths(line + b"\n"):
        assert not errors and events.text(0) == "x"


@pytest.mark.parametrize("line,reason", [
    (b'{"message": "unterminated', Reason.INVALID_JSON),
    (b'{"message": "x"} trailing', Reason.INVALID_JSON),
    (b'{"message": "x",}', Reason.INVALID_JSON),
    (b'  { "message": 01 }', Reason.INVALID_JSON),
    (b'{"message": "x", "a": [1,,2]}', Reason.INVALID_JSON),
    (b'{"message": "x", "a": "\\q"}', Reason.INVALID_JSON),
    (b'{}', Reason.MISSING_MESSAGE),
    (b'[1, 2, {"message": "in an array"}]', Reason.NOT_AN_OBJECT),
    (b"[" * 100 + b"]" * 100, Reason.NOT_AN_OBJECT),
])
def test_auto_format_dead_letters_broken_json_objects(line, reason):
    """A line that opens a JSON object is an event or an error, never plain text."""
    for events, errors in paths(b"plain before\n" + line + b"\n"):
        assert [events.text(i) for i in range(len(events))] == ["plain before"]
        assert [(e.reason, e.offset, e.raw) for e in errors] == [(reason, 1, line)]


@pytest.mark.parametrize("line", [b"{not json", b"{'a': 1} python dict", b"{x=1, y=2} java",
                                  b"[1, 2, 3] numbers", b"[main] started", b"{", b'"quoted"',
                                  b"[NaN]", b"42", b"[Sun Dec 04 04:47:44 2005] [notice] x"])
def test_auto_format_reads_lines_that_cannot_be_json_objects_as_text(line):
    for events, errors in paths(line + b'\n{"message": "json"}\n'):
        assert not errors
        assert [events.message(i) for i in range(2)] == [line.decode(), "json"]
        assert events.service.tolist() == [0, 0]


# ---------------------------------------------------------------- over-long lines
LIMIT = 256


def long_event(pad: int, first: dict, last: dict | None = None) -> bytes:
    return orjson.dumps({**first, "message": "boom " + "x" * pad, **(last or {})})


def test_long_json_keeps_service_time_and_level_and_truncates_the_message():
    line = long_event(10_000, {"@timestamp": "2025-11-24T10:00:00Z", "log": {"level": "error"},
                               "service": {"name": "payments"}, "host": {"name": "web-1"}})
    for cut in (len(line), LIMIT + 1):  # whole (Kafka), or as the file reader cuts it
        for events, errors in paths(line[:cut] + b"\n", max_line_bytes=LIMIT):
            assert len(events) == 1
            assert events.service_name(0) == "payments"
            assert events.ts.tolist() == [1763978400.0]
            assert LEVELS[events.level[0]] == "error"
            assert events.truncated.tolist() == [True]
            text = events.message(0)
            assert text.startswith("boom xxx") and len(text.encode()) <= LIMIT
            assert [(e.reason, e.kept, e.raw) for e in errors] == [
                (Reason.TOO_LONG, True, line[:cut])]


def test_long_json_fields_after_the_message_are_read_when_the_line_is_whole():
    line = long_event(5000, {}, {"service": "late-svc", "@timestamp": "2025-11-24T10:00:00Z"})
    events, errors = Decoder(DecodeConfig(max_line_bytes=LIMIT)).decode([line], now=NOW)
    assert events.service_name(0) == "late-svc" and events.ts.tolist() == [1763978400.0]
    # cut by the reader: those fields are unknown, the event has no time (NaN) and no service
    events, errors = Decoder(DecodeConfig(max_line_bytes=LIMIT)).decode_block(
        line[:LIMIT + 1], now=NOW)
    assert events.service_name(0) == "default" and np.isnan(events.ts[0])
    assert [(e.reason, e.kept) for e in errors] == [(Reason.TOO_LONG, True)]


def test_long_json_message_cut_inside_an_escape_or_a_character():
    msg = "é" * 300 + "\u2603" * 300 + "\n" * 300
    line = orjson.dumps({"service": "s", "message": msg})
    for cap in range(64, 80):
        events, errors = Decoder(DecodeConfig(max_line_bytes=cap)).decode([line], now=NOW)
        text = events.message(0)
        assert msg.startswith(text) and cap - 3 <= len(text.encode()) <= cap
    line = orjson.dumps({"service": "s", "message": "a" * 60 + "\\" * 300})
    for cap in range(64, 70):
        events, _ = Decoder(DecodeConfig(max_line_bytes=cap)).decode([line], now=NOW)
        assert events.message(0) == ("a" * 60 + "\\" * 300)[:cap]


@pytest.mark.parametrize("line,reason,whole,cut", [
    # the line as a Kafka record (whole), and as the file reader hands it (cut)
    (long_event(1000, {"a": 1})[:-1] + b', "v": NaN}', Reason.NON_FINITE_NUMBER, True, False),
    (b'{"message": "' + b"x" * 1000 + b'\\ud800"}', Reason.INVALID_UTF8, True, False),
    (b'{"message": "' + b"x" * 1000 + b'", , }', Reason.INVALID_JSON, True, False),
    (b'{"pad": "' + b"x" * 1000 + b'", "message": "m"}', Reason.TOO_LONG, False, True),
    (b'{"pad": "' + b"x" * 1000 + b'"}', Reason.MISSING_MESSAGE, True, False),
    (b'{"message": "m", "@timestamp": "2025-02-30T00:00:00Z", "p": "' + b"x" * 1000 + b'"}',
     Reason.BAD_TIMESTAMP, True, True),
    (b'{"message": "m", "a": ' + b"[" * 80 + b"]" * 80 + b', "p": "' + b"x" * 1000 + b'"}',
     Reason.TOO_DEEP, True, True),
    (b'{"message": "m", "service": {"name": "' + b"x" * 5000 + b'"}}', Reason.TOO_LONG, True,
     True),
])
def test_long_json_lines_that_cannot_be_kept(line, reason, whole, cut):
    """Each is one error record, not kept (a too_long one then says no message was read)."""
    for n in [len(line)] * whole + [LIMIT + 1] * cut:
        for events, errors in paths(b'{"message": "ok"}\n' + line[:n] + b"\n",
                                    max_line_bytes=LIMIT):
            if b'"service"' in line:  # a service name too big to read: the default one
                assert [events.service_name(i) for i in range(2)] == ["default"] * 2
                assert [(e.reason, e.kept) for e in errors] == [(Reason.TOO_LONG, True)]
                continue
            assert [events.text(i) for i in range(len(events))] == ["ok"]
            assert [(e.reason, e.kept, e.offset) for e in errors] == [(reason, False, 1)]


def test_long_json_decodes_in_memory_bounded_by_max_line_bytes():
    import tracemalloc
    line = long_event(50 << 20, {"service": "big", "@timestamp": "2025-11-24T10:00:00Z"})
    dec = Decoder(DecodeConfig(max_line_bytes=65536))
    dec.decode([line[:1000]], now=NOW)
    tracemalloc.start()
    events, errors = dec.decode([line], now=NOW)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert events.service_name(0) == "big" and errors[0].reason == Reason.TOO_LONG
    assert peak < 2 << 20  # the 50 MB line itself is the caller's


# ---------------------------------------------------------------- blank lines, line ends
def test_runs_of_blank_lines_are_one_record_each_with_their_count():
    data = b"a\n\n\n \t\nb\n\n\xef\xbb\xbf\nc\n\r\n"
    for events, errors in paths(data):
        assert [events.text(i) for i in range(len(events))] == ["a", "b", "c"]
        assert [(e.reason, e.offset, e.count) for e in errors] == [
            (Reason.EMPTY, 1, 3), (Reason.EMPTY, 5, 2), (Reason.EMPTY, 8, 1)]
        assert accounted(events, errors) == list(range(9))
        assert errors[0].doc()["lines"] == 3 and errors[2].doc()["lines"] == 1


def test_a_million_empty_lines_are_one_record_in_bounded_memory():
    import tracemalloc
    data = b"x\n" + b"\n" * 1_000_000 + b"y\n"
    dec = Decoder()
    dec.decode_block(b"x\n\ny\n", now=NOW)
    tracemalloc.start()
    events, errors = dec.decode_block(data, now=NOW)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert [(e.reason, e.offset, e.count) for e in errors] == [(Reason.EMPTY, 1, 1_000_000)]
    assert events.offset.tolist() == [0, 1_000_001]
    assert peak < 1 << 20


def test_line_ends_lf_crlf_and_lone_cr():
    data = b"a\r\nb\rc\r\n2025-11-24T10:00:00Z\rx\n"
    for events, errors in paths(data):
        assert not errors
        assert [events.message(i) for i in range(3)] == ["a", "b\rc", "2025-11-24T10:00:00Z\rx"]
        assert events.ts[2] == 1763978400.0 and events.text(2) == "x"  # CR is whitespace


def test_cr_only_file_is_one_line_flagged_with_a_hint():
    data = b"".join(b"2025-11-24T10:00:%02dZ line %d\r" % (i % 60, i) for i in range(1000))
    for events, errors in paths(data, max_line_bytes=4096):
        assert len(events) == 1 and events.truncated.tolist() == [True]
        assert [(e.reason, e.kept) for e in errors] == [(Reason.TOO_LONG, True)]
        assert "CR-only" in errors[0].detail


HOSTILE_LINES = [
    b'{"message": "fine", "service": "a"}', b"plain line", b"2025-11-24T10:00:00Z INFO x",
    b"", b"   ", b"\xef\xbb\xbf", b"\xff bad", b"nul\x00", b'{"message": NaN}',
    b'{"message": "\\ud800"}', b'{"message": "x"', b"[1, 2]", b"{not json",
    b'{"message": "m", "@timestamp": "2025-02-30T00:00:00Z"}', b"2025-13-01 10:00:00 x",
    b'{"message": "m", "@timestamp": "1970-01-01T00:00:00Z"}', b"\r",
    b'{"message": "' + b"long " * 100 + b'", "service": "b"}', b"long plain " * 60,
    b'{"message": "x", "level": "error", "@timestamp": 1764000000}',
]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(HOSTILE_LINES), max_size=40), st.sampled_from(["auto", "json",
                                                                              "plain"]))
def test_every_line_is_accounted_once_on_every_path(lines, fmt):
    data = b"".join(x + b"\n" for x in lines)
    results = paths(data, format=fmt, max_line_bytes=200)
    for events, errors in results:
        assert accounted(events, errors) == list(range(len(lines)))
        kept = [e.offset for e in errors if e.kept]
        assert set(kept) <= set(events.offset.tolist())
    a, b, c = ([(e.reason, e.offset, e.count, e.kept) for e in errs] for _, errs in results)
    assert a == b == c
