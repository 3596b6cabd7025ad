"""Strict timestamps: the numba header scanner (plaintext) against its reference (the regular
expressions in decode), on valid and impossible times in every format, and both against an
independent calendar (datetime) for what they accept."""
import calendar
import math
from datetime import datetime, timedelta, timezone

import numpy as np
import orjson
import pytest
from hypothesis import example, given, settings, strategies as st

from logml.config import DecodeConfig
from logml.decode import _ISO as ISO_GRAMMAR, Decoder, parse_header, parse_timestamp
from logml.errors import Reason
from logml.plaintext import BAD_TIME, BAD_TS, EMPTY, scan_iso, scan_lines

NOW = 1_764_000_000.0  # 2025-11-24
NOWS = [NOW, 1_767_229_200.0,  # 2026-01-01 01:00: December is last year
        1_736_899_200.0,  # 2025-01-15: Feb 29 is 2024's
        1_709_251_200.0]  # 2024-03-01, a leap year


def scanner(line: str, now: float):
    """(ts, level, cut) of the numba scanner, ("bad",) for an impossible time."""
    data = line.encode()
    buf = np.frombuffer(data, dtype=np.uint8)
    status, ts, level, cut, _ = scan_lines(buf, np.array([0]), np.array([len(data)]), now)
    if status[0] == BAD_TIME:
        return ("bad",)
    assert status[0] in (0, EMPTY)
    return (None if math.isnan(ts[0]) else float(ts[0]), int(level[0]), int(cut[0]))


def reference(line: str, now: float):
    ts, level, cut = parse_header(line, now)
    if ts == BAD_TS:
        return ("bad",)
    return (ts, level, len(line[:cut].encode()))


def iso_fast(text: str) -> float | None:
    data = text.encode()
    t = scan_iso(np.frombuffer(data, dtype=np.uint8), np.array([0]), np.array([len(data)]))[0]
    return None if math.isnan(t) else float(t)


# ---------------------------------------------------------------- generators
def _n(v: int, width: int) -> str:
    return str(v).zfill(width)


OFFSET = st.one_of(
    st.sampled_from(["", "Z", "z", "+14:00", "-12:00", "+05:30", "+14:01", "+99:99", "+1",
                     "+123", "-0000", "+01:0", "+01000"]),
    st.builds(lambda sign, hh, mm, colon: f"{sign}{_n(hh, 2)}{':' if colon else ''}{_n(mm, 2)}",
              st.sampled_from("+-"), st.integers(0, 16), st.sampled_from([0, 30, 45, 59, 60, 99]),
              st.booleans()))
FRACTION = st.one_of(st.just(""), st.builds(lambda sep, d: sep + d, st.sampled_from(".,"),
                                            st.text("0123456789", min_size=1, max_size=11)))
TAIL = st.sampled_from(["", " ", " INFO started", " [error] x", "0", "x", "] WARN: y",
                        " ERROR", " warning: disk", " INFOx", " INFO\u00e9", "5 tail", ":00",
                        "  DEBUG  spaced", "\tFATAL\tboom", " [Error]: b",
                        " [main] INFO c.e.App - up", " [pool-1-thread-3]  ERROR x",
                        " [a b] INFO x", " [] WARN x", " [main]INFO x", " [main] x INFO",
                        " [INFO] [main] ERROR x", " [m\u00e9] DEBUG y", " [main]",
                        " - app.db - WARNING - slow", " -  x  -  DEBUG", " - - - ERROR",
                        " - app - x - INFO", " -app - INFO", " - app -INFO", " - app - ",
                        " - INFO - x"])
HEAD = st.sampled_from(["", " ", "[", "\t", "  ["])
YEAR = st.one_of(st.integers(1, 9999).map(lambda y: _n(y, 4)),
                 st.sampled_from(["0000", "1970", "2024", "2025", "2100", "202", "20251"]))
