"""Decode stage: raw records (bytes) to a columnar batch of events, or error records.

Accepts Filebeat 8 events (ECS), Logstash JSON events and plain text lines. For plain
lines, and for JSON messages with no level, a leading timestamp and level are recognised
in the common formats (ISO 8601, syslog, Apache, logcat, klog) and cut off the text that is
templated, so a template never contains the clock; the time of an access log line
(Common/Combined Log Format: nginx, Apache) is read where it stands, after the client's
address and user, and left in the text (masking takes it). Hostile input never raises:
every line becomes an event, or one ``ErrorRecord`` with a reason from ``errors.Reason``
and its raw bytes, or an event plus a kept ``too_long`` record.

- Lines: LF separates records and a CR before it is dropped; a lone CR stays inside the
  line (line numbers must agree with the reader's, which counts LF). A file with CR-only
  endings therefore reads as one over-long line, flagged ``too_long`` with a hint to
  convert it (``tr '\\r' '\\n'``). A UTF-8 byte order mark opening a line is dropped before
  anything else. A run of blank lines is one ``empty`` record with a line count.
- Format ``auto``: a line that opens a JSON object (``{`` then ``"`` or ``}``) can only be
  a JSON event. When it is not valid JSON it is dead-lettered (``invalid_json``,
  ``invalid_utf8`` for a lone surrogate escape, ``non_finite_number`` for NaN/Infinity,
  ``too_deep``), never read as plain text: its service and time would be guesses, and a
  broken object is not a log line. A line that is one whole JSON array is
  ``not_an_object``. Any other line, ``[main] ...`` and ``{x=1}`` included, is plain
  text. ``json``: every line is a JSON event; ``plain``: every line is text.
- Event time: the timestamp at the head of the message (the application's own clock; a
  shipper's @timestamp is when it read the line), else @timestamp (or ``timestamp``),
  else NaN: the decoder never invents a time, the pipeline fills NaN from the service's
  event clock. A timestamp-shaped header or @timestamp naming an impossible time (hour
  25, Feb 30, offset beyond +-14:00) is ``bad_timestamp``, not shifted; one before 1990
  or more than ``max_future_skew_s`` ahead of the wall clock is ``absurd_timestamp``.
  Second 60 (a leap second) is read as the next minute's first second. Syslog and logcat
  dates have no year: the current one, or the previous when that puts them more than a
  day ahead of now.
- Over-long lines (more than ``max_line_bytes``): a plain line keeps its first
  max_line_bytes; a JSON event keeps the fields found in one bounded pass over the line
  (service, time, level, host) and its message cut to max_line_bytes, so it stays in its
  service's timeline. Both are processed and also dead-lettered whole as ``too_long``.
"""
from __future__ import annotations

import calendar
import json
import math
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import orjson

from .config import MIN_EPOCH, DecodeConfig
from .errors import ErrorRecord, Reason
from .masking import pack_lines
from . import jsonscan
from .plaintext import (BAD_TIME, BAD_TS, BAD_UTF8, EMPTY, LEVEL_CODE, LEVEL_OF, LEVEL_TABLE,
                        MAX_OFFSET_MIN, NUL, OK, scan_iso, scan_lines, split_lines)

# level codes, ordered by severity
LEVELS = ["unknown", "trace", "debug", "info", "warn", "error", "fatal"]
BOM = b"\xef\xbb\xbf"

# ------------------------------------------------------------------ the header grammar
# The reference for the numba scanner in plaintext.py, which must agree with it on every
# input: ASCII classes only, and a number may never be followed by another digit.
_MONTHS = {m: i for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)}
_S = r"[\t-\r ]"
_WORD_END = r"(?![0-9A-Za-z_]|[^\x00-\x7f])"  # the scanner takes any non-ASCII as a letter
_ISO_RE = (
    r"(?P<y>[0-9]{4})[-/](?P<mo>[0-9]{1,2})[-/](?P<d>[0-9]{1,2})[Tt ](?P<H>[0-9]{1,2})"
    r":(?P<M>[0-9]{2}):(?P<S>[0-9]{2})(?![0-9])"
    r"(?:[.,](?P<f>[0-9]{1,9})(?![0-9])|(?![.,][0-9]))"
    r"(?P<tz>[Zz]|[+-][0-9]{2}:?[0-9]{2}(?![0-9]))?")
_SYS_RE = (
    rf"(?:(?i:Mon|Tue|Wed|Thu|Fri|Sat|Sun){_S}+)?(?P<smo>[A-Za-z]{{3}}){_S}+"
    rf"(?P<sd>[0-9]{{1,2}}){_S}+(?P<sH>[0-9]{{2}}):(?P<sM>[0-9]{{2}}):(?P<sS>[0-9]{{2}})"
    rf"(?![0-9])(?:[.,](?P<sf>[0-9]{{1,6}})(?![0-9])|(?![.,][0-9]))"
    rf"(?:{_S}+(?P<sy>[0-9]{{4}})(?![0-9]))?")
_CAT_RE = (
    rf"(?P<cmo>[0-9]{{2}})-(?P<cd>[0-9]{{2}}){_S}+(?P<cH>[0-9]{{2}}):(?P<cM>[0-9]{{2}})"
    rf":(?P<cS>[0-9]{{2}})(?![0-9])(?:\.(?P<cf>[0-9]{{1,6}})(?![0-9]))?")
_KLOG_RE = (  # Kubernetes/glog: a level letter, then MMDD
    rf"(?P<kl>[IWEF])(?P<kmo>[0-9]{{2}})(?P<kd>[0-9]{{2}}){_S}+(?P<kH>[0-9]{{2}})"
    rf":(?P<kM>[0-9]{{2}}):(?P<kS>[0-9]{{2}})(?![0-9])(?:\.(?P<kf>[0-9]{{1,6}})(?![0-9]))?")
