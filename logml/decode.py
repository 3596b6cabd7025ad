"""Decode stage: raw records (bytes) to a columnar batch of events, or error records.

Accepts Filebeat 8 events (ECS), Logstash JSON events and plain text lines. For plain
lines, and for JSON messages with no level, a leading timestamp and level are recognised
in the common formats (ISO 8601, syslog, Apache, logcat) and cut off the text that is
templated, so a template never contains the clock. Hostile input never raises: it becomes
an ``ErrorRecord`` with a reason from ``errors.Reason`` and its raw bytes.
"""
from __future__ import annotations

import calendar
import math
import re
import time
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import orjson

from .config import DecodeConfig
from .errors import ErrorRecord, Reason
from .masking import pack_lines
from . import jsonscan
from .plaintext import (BAD_UTF8, EMPTY, LEVEL_CODE, LEVEL_OF, LEVEL_TABLE, NUL, scan_iso,
                        scan_lines, split_lines)

# level codes, ordered by severity
LEVELS = ["unknown", "trace", "debug", "info", "warn", "error", "fatal"]
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
            return None, LEVEL_OF[m2.group("lvl").upper()], m2.end()
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
    level = LEVEL_OF[lvl.strip("[]:").upper()] if lvl else 0
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

    def select(self, idx: np.ndarray) -> "EventBatch":
        """The events at positions idx, in that order (the buffer is shared)."""
        pick = lambda xs: None if xs is None else [xs[i] for i in idx.tolist()]  # noqa: E731
        return EventBatch(self.buf, self.msg_start[idx], self.text_start[idx], self.end[idx],
                          self.ts[idx], self.level[idx], self.service[idx], self.services,
                          self.offset[idx], self.truncated[idx], pick(self.host),
                          pick(self.event))

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
            cat((a.offset, b.offset)), cat((a.truncated, b.truncated)), hosts, events)
        return both.select(np.argsort(both.offset, kind="stable"))

    @classmethod
    def empty(cls) -> "EventBatch":
        z = np.zeros(0, dtype=np.int64)
        return cls(np.zeros(0, np.uint8), z, z, z, np.zeros(0), np.zeros(0, np.int8),
                   np.zeros(0, np.int32), [], z, np.zeros(0, bool), [], [])