ISO = st.builds(
    lambda h0, y, s1, mo, s2, d, t, hh, mi, ss, f, tz, tail: (
        f"{h0}{y}{s1}{mo}{s2}{d}{t}{hh}:{mi}:{ss}{f}{tz}{tail}"),
    HEAD, YEAR, st.sampled_from("-/"),
    st.integers(0, 13).map(str) | st.integers(0, 13).map(lambda v: _n(v, 2)),
    st.sampled_from("-/"),
    st.integers(0, 32).map(str) | st.integers(0, 32).map(lambda v: _n(v, 2)),
    st.sampled_from(["T", "t", " "]),
    st.integers(0, 25).map(str) | st.integers(0, 25).map(lambda v: _n(v, 2)),
    st.integers(0, 61).map(lambda v: _n(v, 2)) | st.sampled_from(["7", "123"]),
    st.integers(0, 61).map(lambda v: _n(v, 2)) | st.sampled_from(["7", "123"]),
    FRACTION, OFFSET, TAIL)
MONTH_WORD = st.sampled_from(["Jan", "Feb", "feb", "Mar", "Apr", "JUN", "Nov", "Dec", "Foo",
                              "Job"])
SYSLOG = st.builds(
    lambda h0, wd, mo, sp, d, hh, mi, ss, f, yr, tail: (
        f"{h0}{wd}{mo}{sp}{d} {hh}:{mi}:{ss}{f}{yr}{tail}"),
    HEAD, st.sampled_from(["", "Mon ", "sat  ", "Sun\t", "Mon", "Fri "]), MONTH_WORD,
    st.sampled_from([" ", "  ", "\t"]), st.integers(0, 32).map(str),
    st.integers(0, 25).map(lambda v: _n(v, 2)), st.integers(0, 61).map(lambda v: _n(v, 2)),
    st.integers(0, 61).map(lambda v: _n(v, 2)) | st.just("123"), FRACTION,
    st.sampled_from(["", " 2024", " 2025", " 1999", " 20251", "  2023"]), TAIL)
LOGCAT = st.builds(
    lambda h0, mo, d, hh, mi, ss, f, tail: f"{h0}{mo}-{d} {hh}:{mi}:{ss}{f}{tail}",
    HEAD, st.integers(0, 13).map(lambda v: _n(v, 2)), st.integers(0, 32).map(lambda v: _n(v, 2)),
    st.integers(0, 25).map(lambda v: _n(v, 2)), st.integers(0, 61).map(lambda v: _n(v, 2)),
    st.integers(0, 61).map(lambda v: _n(v, 2)), FRACTION, TAIL)
KLOG = st.builds(  # Kubernetes/glog: I1124 10:00:00.123456    1 file.go:12] msg
    lambda h0, lv, mo, d, sp, hh, mi, ss, f, tail: f"{h0}{lv}{mo}{d}{sp}{hh}:{mi}:{ss}{f}{tail}",
    HEAD, st.sampled_from(["I", "W", "E", "F", "D", "i"]),
    st.integers(0, 13).map(lambda v: _n(v, 2)) | st.just("1"),
    st.integers(0, 32).map(lambda v: _n(v, 2)) | st.just("123"),
    st.sampled_from([" ", "  ", "\t", ""]), st.integers(0, 25).map(lambda v: _n(v, 2)),
    st.integers(0, 61).map(lambda v: _n(v, 2)), st.integers(0, 61).map(lambda v: _n(v, 2)),
    FRACTION, st.sampled_from(["", "    1 main.go:12] x", " ERROR x", "] WARN y", "7"]))
CLF = st.builds(  # access logs: host ident user [DD/Mon/YYYY:HH:MM:SS +ZZZZ] "request" ...
    lambda h0, who, d, mo, y, hh, mi, ss, tz, tail: (
        f'{h0}{who}[{d}/{mo}/{y}:{hh}:{mi}:{ss} {tz}]{tail}'),
    st.sampled_from(["", " ", "\t"]),
    st.sampled_from(["10.0.0.1 - - ", "::1 - bob ", "h\u00e9 x y ", "a - - ", "a  - - ", "a - ",
                     "a\t- - ", "[x - - ", "a b c d ", "- - -"]),
    st.integers(0, 32).map(lambda v: _n(v, 2)) | st.sampled_from(["1", "123"]), MONTH_WORD,
    YEAR, st.integers(0, 25).map(lambda v: _n(v, 2)), st.integers(0, 61).map(lambda v: _n(v, 2)),
    st.integers(0, 61).map(lambda v: _n(v, 2)) | st.just("123"),
    st.sampled_from(["+0000", "-0700", "+1400", "+1401", "-1200", "+0060", "+000", "Z",
                     "+00000"]),
    st.sampled_from(["", ' "GET / HTTP/1.1" 200 12', "x", " ", "]"]))