_LEVEL_WORD = rf"\[?(?i:{'|'.join(LEVEL_OF)}){_WORD_END}\]?:?"
_AFTER_TIME = (  # an optional level word after the time, or after a [thread] or a
    # "- logger -" there (log4j's and Python's common patterns), then spaces
    rf"(?:{_S}+(?P<lvl>{_LEVEL_WORD})|{_S}+\[[^\]\t-\r ]+\]{_S}+(?P<lvl2>{_LEVEL_WORD})"
    rf"|{_S}+-{_S}+[^\t-\r ]+{_S}+-{_S}+(?P<lvl3>{_LEVEL_WORD}))?{_S}*")
_HEADER = re.compile(
    rf"{_S}*\[?(?:(?P<iso>{_ISO_RE})|(?P<sys>{_SYS_RE})|(?P<cat>{_CAT_RE})"
    rf"|(?P<klog>{_KLOG_RE}))\]?{_AFTER_TIME}", re.ASCII)
_CRI = re.compile(rf"{_S}*(?:{_ISO_RE}) (?:stdout|stderr) [FP] ", re.ASCII)  # Kubernetes nodes
_RUBY = re.compile(rf"{_S}*(?P<rl>[DIWEFAU]), \[(?:{_ISO_RE})", re.ASCII)  # Ruby's Logger
_RUBY_REST = re.compile(rf" #[0-9]+\]{_AFTER_TIME}", re.ASCII)
_CLF = re.compile(  # Common/Combined Log Format (access logs): read, not cut
    rf"{_S}*[^\t-\r ]+ [^\t-\r ]+ [^\t-\r ]+ \[(?P<d>[0-9]{{2}})/(?P<mo>[A-Za-z]{{3}})/"
    rf"(?P<y>[0-9]{{4}}):(?P<H>[0-9]{{2}}):(?P<M>[0-9]{{2}}):(?P<S>[0-9]{{2}}) "
    rf"(?P<tz>[+-][0-9]{{4}})\]", re.ASCII)
_LOGFMT = re.compile(  # logfmt's time key first: its value read and cut, quoted or not
    rf"{_S}*(?:time|ts|t)=(?P<q>\"?)(?:{_ISO_RE})", re.ASCII)
_SPACES = re.compile(rf"{_S}*", re.ASCII)
_KV_LEVEL = re.compile(rf"{_S}(?:level|lvl)=\"?(?P<lvl>{_LEVEL_WORD})?", re.ASCII)
_KLOG_LEVEL = {"I": LEVEL_OF["INFO"], "W": LEVEL_OF["WARN"], "E": LEVEL_OF["ERROR"],
               "F": LEVEL_OF["FATAL"]}
_RUBY_LEVEL = {**_KLOG_LEVEL, "D": LEVEL_OF["DEBUG"]}  # A(ny), U(nknown): none
_LEVEL_ONLY = re.compile(
    rf"{_S}*\[?(?P<lvl>TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|SEVERE|FATAL|CRITICAL)"
    rf"{_WORD_END}\]?:?{_S}*", re.ASCII)
_ISO = re.compile(_ISO_RE, re.ASCII)
_JSON_OBJECT = re.compile(rb'[ \t\r\n]*(?:\{[ \t\r\n]*["}]|\[)')  # maybe JSON: ask jsonscan


def _valid(y, mo, d, h, mi, s) -> bool:
    return (y >= 1 and 1 <= mo <= 12 and 1 <= d <= calendar.monthrange(y, mo)[1] and h <= 23
            and mi <= 59 and s <= 60)


def _fraction(f: str | None) -> float:
    return int(f) / 10 ** len(f) if f else 0.0


def _stamp(y: int | None, mo, d, h, mi, s, f: str | None, now: float) -> float:
    """Epoch of a header time, or BAD_TS; a date without a year (y None) takes now's year,
    or the one before when that would put it more than a day ahead of now."""
    frac = _fraction(f)
    if y is None:
        y = time.gmtime(now).tm_year
        if float(calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))) + frac > now + 86400.0:
            y -= 1
    if not _valid(y, mo, d, h, mi, s):
        return BAD_TS
    return float(calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))) + frac


def _offset(tz: str | None) -> int | None:
    """Seconds to add for UTC of Z, +HH:MM or +HHMM (0 when absent); None when out of
    range."""
    if not tz or tz in "Zz":
        return 0
    digits = tz[1:].replace(":", "")
    hh, mm = int(digits[:2]), int(digits[2:])
    if mm > 59 or hh * 60 + mm > MAX_OFFSET_MIN:
        return None
    return (-1 if tz[0] == "+" else 1) * (hh * 3600 + mm * 60)


def _iso_epoch(g: dict) -> float:
    """Epoch of a match of the ISO 8601 grammar, or BAD_TS for an impossible time."""
    off = _offset(g["tz"])
    if off is None:
        return BAD_TS
    y, mo, d = int(g["y"]), int(g["mo"]), int(g["d"])
    h, mi, s = int(g["H"]), int(g["M"]), int(g["S"])
    if not _valid(y, mo, d, h, mi, s):
        return BAD_TS
    return float(calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))) + _fraction(g["f"]) + off


