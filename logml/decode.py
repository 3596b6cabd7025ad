"""Decode stage: raw records (bytes) to a columnar batch of events, or error records.

Accepts Filebeat 8 events (ECS), Logstash JSON events and plain text lines. For plain
lines, and for JSON messages with no level, a leading timestamp and level are recognised
in the common formats (ISO 8601, syslog, Apache, logcat) and cut off the text that is
templated, so a template never contains the clock. Hostile input never raises: it becomes
an ``ErrorRecord`` with a reason from ``errors.Reason`` and its raw bytes.
"""
from __future__ import annotations

import calendar
import re
import time
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import orjson

from .config import DecodeConfig
from .errors import ErrorRecord, Reason
from .masking import pack_lines
from .plaintext import BAD_UTF8, EMPTY, NUL, scan_lines, split_lines

# level codes, ordered by severity
LEVELS = ["unknown", "trace", "debug", "info", "warn", "error", "fatal"]
_LEVEL_CODE = {
    "TRACE": 1, "DEBUG": 2, "FINE": 2, "INFO": 3, "NOTICE": 3, "WARN": 4, "WARNING": 4,
    "ERROR": 5, "ERR": 5, "SEVERE": 5, "FATAL": 6, "CRITICAL": 6, "CRIT": 6, "ALERT": 6,
    "EMERG": 6, "PANIC": 6,
}
MIN_EPOCH = 631152000.0  # 1990-01-01

_MONTHS = {m: i for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)}
_HEADER = re.compile(
    r"\s*\[?(?:"
    r"(?P<iso>(?P<y>\d{4})[-/](?P<mo>\d{1,2})[-/](?P<d>\d{1,2})[T ](?P<H>\d{1,2}):(?P<M>\d{2})"
    r":(?P<S>\d{2})(?:[.,](?P<f>\d{1,9}))?(?P<tz>Z|[+-]\d{2}:?\d{2})?)"
    r"|(?P<sys>(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)\s+)?(?P<smo>[A-Z][a-z]{2})\s+(?P<sd>\d{1,2})\s+"
    r"(?P<sH>\d{2}):(?P<sM>\d{2}):(?P<sS>\d{2})(?:[.,](?P<sf>\d{1,6}))?(?:\s+(?P<sy>\d{4}))?)"
    r"|(?P<cat>(?P<cmo>\d{2})-(?P<cd>\d{2})\s+(?P<cH>\d{2}):(?P<cM>\d{2}):(?P<cS>\d{2})"
    r"(?:\.(?P<cf>\d{1,6}))?)"
    r")\]?"
    r"(?:\s+(?P<lvl>\[?(?:TRACE|DEBUG|FINE|INFO|NOTICE|WARN|WARNING|ERROR|ERR|SEVERE|FATAL"
    r"|CRITICAL|CRIT|ALERT|EMERG|PANIC)\b\]?:?))?\s*",
    re.IGNORECASE,
)
_LEVEL_ONLY = re.compile(
    r"\s*\[?(?P<lvl>TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|SEVERE|FATAL|CRITICAL)\b\]?:?\s*")


def _epoch(y, mo, d, h, mi, s, frac: str | None, tz: str | None) -> float:
    t = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))
    if frac:
        t += int(frac) / 10 ** len(frac)
    if tz and tz != "Z":
        sign = -1 if tz[0] == "+" else 1
        digits = tz[1:].replace(":", "")
        t += sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return t