RUBY = st.builds(  # Ruby's Logger: I, [2025-11-24T10:00:00.123456 #1234]  INFO -- : msg
    lambda h0, letter, iso, pid, tail: f"{h0}{letter}, [{iso}{pid}{tail}",
    st.sampled_from(["", " ", "\t"]), st.sampled_from(list("DIWEFAUXi")),
    ISO.map(lambda x: x.lstrip(" \t[").split(" ")[0]),
    st.sampled_from([" #1234]", " #1]", " #]", "#12]", " #12", " #12x]", "]", " #9] "]),
    st.sampled_from(["", "  INFO -- : Started GET", " ERROR -- app: boom", " ANY -- : x",
                     "x", " DEBUG", "  WARN -- : y"]))
LOGFMT = st.builds(  # logrus, Go kit, Prometheus: ts=2025-11-24T10:00:00.123Z level=info
    lambda h0, key, q1, iso, q2, tail: f"{h0}{key}={q1}{iso}{q2}{tail}",
    st.sampled_from(["", " ", "\t"]), st.sampled_from(["time", "ts", "t", "tim", "Ts", "tss",
                                                      "level", " t"]),
    st.sampled_from(['"', "", "'"]), ISO.map(lambda x: x.lstrip(" \t[").split(" ")[0]),
    st.sampled_from(['"', ""]),
    st.sampled_from(["", " level=info msg=x", ' level="WARN" msg=y', " caller=a.go:1 lvl=error",
                     " lvl=debugx level=error", "x level=info", " xlevel=info level=warn",
                     " level=", " level=[ERROR]", "\tlevel=Warning", " msg=\"level=error\"",
                     " level=info\u00e9", " l", " lvl=", " level=panic"]))
FUZZ = st.text(st.sampled_from(list("0123456789-/:.,TtZz+ []\tINFOWARNerrJanNovMonFeb\u00e9")),
               min_size=1, max_size=40)
CRI = st.builds(  # Kubernetes nodes: 2025-11-24T10:00:00.123456789Z stdout F <the app's line>
    lambda h0, iso, stream, tag, inner: f"{h0}{iso}{stream}{tag}{inner}",
    st.sampled_from(["", " ", "["]), ISO.map(lambda x: x.lstrip(" \t[").split(" ")[0]),
    st.sampled_from([" stdout ", " stderr ", " stdin ", "  stdout ", " stdout", "stdout "]),
    st.sampled_from(["F ", "P ", "X ", "F", "F  ", "f "]),
    st.one_of(ISO, SYSLOG, KLOG, CLF, RUBY, LOGFMT, FUZZ, st.sampled_from(
        ["", "INFO x", " [main] ERROR y", "plain text", "  WARN indented"])))
ANY = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
              min_size=1, max_size=40)
HEADERS = st.one_of(ISO, SYSLOG, LOGCAT, KLOG, CLF, RUBY, LOGFMT, CRI, FUZZ, ANY)


