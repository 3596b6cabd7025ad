import time

import numpy as np
import orjson
import pytest

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