def parse_header(text: str, now: float) -> tuple[float | None, int, int]:
    """(timestamp or None, level code, length of the header) of a plain log line."""
    m = _HEADER.match(text)
    if m is None or m.lastindex is None:
        m2 = _LEVEL_ONLY.match(text)
        if m2:
            return None, _LEVEL_CODE[m2.group("lvl").upper()], m2.end()
        return None, 0, 0
    g = m.groupdict()
    try:
        if g["iso"]:
            ts = _epoch(int(g["y"]), int(g["mo"]), int(g["d"]), int(g["H"]), int(g["M"]),
                        int(g["S"]), g["f"], g["tz"])
        elif g["sys"]:
            mo = _MONTHS.get(g["smo"].lower())
            if mo is None:
                return None, 0, 0
            year = int(g["sy"]) if g["sy"] else time.gmtime(now).tm_year
            ts = _epoch(year, mo, int(g["sd"]), int(g["sH"]), int(g["sM"]), int(g["sS"]),
                        g["sf"], None)
            if not g["sy"] and ts > now + 86400:  # syslog has no year: December read in January
                ts = _epoch(year - 1, mo, int(g["sd"]), int(g["sH"]), int(g["sM"]),
                            int(g["sS"]), g["sf"], None)
        elif g["cat"]:
            ts = _epoch(time.gmtime(now).tm_year, int(g["cmo"]), int(g["cd"]), int(g["cH"]),
                        int(g["cM"]), int(g["cS"]), g["cf"], None)
        else:
            return None, 0, 0
    except (ValueError, OverflowError):
        return None, 0, 0
    lvl = g["lvl"]
    level = _LEVEL_CODE[lvl.strip("[]:").upper()] if lvl else 0
    return ts, level, m.end()