@settings(max_examples=3000, deadline=None)
@given(HEADERS, st.sampled_from(NOWS))
@example("2026-11-30T25:61:61Z x", NOW)
@example("2026-02-30T10:00:00Z x", NOW)
@example("2026-11-30T10:00:00+99:99 x", NOW)
@example("Feb 29 10:00:00 x", NOWS[2])
@example("Dec 31 23:59:59 x", NOWS[1])
@example("12-31 23:59:59.123 x", NOWS[1])
@example("[Mon Nov 24 10:00:00 2025] [error] x", NOW)
@example('10.0.0.1 - - [24/Nov/2025:10:00:00 +0100] "GET / HTTP/1.1" 200 5', NOW)
@example("E1124 10:00:00.123456    1 reflector.go:138] watch failed", NOW)
@example("I1324 10:00:00.1 x", NOW)
@example("W1124 10:00:00 WARNING twice", NOW)
@example("10.0.0.1 - - [30/Feb/2025:10:00:00 +0000] x", NOW)
@example("10.0.0.1 - - [24/Foo/2025:10:00:00 +0000] ERROR x", NOW)
@example("2025-11-24 10:00:00,123 [http-nio-8080-exec-1] ERROR c.e.Api - failed", NOW)
@example("2025-11-24 10:00:00,123 - app.worker - WARNING - slow", NOW)
@example("2025-11-24T10:00:00.123456789Z stdout F 2025-11-24 10:00:01,5 ERROR boom", NOW)
@example("2025-11-24T10:00:00.123456789Z stderr P WARN partial", NOW)
@example("2025-11-24T10:00:00.123456789Z stdout F no header", NOW)
@example("2025-11-24T10:00:00Z stdout F 2025-02-30 10:00:00 x", NOW)
@example("I, [2025-11-24T10:00:00.123456 #1234]  INFO -- : Started GET", NOW)
@example("E, [2025-11-24T10:00:00.123456 #1] UNKNOWN -- : x", NOW)
@example("W, [2025-02-30T10:00:00.1 #1]  WARN -- : x", NOW)
@example('time="2025-11-24T10:00:00Z" level=warning msg="disk low"', NOW)
@example("ts=2025-11-24T10:00:00.123Z caller=main.go:12 level=error msg=x", NOW)
@example("t=2025-11-24T10:00:00+01:00 lvl=info msg=y", NOW)
@example('time="2025-11-24T10:00:00Z level=info', NOW)
@example("ts=2025-02-30T10:00:00Z level=info", NOW)
def test_scanner_agrees_with_reference(line, now):
    assert scanner(line, now) == reference(line, now)


@settings(max_examples=2000, deadline=None)
@given(ISO | FUZZ)
def test_timestamp_fast_path_agrees_with_general_reader(text):
    """The numba @timestamp path (scan_iso) reads exactly the texts of the ISO grammar,
    with the general reader's value; an impossible time is refused by both; any other text
    is left to the general reader."""
    fast = iso_fast(text)
    if ISO_GRAMMAR.fullmatch(text):
        ts, _, _ = parse_header(text, NOW)
        assert fast == (None if ts == BAD_TS else ts)
        assert parse_timestamp(text) == fast
    else:
        assert fast is None


# ---------------------------------------------------------------- against the calendar
def _legal(y, mo, d, h, mi, s, off_min) -> bool:
    return (y >= 1 and 1 <= mo <= 12 and 1 <= d <= calendar.monthrange(y, mo)[1] and h < 24
            and mi < 60 and s <= 60 and abs(off_min) <= 14 * 60)


@settings(max_examples=2000, deadline=None)
@given(st.integers(1, 9999), st.integers(1, 12), st.integers(1, 31), st.integers(0, 24),
       st.integers(0, 60), st.integers(0, 61), st.integers(0, 999999),
       st.integers(-15 * 60, 15 * 60), st.sampled_from(["T", " "]))
def test_iso_times_read_as_the_calendar_says(y, mo, d, h, mi, s, us, off_min, sep):
    sign = "-" if off_min < 0 else "+"
    hh, mm = divmod(abs(off_min), 60)
    text = f"{y:04d}-{mo:02d}-{d:02d}{sep}{h:02d}:{mi:02d}:{s:02d}.{us:06d}{sign}{hh:02d}:{mm:02d}"
    got = scanner(text + " msg", NOW)
    if not _legal(y, mo, d, h, mi, s, off_min):
        assert got == ("bad",)
        assert parse_timestamp(text) is None
        return
    leap = s == 60  # POSIX time has none: the first second of the next minute
    dt = datetime(y, mo, d, h, mi, 59 if leap else s, us,
                  tzinfo=timezone(timedelta(minutes=off_min)))
    want = dt.timestamp() + (1 if leap else 0)
    assert got[0] == pytest.approx(want, abs=1e-6)
    assert got[2] == len(text) + 1  # header and the space after it
    assert parse_timestamp(text) == got[0]