def parse_header(text: str, now: float) -> tuple[float | None, int, int]:
    """(timestamp, level code, length of the header) of a log line. The timestamp is None
    when the line has none, and ``plaintext.BAD_TS`` when it has a timestamp's shape but
    names an impossible time (the line is then dead-lettered). A container runtime's line
    has its time, then the application's line: that one's header, and its time first."""
    if (read := _timed(_CRI, text)) is not None and read[1] != BAD_TS:
        m, outer = read
        ts, level, cut = _header(text[m.end():], now)
        return (outer if ts is None else ts), level, m.end() + cut
    return _header(text, now)


def _header(text: str, now: float) -> tuple[float | None, int, int]:
    m = _HEADER.match(text)
    ts = None
    if m is not None:
        g = m.groupdict()
        if g["iso"]:
            ts = _iso_epoch(g)
        elif g["sys"]:
            mo = _MONTHS.get(g["smo"].lower())
            if mo is not None:  # any other word is no timestamp
                ts = _stamp(int(g["sy"]) if g["sy"] else None, mo, int(g["sd"]), int(g["sH"]),
                            int(g["sM"]), int(g["sS"]), g["sf"], now)
        elif g["cat"]:
            mo = int(g["cmo"])
            ts = BAD_TS if not 1 <= mo <= 12 else _stamp(
                None, mo, int(g["cd"]), int(g["cH"]), int(g["cM"]), int(g["cS"]), g["cf"], now)
        else:
            mo = int(g["kmo"])
            ts = BAD_TS if not 1 <= mo <= 12 else _stamp(
                None, mo, int(g["kd"]), int(g["kH"]), int(g["kM"]), int(g["kS"]), g["kf"], now)
    if ts is None:
        read = _ruby(text) or _logfmt(text)
        if read is not None:
            return read
        ts = _clf_epoch(text)
        if ts is not None:
            return ts, 0, 0
        m2 = _LEVEL_ONLY.match(text)
        if m2:
            return None, LEVEL_OF[m2.group("lvl")], m2.end()
        return None, 0, 0
    if ts == BAD_TS:
        return BAD_TS, 0, 0
    return ts, _word_level(m, _KLOG_LEVEL.get(m["kl"], 0)), m.end()


def _word_level(m: re.Match, otherwise: int) -> int:
    """The level of the word after a header's time, or ``otherwise`` when there is none."""
    g = m.groupdict()
    lvl = g["lvl"] or g.get("lvl2") or g.get("lvl3")
    return LEVEL_OF[lvl.strip("[]:").upper()] if lvl else otherwise


def _timed(head: re.Pattern, text: str) -> tuple[re.Match, float] | None:
    """The match of a head that holds an ISO 8601 time, and that time (BAD_TS for an
    impossible one); None when the line does not start so."""
    m = head.match(text)
    return None if m is None else (m, _iso_epoch(m.groupdict()))


def _ruby(text: str) -> tuple[float, int, int] | None:
    """(timestamp, level, header length) of a Ruby Logger line (`I, [ISO #PID]  INFO --
    : msg`): the level word, else its letter; None for another line."""
    if (read := _timed(_RUBY, text)) is None:
        return None
    m, ts = read
    if ts == BAD_TS:
        return BAD_TS, 0, 0
    rest = _RUBY_REST.match(text, m.end())
    if rest is None:
        return None
    return ts, _word_level(rest, _RUBY_LEVEL.get(m["rl"], 0)), rest.end()


def _logfmt(text: str) -> tuple[float, int, int] | None:
    """(timestamp, level, header length) of a logfmt line that starts with its time
    (time=, ts= or t=), the level from its first level= or lvl= key; None for another
    line. The value must end the key: at a space or the line's end, after its quote."""
    if (read := _timed(_LOGFMT, text)) is None:
        return None
    m, ts = read
    if ts == BAD_TS:
        return BAD_TS, 0, 0
    end = m.end() + (1 if m["q"] else 0)
    if m["q"] and text[end - 1:end] != '"':
        return None
    spaces = _SPACES.match(text, end)
    if end < len(text) and spaces.end() == end:
        return None
    k = _KV_LEVEL.search(text, end)
    return ts, _word_level(k, 0) if k else 0, spaces.end()


def _clf_epoch(text: str) -> float | None:
    """The time of an access log line (Common/Combined Log Format), BAD_TS for an
    impossible one, None for another line."""
    m = _CLF.match(text)
    mo = _MONTHS.get(m["mo"].lower()) if m else None
    if mo is None:
        return None
    y, d, h, mi, s = int(m["y"]), int(m["d"]), int(m["H"]), int(m["M"]), int(m["S"])
    off = _offset(m["tz"])
    if off is None or not _valid(y, mo, d, h, mi, s):
        return BAD_TS
    return float(calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))) + off


def parse_timestamp(value) -> float | None:
    """An event's @timestamp: ISO 8601 text or epoch seconds/milliseconds; None when it
    cannot be read or names an impossible time. The header grammar first (exactly as the
    numba fast path reads it), then any other ISO 8601 form Python knows."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) / 1000.0 if value > 1e11 else float(value)
    if not isinstance(value, str):
        return None
    m = _ISO.fullmatch(value)
    if m:
        ts = _iso_epoch(m.groupdict())
        return None if ts == BAD_TS else ts
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    off = dt.utcoffset()
    if off is not None and abs(off) > timedelta(minutes=MAX_OFFSET_MIN):
        return None
    if dt.tzinfo is None:
        return calendar.timegm(dt.timetuple()) + dt.microsecond / 1e6
    return dt.timestamp()


class _NonFinite(Exception):
    pass


def _finite(text: str) -> float:
    v = float(text)
    if math.isinf(v):
        raise _NonFinite
    return v


def _no_constant(_):
    raise _NonFinite


def _non_finite(raw: bytes) -> bool:
    """Does this line (that orjson refused) hold NaN, Infinity or a number beyond float
    range? Python's json reads those and tells, on the rare failing line only."""
    try:
        json.loads(raw, parse_constant=_no_constant, parse_float=_finite, parse_int=_finite)
    except _NonFinite:
        return True
    except (ValueError, RecursionError):
        return False
    return False