def parse_timestamp(value) -> float | None:
    """An event's @timestamp: ISO 8601 text or epoch seconds/milliseconds."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) / 1000.0 if value > 1e11 else float(value)
    if not isinstance(value, str):
        return None
    m = _HEADER.match(value)
    if m and m.group("iso") and m.end() == len(value):
        ts, _, _ = parse_header(value, 0.0)
        return ts
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    if dt.tzinfo is None:
        return calendar.timegm(dt.timetuple()) + dt.microsecond / 1e6
    return dt.timestamp()


@dataclass
class EventBatch:
    """Decoded events as columns. Message bytes live in one buffer: the message is
    ``buf[msg_start:end]`` and the text the template stage sees is ``buf[text_start:end]``
    (the message without its header). Strings are made only when asked for."""
    buf: np.ndarray
    msg_start: np.ndarray
    text_start: np.ndarray
    end: np.ndarray
    ts: np.ndarray  # float64 epoch seconds
    level: np.ndarray  # int8 code into LEVELS
    service: np.ndarray  # int32 index into services
    services: list[str]
    offset: np.ndarray  # int64 position in the source
    truncated: np.ndarray  # bool
    host: list | None = None
    event: list | None = None  # the original JSON events

    def __len__(self):
        return len(self.ts)

    def message(self, i: int) -> str:
        return self.buf[self.msg_start[i]:self.end[i]].tobytes().decode("utf-8", "replace")

    def text(self, i: int) -> str:
        return self.buf[self.text_start[i]:self.end[i]].tobytes().decode("utf-8", "replace")

    def service_name(self, i: int) -> str:
        return self.services[self.service[i]]

    @classmethod
    def empty(cls) -> "EventBatch":
        z = np.zeros(0, dtype=np.int64)
        return cls(np.zeros(0, np.uint8), z, z, z, np.zeros(0), np.zeros(0, np.int8),
                   np.zeros(0, np.int32), [], z, np.zeros(0, bool), [], [])


class _Rows:
    """Per-record accumulator for the JSON path, turned into an EventBatch at the end."""

    def __init__(self):
        self.message, self.cut, self.ts, self.level = [], [], [], []
        self.service, self.host, self.offset, self.event, self.truncated = [], [], [], [], []

    def add(self, message, cut, ts, level, service, host, offset, event, truncated):
        self.message.append(message)
        self.cut.append(cut)
        self.ts.append(ts)
        self.level.append(level)
        self.service.append(service)
        self.host.append(host)
        self.offset.append(offset)
        self.event.append(event)
        self.truncated.append(truncated)

    def batch(self) -> EventBatch:
        if not self.message:
            return EventBatch.empty()
        buf, starts, ends = pack_lines(self.message)
        # header cuts are counted in characters; headers are ASCII, so bytes agree
        cut = np.asarray(self.cut, dtype=np.int64)
        names = sorted(set(self.service))
        index = {n: i for i, n in enumerate(names)}
        return EventBatch(
            buf, starts, starts + cut, ends, np.asarray(self.ts, dtype=np.float64),
            np.asarray(self.level, dtype=np.int8),
            np.fromiter((index[x] for x in self.service), dtype=np.int32,
                        count=len(self.service)),
            names, np.asarray(self.offset, dtype=np.int64),
            np.asarray(self.truncated, dtype=bool), self.host, self.event)


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


# in auto mode a line that merely starts with a bracket is plain text
_NOT_JSON = (Reason.INVALID_JSON,)


class Decoder:
    """Turns raw records into an EventBatch plus error records; holds no state."""

    def __init__(self, config: DecodeConfig | None = None, service: str | None = None):
        self.config = config or DecodeConfig()
        self.service = service or self.config.default_service

    def decode(self, records: list[bytes], offsets=None, source: str = "",
               now: float | None = None) -> tuple[EventBatch, list[ErrorRecord]]:
        now = time.time() if now is None else now
        cfg = self.config
        out = _Rows()
        errors: list[ErrorRecord] = []
        max_bytes = cfg.max_line_bytes
        fmt = cfg.format
        latest = now + cfg.max_future_skew_s
        for k, raw in enumerate(records):
            off = int(offsets[k]) if offsets is not None else k
            if raw.endswith(b"\n"):
                raw = raw[:-1]
                if raw.endswith(b"\r"):
                    raw = raw[:-1]
            if not raw.strip():
                errors.append(ErrorRecord(Reason.EMPTY, "empty record", raw, source, off))
                continue
            if b"\x00" in raw:
                errors.append(ErrorRecord(Reason.NUL_BYTES, "record holds NUL bytes", raw,
                                          source, off))
                continue
            truncated = len(raw) > max_bytes
            body = raw
            if truncated:
                errors.append(ErrorRecord(Reason.TOO_LONG, f"{len(raw)} bytes, truncated to "
                                          f"{max_bytes}", raw, source, off, kept=True))
                body = raw[:max_bytes]
            is_json = fmt == "json" or (fmt == "auto" and body[:1] in (b"{", b"["))
            if is_json and not truncated:
                err = self._json(raw, body, off, source, out, now, latest)
                if err is not None and fmt == "auto" and err.reason in _NOT_JSON:
                    err = self._plain(raw, body, off, source, out, now, truncated)
            else:
                err = self._plain(raw, body, off, source, out, now, truncated)
            if err is not None:
                errors.append(err)
        return out.batch(), errors

    def decode_block(self, data: bytes, first_offset: int = 0, source: str = "",
                     now: float | None = None) -> tuple[EventBatch, list[ErrorRecord]]:
        """A block of newline-separated records. Plain text is validated and its headers
        scanned for the whole block in one numba pass; JSON goes record by record."""
        now = time.time() if now is None else now
        buf, starts, ends = split_lines(data)
        n = len(starts)
        if n == 0:
            return EventBatch.empty(), []
        firsts = buf[starts[ends > starts]] if self.config.format != "plain" else None
        if self.config.format == "json" or (
                firsts is not None and ((firsts == 123) | (firsts == 91)).any()):
            records = [data[s:e] for s, e in zip(starts.tolist(), ends.tolist())]
            return self.decode(records, np.arange(first_offset, first_offset + n), source, now)
        limit = self.config.max_line_bytes
        long_ = (ends - starts) > limit
        scan_ends = np.where(long_, starts + limit, ends)
        status, ts, level, cut = scan_lines(buf, starts, scan_ends, now)
        errors = []
        keep = status == 0
        if not keep.all() or long_.any():
            reasons = {EMPTY: Reason.EMPTY, NUL: Reason.NUL_BYTES, BAD_UTF8: Reason.INVALID_UTF8}
            for i in np.flatnonzero(~keep | long_).tolist():
                raw = data[starts[i]:ends[i]]
                if status[i] == BAD_UTF8 and long_[i]:
                    # a cut through a character at the limit is not an invalid line
                    try:
                        raw[:limit].decode("utf-8")
                    except UnicodeDecodeError as e:
                        if e.start >= limit - 4:
                            scan_ends[i] = starts[i] + e.start
                            status[i] = 0
                            keep[i] = True
                if status[i] != 0:
                    errors.append(ErrorRecord(reasons[int(status[i])], reasons[int(status[i])]
                                              .value.replace("_", " "), raw, source,
                                              first_offset + i))
                else:
                    errors.append(ErrorRecord(Reason.TOO_LONG, f"{len(raw)} bytes, truncated "
                                              f"to {limit}", raw, source, first_offset + i,
                                              kept=True))
        idx = np.flatnonzero(keep)
        ts = ts[idx]
        ts[np.isnan(ts)] = now
        return EventBatch(
            buf, starts[idx], starts[idx] + cut[idx], scan_ends[idx], ts, level[idx],
            np.zeros(len(idx), dtype=np.int32), [self.service], first_offset + idx,
            long_[idx], None, None), errors

    def _plain(self, raw, body, off, source, out, now, truncated):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as e:
            if not truncated or e.start < len(body) - 4:
                return ErrorRecord(Reason.INVALID_UTF8, str(e), raw, source, off)
            text = body[:e.start].decode("utf-8")  # a cut through a character
        ts, level, cut = parse_header(text, now)
        out.add(text, cut, now if ts is None else ts, level, self.service, None, off, None,
                truncated)
        return None

    def _json(self, raw, body, off, source, out, now, latest):
        try:
            event = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            msg = str(e)
            if "recursion" in msg or "depth limit" in msg:
                return ErrorRecord(Reason.TOO_DEEP, msg, raw, source, off)
            if "utf-8" in msg.lower() or "surrogates" in msg.lower():
                return ErrorRecord(Reason.INVALID_UTF8, msg, raw, source, off)
            return ErrorRecord(Reason.INVALID_JSON, msg, raw, source, off)
        if not isinstance(event, dict):
            return ErrorRecord(Reason.NOT_AN_OBJECT, f"JSON {type(event).__name__}, not an "
                               "object", raw, source, off)
        limit = self.config.max_json_depth
        if body.count(b"{") + body.count(b"[") > limit and _depth(event, limit) > limit:
            return ErrorRecord(Reason.TOO_DEEP, f"nested deeper than {limit}", raw, source, off)
        message = event.get("message")
        if not isinstance(message, str):
            return ErrorRecord(Reason.MISSING_MESSAGE, "no string 'message' field", raw,
                               source, off)
        if "\x00" in message:
            return ErrorRecord(Reason.NUL_BYTES, "message holds NUL", raw, source, off)
        ts_raw = event.get("@timestamp", event.get("timestamp"))
        hts, hlevel, cut = parse_header(message, now)
        if ts_raw is None:
            ts = now if hts is None else hts
        else:
            ts = parse_timestamp(ts_raw)
            if ts is None:
                return ErrorRecord(Reason.BAD_TIMESTAMP, f"unparseable @timestamp "
                                   f"{str(ts_raw)[:64]!r}", raw, source, off)
        if not (MIN_EPOCH <= ts <= latest):
            return ErrorRecord(Reason.ABSURD_TIMESTAMP, f"@timestamp {str(ts_raw)[:64]!r} is "
                               "before 1990 or in the future", raw, source, off)
        lvl = _get(event, "log.level")
        if lvl is None:
            lvl = event.get("level", event.get("loglevel", event.get("severity")))
        level = _LEVEL_CODE.get(str(lvl).upper(), 0) if lvl is not None else hlevel
        svc = _get(event, "service.name")
        if svc is None:
            svc = event.get("service") if isinstance(event.get("service"), str) else None
        if svc is None:
            svc = _get(event, "fields.service")
        host = _get(event, "host.name")
        if host is None and isinstance(event.get("host"), str):
            host = event["host"]
        out.add(message, cut, ts, level, str(svc) if svc else self.service,
                str(host) if host is not None else None, off, event, False)
        return None