@pytest.mark.parametrize("text,year,ok", [
    ("Feb 29 10:00:00", 2024, True), ("Feb 29 10:00:00 2024", 2024, True),
    ("Feb 29 10:00:00 2025", 2025, False), ("Feb 29 10:00:00 1900", 1900, False),
    ("Feb 29 10:00:00 2000", 2000, True), ("Apr 31 10:00:00 2025", 2025, False),
    ("Nov 24 24:00:00 2025", 2025, False), ("Nov 24 23:60:00 2025", 2025, False),
    ("Nov 0 10:00:00 2025", 2025, False), ("Jun 30 23:59:60 2025", 2025, True),
])
def test_syslog_dates_are_checked(text, year, ok):
    now = calendar.timegm((year, 12, 31, 0, 0, 0)) if year > 1990 else NOW
    got = scanner(text + " x", now)
    assert (got != ("bad",)) == ok
    if ok:
        mo = list(calendar.month_abbr).index(text[:3])
        d, hms = int(text.split()[1]), text.split()[2]
        h, mi, s = map(int, hms.split(":"))
        assert got[0] == calendar.timegm((year, mo, d, h, mi, s))


# ---------------------------------------------------------------- what a line becomes
def _both(data: bytes, **cfg):
    dec = Decoder(DecodeConfig(**cfg))
    for events, errors in (dec.decode(data.split(b"\n"), now=NOW),
                           dec.decode_block(data, now=NOW)):
        yield events, errors


@pytest.mark.parametrize("line", [b"2026-11-30T25:61:61Z x", b"2026-02-30T10:00:00Z x",
                                  b"2025-11-24T10:00:00+99:99 x", b"2025-13-01 10:00:00 x",
                                  b"Nov 31 10:00:00 host x", b"13-01 10:00:00.000 x"])
def test_impossible_header_time_is_dead_lettered_not_shifted(line):
    for events, errors in _both(b"first\n" + line + b"\nlast"):
        assert [events.text(i) for i in range(len(events))] == ["first", "last"]
        assert [(e.reason, e.offset, e.raw) for e in errors] == [
            (Reason.BAD_TIMESTAMP, 1, line)]


def test_impossible_header_in_a_json_message_is_dead_lettered():
    line = orjson.dumps({"message": "2025-02-30T10:00:00Z boom",
                         "@timestamp": "2025-11-24T10:00:00Z"})
    for events, errors in _both(b'{"message":"ok"}\n' + line):
        assert len(events) == 1 and [e.reason for e in errors] == [Reason.BAD_TIMESTAMP]


def test_header_time_far_ahead_is_absurd():
    for events, errors in _both(b"2100-01-01T00:00:00Z from the future\nok"):
        assert [e.reason for e in errors] == [Reason.ABSURD_TIMESTAMP]
        assert events.text(0) == "ok"


@pytest.mark.parametrize("stamp,want", [
    ("2025-11-24T10:00:00Z", 1763978400.0), ("2025-11-24T10:00:00.5+14:00", 1763928000.5),
    ("2025-11-24T23:59:60Z", 1764028800.0), ("2024-02-29T00:00:00Z", 1709164800.0),
    ("2025-02-29T00:00:00Z", None), ("2025-11-24T10:00:00+14:30", None),
    ("2025-11-24T10:00:00-12:60", None), ("2025-11-24T24:00:00Z", None),
    ("2025-11-24T10:00+15:00", None), ("2025-11-24", 1763942400.0)])
def test_json_timestamp_is_validated_on_both_paths(stamp, want):
    line = orjson.dumps({"message": "m", "@timestamp": stamp})
    for events, errors in _both(line):
        if want is None:
            assert len(events) == 0 and [e.reason for e in errors] == [Reason.BAD_TIMESTAMP]
        else:
            assert not errors and events.ts.tolist() == [want]