class _Rows:
    """Per-record accumulator; ``batch`` then resolves headers and timestamps for all rows
    at once (numba scans) and turns them into an EventBatch.

    Event time: the timestamp at the head of the message when there is one (the
    application's own clock; a shipper's @timestamp is when it read a plain line), else
    the event's @timestamp, else arrival time. A bad @timestamp is an error either way."""

    def __init__(self):
        self.message, self.ts_raw, self.level, self.raw = [], [], [], []
        self.service, self.host, self.offset, self.event, self.truncated = [], [], [], [], []

    def add(self, message, ts_raw, level, service, host, offset, event, truncated, raw):
        self.message.append(message)
        self.ts_raw.append(ts_raw)  # None: from the header, else arrival time
        self.level.append(level)  # -1: from the header
        self.service.append(service)
        self.host.append(host)
        self.offset.append(offset)
        self.event.append(event)
        self.truncated.append(truncated)
        self.raw.append(raw)

    def batch(self, now: float, latest: float, source: str):
        if not self.message:
            return EventBatch.empty(), []
        buf, starts, ends = pack_lines(self.message)
        _, hts, hlevel, cut = scan_lines(buf, starts, ends, now)
        ts = np.where(np.isnan(hts), now, hts)
        given = [k for k, v in enumerate(self.ts_raw) if v is not None]
        errors, bad = [], np.zeros(len(ts), dtype=bool)
        if given:
            texts = [v for v in (self.ts_raw[k] for k in given) if isinstance(v, str)]
            iso = iter(scan_iso(*pack_lines(texts)).tolist()) if texts else iter(())
            for k in given:
                v = self.ts_raw[k]
                t = next(iso) if isinstance(v, str) else math.nan
                if t != t:  # not plain ISO 8601: the slow, general reader
                    t = parse_timestamp(v)
                if t is None:
                    errors.append(ErrorRecord(Reason.BAD_TIMESTAMP, f"unparseable @timestamp "
                                              f"{str(v)[:64]!r}", self.raw[k], source,
                                              self.offset[k]))
                    bad[k] = True
                elif not MIN_EPOCH <= t <= latest:
                    errors.append(ErrorRecord(Reason.ABSURD_TIMESTAMP, f"@timestamp "
                                              f"{str(v)[:64]!r} is before 1990 or in the "
                                              "future", self.raw[k], source, self.offset[k]))
                    bad[k] = True
                elif np.isnan(hts[k]):
                    ts[k] = t
        level = np.asarray(self.level, dtype=np.int8)
        level = np.where(level < 0, hlevel, level).astype(np.int8)
        keep = np.flatnonzero(~bad)
        names = sorted(set(self.service))
        index = {n: i for i, n in enumerate(names)}
        svc = np.fromiter((index[x] for x in self.service), dtype=np.int32,
                          count=len(self.service))
        host = [self.host[k] for k in keep.tolist()] if bad.any() else self.host
        event = [self.event[k] for k in keep.tolist()] if bad.any() else self.event
        return EventBatch(
            buf, starts[keep], (starts + cut)[keep], ends[keep], ts[keep], level[keep],
            svc[keep], names, np.asarray(self.offset, dtype=np.int64)[keep],
            np.asarray(self.truncated, dtype=bool)[keep], host, event), errors


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

    def __init__(self, config: DecodeConfig | None = None, service: str | None = None,
                 keep_events: bool = False):
        self.config = config or DecodeConfig()
        self.service = service or self.config.default_service
        # the original JSON events (and hosts) are kept only when documents need them
        self.keep_events = keep_events

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
                err = self._json(raw, body, off, source, out)
                if err is not None and fmt == "auto" and err.reason in _NOT_JSON:
                    err = self._plain(raw, body, off, source, out, truncated)
            else:
                err = self._plain(raw, body, off, source, out, truncated)
            if err is not None:
                errors.append(err)
        events, ts_errors = out.batch(now, latest, source)
        errors.extend(ts_errors)
        errors.sort(key=lambda e: e.offset)
        return events, errors

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
            if self.keep_events:
                records = [data[s:e] for s, e in zip(starts.tolist(), ends.tolist())]
                return self.decode(records, np.arange(first_offset, first_offset + n), source,
                                   now)
            return self._json_block(data, buf, starts, ends, first_offset, source, now)
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

    def _json_block(self, data, buf, starts, ends, first_offset, source, now):
        """JSON events by the numba scanner; what it leaves goes record by record."""
        cfg = self.config
        status, _, _, _ = scan_lines(buf, starts, ends, now)
        ok = (status == 0) & ((ends - starts) <= cfg.max_line_bytes)
        fast = np.flatnonzero(ok)
        jstatus, spans, mbuf, msg = jsonscan.scan(buf, starts[fast], ends[fast],
                                                  cfg.max_json_depth)
        take = jstatus == jsonscan.FAST
        spans, msg, fast = spans[take], msg[take], fast[take]
        # timestamps: plain ISO 8601 here; anything else, or absurd, takes the general path
        ts_s, ts_e = spans[:, jsonscan.F_TS, 0], spans[:, jsonscan.F_TS, 1]
        has_ts = ts_s >= 0
        ts = scan_iso(buf, np.where(has_ts, ts_s, 0), np.where(has_ts, ts_e, 0))
        latest = now + cfg.max_future_skew_s
        good = ~has_ts | ((ts >= MIN_EPOCH) & (ts <= latest))
        _, hts, hlevel, cut = scan_lines(mbuf, msg[:, 0], msg[:, 1], now)
        ts = np.where(~np.isnan(hts), hts, np.where(has_ts, ts, now))
        level = jsonscan.span_levels(buf, spans, LEVEL_TABLE, LEVEL_CODE)
        level = np.where(level < 0, hlevel, level).astype(np.int8)
        # services by the hash of their bytes: one string per distinct name
        svc_span = np.where((spans[:, jsonscan.F_SVC, 0] == -1)[:, None],
                            spans[:, jsonscan.F_SVCNAME], spans[:, jsonscan.F_SVC])
        h = jsonscan.span_hashes(buf, svc_span[:, None, :], 0)
        h[svc_span[:, 1] <= svc_span[:, 0]] = 0  # absent or empty: the default service
        uniq, first, inverse = np.unique(h, return_index=True, return_inverse=True)
        names = [self.service if u == 0 else
                 data[svc_span[f, 0]:svc_span[f, 1]].decode("utf-8", "replace")
                 for u, f in zip(uniq.tolist(), first.tolist())]
        keep = np.flatnonzero(good)
        fast_batch = EventBatch(
            mbuf, msg[:, 0], msg[:, 0] + cut, msg[:, 1], ts, level,
            inverse.astype(np.int32).reshape(-1), names, first_offset + fast,
            np.zeros(len(fast), dtype=bool), None, None).select(keep)
        rest = np.ones(len(starts), dtype=bool)
        rest[fast[keep]] = False
        slow = np.flatnonzero(rest)
        if len(slow) == 0:
            return fast_batch, []
        records = [data[starts[i]:ends[i]] for i in slow.tolist()]
        slow_batch, errors = self.decode(records, first_offset + slow, source, now)
        return EventBatch.merge(fast_batch, slow_batch), errors

    def _plain(self, raw, body, off, source, out, truncated):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as e:
            if not truncated or e.start < len(body) - 4:
                return ErrorRecord(Reason.INVALID_UTF8, str(e), raw, source, off)
            text = body[:e.start].decode("utf-8")  # a cut through a character
        out.add(text, None, -1, self.service, None, off, None, truncated, raw)
        return None

    def _json(self, raw, body, off, source, out):
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
        log = event.get("log")
        lvl = log.get("level") if isinstance(log, dict) else event.get("log.level")
        if lvl is None:
            lvl = event.get("level", event.get("loglevel", event.get("severity")))
        level = LEVEL_OF.get(str(lvl).upper(), 0) if lvl is not None else -1
        svc = event.get("service")
        if isinstance(svc, dict):
            svc = svc.get("name")
        elif not isinstance(svc, str):
            svc = event.get("service.name") or _get(event, "fields.service")
        host = event.get("host")
        if isinstance(host, dict):
            host = host.get("name")
        elif host is None:
            host = event.get("host.name")
        out.add(message, ts_raw, level, str(svc) if svc else self.service,
                str(host) if host is not None else None, off, event, False, raw)
        return None