def _json_error(raw: bytes, msg: str) -> Reason:
    low = msg.lower()
    if "recursion" in low or "depth limit" in low:
        return Reason.TOO_DEEP
    if "utf-8" in low or "surrogate" in low:
        return Reason.INVALID_UTF8
    if _non_finite(raw):
        return Reason.NON_FINITE_NUMBER
    return Reason.INVALID_JSON


_LONG_ERRORS = {jsonscan.BAD: Reason.INVALID_JSON, jsonscan.DEEP: Reason.TOO_DEEP,
                jsonscan.NON_FINITE: Reason.NON_FINITE_NUMBER,
                jsonscan.SURROGATE: Reason.INVALID_UTF8,
                jsonscan.NOT_OBJECT: Reason.NOT_AN_OBJECT}
_STATUS = {EMPTY: (Reason.EMPTY, "empty line"), NUL: (Reason.NUL_BYTES, "line holds NUL bytes"),
           BAD_UTF8: (Reason.INVALID_UTF8, "invalid UTF-8"),
           BAD_TIME: (Reason.BAD_TIMESTAMP, "impossible time at the head of the line")}


@dataclass
class EventBatch:
    """Decoded events as columns. Message bytes live in one buffer: the message is
    ``buf[msg_start:end]`` and the text the template stage sees is ``buf[text_start:end]``
    (the message without its header). Strings are made only when asked for."""
    buf: np.ndarray
    msg_start: np.ndarray
    text_start: np.ndarray
    end: np.ndarray
    ts: np.ndarray  # float64 epoch seconds; NaN: no usable time (the pipeline decides)
    level: np.ndarray  # int8 code into LEVELS
    service: np.ndarray  # int32 index into services
    services: list[str]
    offset: np.ndarray  # int64 position in the source
    truncated: np.ndarray  # bool
    host: list | None = None
    event: list | None = None  # the original JSON events
    # Decoder(keep_raw=True): the original bytes of the events the JSON fast path read,
    # ``raw[raw_span[i, 0]:raw_span[i, 1]]`` (-1: no such bytes, see ``event``/``host``)
    raw: np.ndarray | None = None
    raw_span: np.ndarray | None = None

    def __len__(self):
        return len(self.ts)

    def message(self, i: int) -> str:
        return self.buf[self.msg_start[i]:self.end[i]].tobytes().decode("utf-8", "replace")

    def text(self, i: int) -> str:
        return self.buf[self.text_start[i]:self.end[i]].tobytes().decode("utf-8", "replace")

    def line(self, i: int) -> str:
        """The input record, for a dead letter decided after decoding: a JSON event's bytes
        (``keep_raw``), else the event as parsed, else the line (a plain line is its
        message)."""
        if self.raw_span is not None and self.raw_span[i, 0] >= 0:
            a, b = self.raw_span[i].tolist()
            return self.raw[a:b].tobytes().decode("utf-8", "replace")
        if self.event is not None and self.event[i] is not None:
            return orjson.dumps(self.event[i]).decode()
        return self.message(i)

    def service_name(self, i: int) -> str:
        return self.services[self.service[i]]

    def select(self, idx: np.ndarray) -> "EventBatch":
        """The events at positions idx, in that order (the buffer is shared)."""
        pick = lambda xs: None if xs is None else [xs[i] for i in idx.tolist()]  # noqa: E731
        return EventBatch(self.buf, self.msg_start[idx], self.text_start[idx], self.end[idx],
                          self.ts[idx], self.level[idx], self.service[idx], self.services,
                          self.offset[idx], self.truncated[idx], pick(self.host),
                          pick(self.event), self.raw,
                          None if self.raw_span is None else self.raw_span[idx])

    @staticmethod
    def merge(a: "EventBatch", b: "EventBatch") -> "EventBatch":
        """Both batches in one, ordered by offset (input order)."""
        if len(a) == 0:
            return b
        if len(b) == 0:
            return a
        shift = len(a.buf)
        names = sorted(set(a.services) | set(b.services))
        index = {n: i for i, n in enumerate(names)}
        remap = lambda batch: np.array([index[n] for n in batch.services],  # noqa: E731
                                       dtype=np.int32)[batch.service]
        cat = np.concatenate
        hosts = None if a.host is None and b.host is None else \
            (a.host or [None] * len(a)) + (b.host or [None] * len(b))
        events = None if a.event is None and b.event is None else \
            (a.event or [None] * len(a)) + (b.event or [None] * len(b))
        both = EventBatch(
            cat((a.buf, b.buf)), cat((a.msg_start, b.msg_start + shift)),
            cat((a.text_start, b.text_start + shift)), cat((a.end, b.end + shift)),
            cat((a.ts, b.ts)), cat((a.level, b.level)), cat((remap(a), remap(b))), names,
            cat((a.offset, b.offset)), cat((a.truncated, b.truncated)), hosts, events,
            *_merge_raw(a, b))
        return both.select(np.argsort(both.offset, kind="stable"))

    @classmethod
    def empty(cls) -> "EventBatch":
        z = np.zeros(0, dtype=np.int64)
        return cls(np.zeros(0, np.uint8), z, z, z, np.zeros(0), np.zeros(0, np.int8),
                   np.zeros(0, np.int32), [], z, np.zeros(0, bool), [], [])


def _merge_raw(a: EventBatch, b: EventBatch):
    """(raw, raw_span) of two batches merged (a first)."""
    if a.raw_span is None and b.raw_span is None:
        return None, None
    none = lambda x: np.full((len(x), 2), -1, dtype=np.int64)  # noqa: E731
    sa = none(a) if a.raw_span is None else a.raw_span
    sb = none(b) if b.raw_span is None else b.raw_span
    raw = a.raw if a.raw is not None else b.raw
    if a.raw is not None and b.raw is not None and a.raw is not b.raw:
        sb = np.where(sb >= 0, sb + len(a.raw), sb)
        raw = np.concatenate((a.raw, b.raw))
    return raw, np.concatenate((sa, sb))


class _Rows:
    """Per-record accumulator; ``batch`` then resolves headers and timestamps for all rows
    at once (numba scans) and turns them into an EventBatch plus the rows' error records:
    at most one per row, and a kept ``too_long`` for an over-long row that survives."""

    def __init__(self):
        self.message, self.ts_raw, self.level, self.raw = [], [], [], []
        self.service, self.host, self.offset, self.event, self.too_long = [], [], [], [], []

    def add(self, message, ts_raw, level, service, host, offset, event, too_long, raw):
        self.message.append(message)
        self.ts_raw.append(ts_raw)  # the event's @timestamp value; None: none given
        self.level.append(level)  # -1: from the header
        self.service.append(service)
        self.host.append(host)
        self.offset.append(offset)
        self.event.append(event)
        self.too_long.append(too_long)  # detail of the kept too_long record, or None
        self.raw.append(raw)

    def batch(self, now: float, latest: float, source: str):
        if not self.message:
            return EventBatch.empty(), []
        buf, starts, ends = pack_lines(self.message)
        status, hts, hlevel, cut, _ = scan_lines(buf, starts, ends, now)
        ts = hts.copy()
        n = len(ts)
        errors: dict[int, ErrorRecord] = {}

        def fail(k, reason, detail):
            errors[k] = ErrorRecord(reason, detail, self.raw[k], source, self.offset[k])

        given = [k for k, v in enumerate(self.ts_raw) if v is not None]
        if given:
            texts = [v for v in (self.ts_raw[k] for k in given) if isinstance(v, str)]
            iso = iter(scan_iso(*pack_lines(texts)).tolist()) if texts else iter(())
            for k in given:
                v = self.ts_raw[k]
                t = next(iso) if isinstance(v, str) else math.nan
                if t != t:  # not the header grammar, or impossible: the general reader
                    t = parse_timestamp(v)
                if t is None:
                    fail(k, Reason.BAD_TIMESTAMP, f"unparseable @timestamp {str(v)[:64]!r}")
                elif not MIN_EPOCH <= t <= latest:
                    fail(k, Reason.ABSURD_TIMESTAMP, f"@timestamp {str(v)[:64]!r} is before "
                         "1990 or in the future")
                elif np.isnan(hts[k]):
                    ts[k] = t
        absurd = (hts < MIN_EPOCH) | (hts > latest)
        for k in np.flatnonzero((status == BAD_TIME) | absurd).tolist():
            if k not in errors:
                head = self.message[k][:48]
                fail(k, Reason.BAD_TIMESTAMP if status[k] == BAD_TIME else
                     Reason.ABSURD_TIMESTAMP, f"time at the head of the message {head!r} "
                     + ("is impossible" if status[k] == BAD_TIME else
                        "is before 1990 or in the future"))
        bad = np.zeros(n, dtype=bool)
        bad[list(errors)] = True
        out = list(errors.values())
        for k, detail in enumerate(self.too_long):
            if detail is not None and not bad[k]:
                out.append(ErrorRecord(Reason.TOO_LONG, detail, self.raw[k], source,
                                       self.offset[k], kept=True))
        level = np.asarray(self.level, dtype=np.int8)
        level = np.where(level < 0, hlevel, level).astype(np.int8)
        keep = np.flatnonzero(~bad)
        names = sorted(set(self.service))
        index = {x: i for i, x in enumerate(names)}
        svc = np.fromiter((index[x] for x in self.service), dtype=np.int32,
                          count=len(self.service))
        host = [self.host[k] for k in keep.tolist()] if errors else self.host
        event = [self.event[k] for k in keep.tolist()] if errors else self.event
        truncated = np.fromiter((x is not None for x in self.too_long), dtype=bool, count=n)
        return EventBatch(
            buf, starts[keep], (starts + cut)[keep], ends[keep], ts[keep], level[keep],
            svc[keep], names, np.asarray(self.offset, dtype=np.int64)[keep], truncated[keep],
            host, event), out


def _get(event: dict, dotted: str):
    """ECS field by dotted name, nested or flat."""
    if dotted in event:
        return event[dotted]
    node = event
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _depth(obj, limit: int) -> int:
    depth = 0
    stack = [(obj, 1)]
    while stack:
        node, d = stack.pop()
        if d > depth:
            depth = d
            if depth > limit:
                return depth
        if isinstance(node, dict):
            stack.extend((v, d + 1) for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend((v, d + 1) for v in node if isinstance(v, (dict, list)))
    return depth


class Decoder:
    """Turns raw records into an EventBatch plus error records; holds no state."""

    def __init__(self, config: DecodeConfig | None = None, service: str | None = None,
                 keep_events: bool = False, dead_letters: bool = True,
                 keep_raw: bool = False):
        self.config = config or DecodeConfig()
        self.service = service or self.config.default_service
        # the original JSON events (and hosts) are kept only when documents need them
        self.keep_events = keep_events
        # False: plain lines that fail are dropped without an error record each (a caller
        # that writes no dead letters, `logml parse` to CSV: a record costs a microsecond)
        self.dead_letters = dead_letters
        # documents need the originals, read fast: the JSON fast path stays on and keeps
        # each event's bytes (EventBatch.raw), the general path its dict (docs.LogDocs)
        self.keep_raw = keep_raw

    # ------------------------------------------------------------------ entry points
    def decode(self, records: list[bytes], offsets=None, source: str = "",
               now: float | None = None) -> tuple[EventBatch, list[ErrorRecord]]:
        """Records one by one (Kafka): each is one line, with or without its LF."""
        now = time.time() if now is None else now
        lines, offs, errors = [], [], []
        run = None  # the open run of blank records
        for k, raw in enumerate(records):
            off = int(offsets[k]) if offsets is not None else k
            if raw.endswith(b"\n"):
                raw = raw[:-1]
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            if raw.startswith(BOM):
                raw = raw[3:]
            if raw.strip():
                run = None
                lines.append(raw)
                offs.append(off)
            elif run is not None:
                run.count += 1
                run.detail = f"{run.count} empty lines"
            else:
                run = ErrorRecord(Reason.EMPTY, "empty line", raw, source, off)
                errors.append(run)
        events, more = self._records(lines, offs, source, now)
        errors.extend(more)
        errors.sort(key=lambda e: e.offset)
        return events, errors

    def decode_block(self, data: bytes, first_offset: int = 0, source: str = "",
                     now: float | None = None) -> tuple[EventBatch, list[ErrorRecord]]:
        """A block of LF-separated lines; line k has offset first_offset + k. Plain text is
        validated and its headers scanned for the whole block in one numba pass, JSON
        events by the numba field scanner; only what they leave goes record by record."""
        now = time.time() if now is None else now
        cfg = self.config
        buf, starts, ends, line, runs, _ = split_lines(data)
        errors = [ErrorRecord(Reason.EMPTY, "empty line" if c == 1 else f"{c} empty lines",
                              data[s:e], source, first_offset + first, count=c)
                  for first, c, s, e in runs.tolist()]
        if len(starts) == 0:
            return EventBatch.empty(), errors
        offs = first_offset + line
        status, ts, level, cut, tend = scan_lines(buf, starts, ends, now, cfg.max_line_bytes)
        if cfg.format == "plain":
            js = None
        elif cfg.format == "json":
            js = np.ones(len(starts), dtype=bool)
        else:
            js = jsonscan.json_shaped(buf, starts, ends, cfg.max_json_depth)
            js = js if js.any() else None
        batches = []
        if js is None:
            batches.append(self._plain_lines(data, starts, ends, offs, status, ts, level, cut,
                                             tend, now, source, errors))
        elif js.all():  # the usual block of JSON events: no copies
            batches.append(self._json_lines(data, buf, starts, ends, offs, status, now,
                                            source, errors))
        else:
            j = np.flatnonzero(js)
            batches.append(self._json_lines(data, buf, starts[j], ends[j], offs[j], status[j],
                                            now, source, errors))
            p = np.flatnonzero(~js)
            if len(p):
                batches.append(self._plain_lines(data, starts[p], ends[p], offs[p], status[p],
                                                 ts[p], level[p], cut[p], tend[p], now,
                                                 source, errors))
        events = batches[0] if len(batches) == 1 else EventBatch.merge(*batches)
        errors.sort(key=lambda e: e.offset)
        return events, errors

    # ------------------------------------------------------------------ array paths
    def _plain_lines(self, data, starts, ends, offs, status, ts, level, cut, tend, now,
                     source, errors) -> EventBatch:
        """Plain lines already scanned: events, and error records appended to errors."""
        cfg = self.config
        long_ = (ends - starts) > cfg.max_line_bytes
        absurd = (ts < MIN_EPOCH) | (ts > now + cfg.max_future_skew_s)
        bad = (status != OK) | absurd
        if self.dead_letters and (bad.any() or long_.any()):
            w = np.flatnonzero(bad | long_)
            # plain ints from whole columns: no numpy scalar per dead-lettered line
            for st, ab, off, a, e in zip(status[w].tolist(), absurd[w].tolist(),
                                         offs[w].tolist(), starts[w].tolist(), ends[w].tolist()):
                raw = data[a:e]
                if st != OK:
                    reason, detail = _STATUS[st]
                    if st == BAD_TIME:
                        detail += f": {raw[:48].decode('utf-8', 'replace')!r}"
                    errors.append(ErrorRecord(reason, detail, raw, source, off))
                elif ab:
                    errors.append(ErrorRecord(
                        Reason.ABSURD_TIMESTAMP, "time at the head of the line "
                        f"{raw[:48].decode('utf-8', 'replace')!r} is before 1990 or in the "
                        "future", raw, source, off))
                else:
                    errors.append(ErrorRecord(Reason.TOO_LONG, self._too_long(raw), raw,
                                              source, off, kept=True))
        buf = np.frombuffer(data, dtype=np.uint8)
        idx = np.flatnonzero(~bad) if bad.any() else slice(None)
        s = starts[idx]
        return EventBatch(buf, s, s + cut[idx], tend[idx], ts[idx], level[idx],
                          np.zeros(len(s), dtype=np.int32), [self.service], offs[idx],
                          long_[idx], None, None)

    def _json_lines(self, data, buf, starts, ends, offs, status, now, source,
                    errors) -> EventBatch:
        """JSON events by the numba scanner; what it leaves (and every event when the
        originals are kept) goes record by record."""
        cfg = self.config
        if self.keep_events:
            fast = np.zeros(0, dtype=np.int64)
        else:
            fast = np.flatnonzero((status == OK) & ((ends - starts) <= cfg.max_line_bytes))
        jstatus, spans, mbuf, msg = jsonscan.scan(buf, starts[fast], ends[fast],
                                                  cfg.max_json_depth)
        rows = np.flatnonzero(jstatus == jsonscan.FAST)
        if len(rows) < len(fast):
            msg, fast = msg[rows], fast[rows]
        ts_s, ts_e, level, sid, uh, ufirst = jsonscan.fields(buf, spans, rows)
        # timestamps: the header grammar here; anything else, or absurd, takes the general
        # path; so does a message whose header time is impossible or absurd
        has_ts = ts_e > 0  # an absent @timestamp has bounds (0, 0): no time
        ts = scan_iso(buf, ts_s, ts_e)
        latest = now + cfg.max_future_skew_s
        m0, m1 = np.ascontiguousarray(msg[:, 0]), np.ascontiguousarray(msg[:, 1])
        mstatus, hts, hlevel, cut, _ = scan_lines(mbuf, m0, m1, now)
        good = ((mstatus != BAD_TIME) & ~((hts < MIN_EPOCH) | (hts > latest))
                & (~has_ts | ((ts >= MIN_EPOCH) & (ts <= latest))))
        header = ~np.isnan(hts)
        if header.any():
            ts = np.where(header, hts, ts)
        level = np.where(level < 0, hlevel, level).astype(np.int8)
        # services by the hash of their bytes: one string per distinct name, in hash order
        by_hash = np.argsort(uh)
        inverse = np.empty(len(uh), dtype=np.int32)
        inverse[by_hash] = np.arange(len(uh), dtype=np.int32)
        names = []
        for u, r in zip(uh[by_hash].tolist(), ufirst[by_hash].tolist()):
            g = jsonscan.F_SVCNAME if spans[rows[r], jsonscan.F_SVC, 0] == -1 \
                else jsonscan.F_SVC
            a, b = spans[rows[r], g].tolist()
            names.append(self.service if u == 0 else data[a:b].decode("utf-8", "replace"))
        fast_batch = EventBatch(
            mbuf, m0, m0 + cut, m1, ts, level, inverse[sid], names,
            offs[fast], np.zeros(len(fast), dtype=bool), None, None,
            *((buf, np.stack((starts[fast], ends[fast]), 1)) if self.keep_raw else ()))
        keep = np.flatnonzero(good)
        if len(keep) < len(good):
            fast_batch = fast_batch.select(keep)
        rest = np.ones(len(starts), dtype=bool)
        rest[fast[keep]] = False
        slow = np.flatnonzero(rest)
        if len(slow) == 0:
            return fast_batch
        records = [data[starts[i]:ends[i]] for i in slow.tolist()]
        slow_batch, more = self._records(records, offs[slow].tolist(), source, now)
        errors.extend(more)
        return EventBatch.merge(fast_batch, slow_batch)

    # ------------------------------------------------------------------ record by record
    def _records(self, records: list[bytes], offsets: list[int], source: str, now: float):
        """Non-blank lines (LF, CR and BOM already gone), one at a time."""
        cfg = self.config
        out = _Rows()
        errors: list[ErrorRecord] = []
        limit = cfg.max_line_bytes
        auto = cfg.format == "auto"
        for raw, off in zip(records, offsets):
            nul = raw.find(b"\x00", 0, limit)
            if nul >= 0 and _utf8_ok(raw[:nul]):  # whichever comes first, as the scanner
                errors.append(ErrorRecord(Reason.NUL_BYTES, "line holds NUL bytes", raw,
                                          source, off))
                continue
            if cfg.format == "plain" or (auto and not self._is_json(raw)):
                err = self._plain(raw, off, source, out)
            elif len(raw) > limit:
                err = self._long_json(raw, off, source, out)
            else:
                err = self._json(raw, off, source, out)
            if err is not None:
                errors.append(err)
        events, more = out.batch(now, now + cfg.max_future_skew_s, source)
        errors.extend(more)
        return events, errors

    def _is_json(self, raw: bytes) -> bool:
        """As ``jsonscan.json_shaped`` reads a line for format auto."""
        m = _JSON_OBJECT.match(raw)
        if m is None:
            return False
        if raw[m.end() - 1] != 91:  # [
            return True
        buf = np.frombuffer(raw, dtype=np.uint8)
        return bool(jsonscan.json_shaped(buf, _ZERO, np.array([len(raw)]),
                                         self.config.max_json_depth)[0])

    def _too_long(self, raw: bytes) -> str:
        limit = self.config.max_line_bytes
        detail = f"{len(raw)} bytes, more than max_line_bytes ({limit}): truncated"
        if b"\r" in raw:
            detail += ("; it holds CR: a file with CR-only line ends is one line (LF "
                       "separates lines; convert with tr '\\r' '\\n')")
        return detail

    def _plain(self, raw, off, source, out):
        limit = self.config.max_line_bytes
        long_ = len(raw) > limit
        body = raw[:limit] if long_ else raw
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as e:
            if not (long_ and e.reason == "unexpected end of data"):
                return ErrorRecord(Reason.INVALID_UTF8, str(e), raw, source, off)
            text = body[:e.start].decode("utf-8")  # a cut through a character
        out.add(text, None, -1, self.service, None, off, None,
                self._too_long(raw) if long_ else None, raw)
        return None

    def _json(self, raw, off, source, out):
        try:
            event = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            return ErrorRecord(_json_error(raw, str(e)), str(e), raw, source, off)
        if not isinstance(event, dict):
            return ErrorRecord(Reason.NOT_AN_OBJECT, f"JSON {type(event).__name__}, not an "
                               "object", raw, source, off)
        limit = self.config.max_json_depth
        if raw.count(b"{") + raw.count(b"[") > limit and _depth(event, limit) > limit:
            return ErrorRecord(Reason.TOO_DEEP, f"nested deeper than {limit}", raw, source, off)
        return self._event(event, raw, off, source, out, None)

    def _long_json(self, raw, off, source, out):
        """An over-long JSON event: its top-level fields in one bounded pass (the reader may
        have cut the line); the message cut to max_line_bytes, other fields only if small."""
        cfg = self.config
        st, spans, msg, mstate = jsonscan.read_long(raw, cfg.max_line_bytes,
                                                    cfg.max_json_depth)
        if st < 0 and st != jsonscan.CUT:
            reason = _LONG_ERRORS[st]
            if st == jsonscan.NOT_OBJECT and raw.lstrip()[:1] != b"[":
                reason = Reason.INVALID_JSON
            return ErrorRecord(reason, f"{reason.value.replace('_', ' ')} in a line of "
                               f"{len(raw)} bytes", raw, source, off)
        if mstate in (0, 3):
            if mstate == 0 and st == jsonscan.CUT:
                return ErrorRecord(Reason.TOO_LONG, f"no message in the {len(raw)} bytes read "
                                   "of an over-long JSON line", raw, source, off)
            return ErrorRecord(Reason.MISSING_MESSAGE, "no string 'message' field", raw,
                               source, off)
        try:
            text = msg.tobytes().decode("utf-8")
        except UnicodeDecodeError as e:
            return ErrorRecord(Reason.INVALID_UTF8, f"message: {e}", raw, source, off)
        event = {}
        for f, key in enumerate(jsonscan.KEYS):
            s, e = spans[f].tolist()
            if f == jsonscan.F_MSG or s < 0 or e - s > _SMALL_FIELD:
                continue
            try:
                event[key] = orjson.loads(raw[s:e])
            except orjson.JSONDecodeError:
                pass
        event["message"] = text
        return self._event(event, raw, off, source, out, self._too_long(raw))

    def _event(self, event: dict, raw, off, source, out, too_long):
        # (the event as it came is what a per-line document keeps)
        f = event if "message" in event else _renamed(event)
        message = f.get("message")
        if not isinstance(message, str):
            return ErrorRecord(Reason.MISSING_MESSAGE, "no string 'message' field", raw,
                               source, off)
        if "\x00" in message:
            return ErrorRecord(Reason.NUL_BYTES, "message holds NUL", raw, source, off)
        ts_raw = f.get("@timestamp", f.get("timestamp"))
        log = f.get("log")
        lvl = log.get("level") if isinstance(log, dict) else f.get("log.level")
        if lvl is None:
            lvl = f.get("level", f.get("loglevel", f.get("severity")))
        level = LEVEL_OF.get(str(lvl).upper(), 0) if lvl is not None else -1
        svc = f.get("service")
        if isinstance(svc, dict):
            svc = svc.get("name")
        elif not isinstance(svc, str):
            svc = f.get("service.name") or _get(f, "fields.service")
        if isinstance(svc, bool) or not isinstance(svc, (str, int, float)):
            svc = None  # a list or an object names no service: the default one
        host = f.get("host")
        if isinstance(host, dict):
            host = host.get("name")
        elif host is None:
            host = f.get("host.name")
        out.add(message, ts_raw, level, str(svc) if svc else self.service,
                str(host) if host is not None else None, off, event, too_long, raw)
        return None


# journald's PRIORITY (syslog severities 0-7) as level words
_PRIORITY = {"0": "EMERG", "1": "ALERT", "2": "CRIT", "3": "ERR", "4": "WARNING", "5": "NOTICE",
             "6": "INFO", "7": "DEBUG"}


def _renamed(event: dict) -> dict:
    """The fields logml reads of an event that names its text otherwise: journald's
    export, Docker's json-file log; else the event as it is."""
    if "MESSAGE" in event:
        return _from_journald(event)
    if isinstance(event.get("log"), str):
        return _from_docker(event)
    return event


def _from_docker(d: dict) -> dict:
    """A line of Docker's json-file log (``{"log": "...\\n", "stream": ..., "time": ...}``):
    the line without its newline, the time Docker read it (the line's own time, when it
    starts with one, comes first as for any message)."""
    line = d["log"].removesuffix("\n").removesuffix("\r")
    return {"message": line, "@timestamp": d.get("time")}


def _from_journald(j: dict) -> dict:
    """An entry of journald's JSON export (``journalctl -o json``) as the fields logml
    reads: MESSAGE, __REALTIME_TIMESTAMP (microseconds), PRIORITY, the unit (else the
    syslog identifier, else the command) as the service, _HOSTNAME."""
    f = {"message": j.get("MESSAGE"), "level": _PRIORITY.get(str(j.get("PRIORITY")))}
    stamp = j.get("__REALTIME_TIMESTAMP")
    if isinstance(stamp, str) and stamp.isascii() and stamp.isdigit():
        f["@timestamp"] = int(stamp) / 1e6
    f["service"] = j.get("_SYSTEMD_UNIT") or j.get("SYSLOG_IDENTIFIER") or j.get("_COMM")
    f["host"] = j.get("_HOSTNAME")
    return f


_SMALL_FIELD = 4096  # an over-long event's fields other than message are read up to this
_ZERO = np.zeros(1, dtype=np.int64)


def _utf8_ok(b: bytes) -> bool:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
