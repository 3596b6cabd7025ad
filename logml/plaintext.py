"""Plain-text lines at array speed: validation and header scan in one numba pass.

For each line of a block: is it empty, does it hold NUL, is it valid UTF-8, is it too long;
and where its header (timestamp, level) ends, with the timestamp as epoch seconds. The
regular expressions in ``decode.parse_header`` are the reference the tests compare with.
"""
from __future__ import annotations

import numba as nb
import numpy as np

OK, EMPTY, NUL, BAD_UTF8 = 0, 1, 2, 3
NO_TS, BAD_TS = -1e18, -2e18  # no timestamp here; a timestamp-shaped impossible date

_LEVEL_WORDS = ["TRACE", "DEBUG", "FINE", "INFO", "NOTICE", "WARN", "WARNING", "ERROR", "ERR",
                "SEVERE", "FATAL", "CRITICAL", "CRIT", "ALERT", "EMERG", "PANIC"]
_LEVEL_ONLY_WORDS = {"TRACE", "DEBUG", "INFO", "NOTICE", "WARN", "WARNING", "ERROR", "SEVERE",
                     "FATAL", "CRITICAL"}
LEVEL_OF = {"TRACE": 1, "DEBUG": 2, "FINE": 2, "INFO": 3, "NOTICE": 3, "WARN": 4,
             "WARNING": 4, "ERROR": 5, "ERR": 5, "SEVERE": 5, "FATAL": 6, "CRITICAL": 6,
             "CRIT": 6, "ALERT": 6, "EMERG": 6, "PANIC": 6}
LEVEL_TABLE = np.zeros((len(_LEVEL_WORDS), 8), dtype=np.uint8)
LEVEL_CODE = np.zeros(len(_LEVEL_WORDS), dtype=np.int8)
LEVEL_ONLY = np.zeros(len(_LEVEL_WORDS), dtype=np.bool_)
for _k, _w in enumerate(_LEVEL_WORDS):
    LEVEL_TABLE[_k, : len(_w)] = np.frombuffer(_w.encode(), dtype=np.uint8)
    LEVEL_CODE[_k] = LEVEL_OF[_w]
    LEVEL_ONLY[_k] = _w in _LEVEL_ONLY_WORDS
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
MONTH_TABLE = np.array([[ord(c) for c in m] for m in _MONTHS], dtype=np.uint8)
WEEKDAY_TABLE = np.array([[ord(c) for c in m] for m in _WEEKDAYS], dtype=np.uint8)


@nb.njit(cache=True, inline="always")
def _digit(c):
    return 48 <= c <= 57


@nb.njit(cache=True, inline="always")
def _space(c):
    return c == 32 or (9 <= c <= 13)


@nb.njit(cache=True)
def _word_char(c):
    return _digit(c) or (65 <= c <= 90) or (97 <= c <= 122) or c == 95 or c >= 128


@nb.njit(cache=True)
def _days_from_civil(y, m, d):
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


@nb.njit(cache=True)
def _num(b, p, e, lo, hi):
    """Digits at p: (value, end) when there are lo..hi of them (and no more), else (-1, p)."""
    v = 0
    q = p
    while q < e and _digit(b[q]) and q - p < hi:
        v = v * 10 + (b[q] - 48)
        q += 1
    if q - p < lo or (q < e and _digit(b[q]) and q - p == hi and hi < 9):
        return -1, p
    return v, q


@nb.njit(cache=True)
def _frac(b, p, e, maxd):
    """[.,]digits at p -> (fraction, end); (0.0, p) when absent."""
    if p + 1 < e and (b[p] == 46 or b[p] == 44) and _digit(b[p + 1]):
        q = p + 1
        v = 0.0
        scale = 1.0
        while q < e and _digit(b[q]) and q - p - 1 < maxd:
            scale /= 10.0
            v += (b[q] - 48) * scale
            q += 1
        if q < e and _digit(b[q]):  # more digits than the format allows
            return NO_TS, p
        return v, q
    return 0.0, p


@nb.njit(cache=True)
def _time(b, p, e, hour_min):
    """H:MM:SS at p -> (seconds, end) or (-1, p)."""
    h, q = _num(b, p, e, hour_min, 2)
    if h < 0 or q >= e or b[q] != 58:
        return -1, p
    mi, q = _num(b, q + 1, e, 2, 2)
    if mi < 0 or q >= e or b[q] != 58:
        return -1, p
    s, q = _num(b, q + 1, e, 2, 2)
    if s < 0:
        return -1, p
    return h * 3600 + mi * 60 + s, q


@nb.njit(cache=True)
def _three(b, p, e, table):
    """Index of a 3-letter name (any case) at p in table, or -1."""
    if p + 3 > e:
        return -1
    for k in range(table.shape[0]):
        if ((b[p] | 32) == table[k, 0] and (b[p + 1] | 32) == table[k, 1]
                and (b[p + 2] | 32) == table[k, 2]):
            return k
    return -1


@nb.njit(cache=True)
def _alpha(c):
    return (65 <= c <= 90) or (97 <= c <= 122)


@nb.njit(cache=True)
def _iso(b, p, e):
    y, q = _num(b, p, e, 4, 4)
    if y < 0 or q >= e or not (b[q] == 45 or b[q] == 47):
        return NO_TS, p
    mo, q = _num(b, q + 1, e, 1, 2)
    if mo < 0 or q >= e or not (b[q] == 45 or b[q] == 47):
        return NO_TS, p
    d, q = _num(b, q + 1, e, 1, 2)
    if d < 0 or q >= e or not (b[q] == 84 or b[q] == 116 or b[q] == 32):
        return NO_TS, p
    secs, q = _time(b, q + 1, e, 1)
    if secs < 0:
        return NO_TS, p
    frac, q = _frac(b, q, e, 9)
    if frac < 0:
        return NO_TS, p
    if mo < 1 or mo > 12 or y < 1:
        return BAD_TS, p  # a date that cannot be: no header at all
    ts = _days_from_civil(y, mo, d) * 86400.0 + secs + frac
    if q < e and (b[q] == 90 or b[q] == 122):
        q += 1
    elif q < e and (b[q] == 43 or b[q] == 45):
        hh, r = _num(b, q + 1, e, 2, 2)
        if hh >= 0:
            if r < e and b[r] == 58:
                r += 1
            mm, r2 = _num(b, r, e, 2, 2)
            if mm >= 0:
                sign = -1.0 if b[q] == 43 else 1.0
                ts += sign * (hh * 3600 + mm * 60)
                q = r2
    return ts, q


@nb.njit(cache=True)
def _syslog(b, p, e, year, now, months, weekdays):
    # optional weekday then whitespace, then the month; the regex tries both readings
    starts = np.empty(2, dtype=np.int64)
    n = 0
    if _three(b, p, e, weekdays) >= 0 and p + 3 < e and _space(b[p + 3]):
        q = p + 3
        while q < e and _space(b[q]):
            q += 1
        starts[n] = q
        n += 1
    starts[n] = p
    n += 1
    for k in range(n):
        q = starts[k]
        if q + 3 >= e or not (_alpha(b[q]) and _alpha(b[q + 1]) and _alpha(b[q + 2])):
            continue
        if not _space(b[q + 3]):
            continue
        mo = _three(b, q, e, months)
        r = q + 3
        while r < e and _space(b[r]):
            r += 1
        d, r = _num(b, r, e, 1, 2)
        if d < 0 or r >= e or not _space(b[r]):
            continue
        while r < e and _space(b[r]):
            r += 1
        secs, r = _time(b, r, e, 2)
        if secs < 0:
            continue
        frac, r = _frac(b, r, e, 6)
        if frac < 0:
            continue
        yr = -1
        r2 = r
        while r2 < e and _space(b[r2]):
            r2 += 1
        if r2 > r:
            yv, r3 = _num(b, r2, e, 4, 4)
            if yv >= 0:
                yr = yv
                r = r3
        if mo < 0:
            return BAD_TS, p
        y = yr if yr >= 0 else year
        if y < 1:
            return BAD_TS, p
        ts = _days_from_civil(y, mo + 1, d) * 86400.0 + secs + frac
        if yr < 0 and ts > now + 86400.0:
            ts = _days_from_civil(y - 1, mo + 1, d) * 86400.0 + secs + frac
        return ts, r
    return NO_TS, p


@nb.njit(cache=True)
def _logcat(b, p, e, year):
    mo, q = _num(b, p, e, 2, 2)
    if mo < 0 or q >= e or b[q] != 45:
        return NO_TS, p
    d, q = _num(b, q + 1, e, 2, 2)
    if d < 0 or q >= e or not _space(b[q]):
        return NO_TS, p
    while q < e and _space(b[q]):
        q += 1
    secs, q = _time(b, q, e, 2)
    if secs < 0:
        return NO_TS, p
    frac, q2 = _frac(b, q, e, 6)
    if frac < 0 or (q2 > q and b[q] != 46):
        frac, q2 = 0.0, q
    if mo < 1 or mo > 12:
        return BAD_TS, p
    return _days_from_civil(year, mo, d) * 86400.0 + secs + frac, q2


@nb.njit(cache=True)
def _level(b, p, e, table, codes, only, need_only, ignore_case):
    """[LEVEL]: at p -> (code, end); (0, p) when there is none."""
    q = p
    if q < e and b[q] == 91:
        q += 1
    for k in range(table.shape[0]):
        if need_only and not only[k]:
            continue
        n = 0
        while n < 8 and table[k, n] != 0:
            n += 1
        if q + n > e:
            continue
        ok = True
        for m in range(n):
            c = b[q + m]
            if ignore_case and 97 <= c <= 122:
                c -= 32
            if c != table[k, m]:
                ok = False
                break
        if not ok or (q + n < e and _word_char(b[q + n])):
            continue
        r = q + n
        if r < e and b[r] == 93:
            r += 1
        if r < e and b[r] == 58:
            r += 1
        return codes[k], r
    return 0, p


@nb.njit(cache=True, parallel=True)
def scan(buf, starts, ends, year, now, levels, codes, only, months, weekdays):
    """Per line: status, epoch (NaN when none), level code and header length."""
    n = starts.shape[0]
    status = np.zeros(n, dtype=np.int8)
    ts = np.full(n, np.nan)
    level = np.zeros(n, dtype=np.int8)
    cut = np.zeros(n, dtype=np.int64)
    for i in nb.prange(n):
        s = starts[i]
        e = ends[i]
        # validation: whitespace only, NUL, UTF-8
        blank = True
        k = s
        while k < e:
            c = buf[k]
            if c == 0:
                status[i] = NUL
                break
            if not _space(c):
                blank = False
            if c < 128:
                k += 1
                continue
            if 0xC2 <= c <= 0xDF:
                need = 1
            elif 0xE0 <= c <= 0xEF:
                need = 2
            elif 0xF0 <= c <= 0xF4:
                need = 3
            else:
                status[i] = BAD_UTF8
                break
            if k + need >= e:
                status[i] = BAD_UTF8
                break
            c1 = buf[k + 1]
            bad = c1 < 0x80 or c1 > 0xBF
            if c == 0xE0 and c1 < 0xA0:
                bad = True
            elif c == 0xED and c1 > 0x9F:
                bad = True
            elif c == 0xF0 and c1 < 0x90:
                bad = True
            elif c == 0xF4 and c1 > 0x8F:
                bad = True
            for m in range(2, need + 1):
                if buf[k + m] < 0x80 or buf[k + m] > 0xBF:
                    bad = True
            if bad:
                status[i] = BAD_UTF8
                break
            k += need + 1
        if status[i] != OK:
            continue
        if blank:
            status[i] = EMPTY
            continue
        # header: [timestamp] [level]
        p = s
        while p < e and _space(buf[p]):
            p += 1
        q = p + 1 if p < e and buf[p] == 91 else p
        t, r = _iso(buf, q, e)
        if t == NO_TS:
            t, r = _syslog(buf, q, e, year, now, months, weekdays)
        if t == NO_TS:
            t, r = _logcat(buf, q, e, year)
        if t == BAD_TS:
            continue  # looked like a timestamp but is none: the line has no header
        if t == NO_TS:
            code, r = _level(buf, p, e, levels, codes, only, True, False)
            if code > 0:
                level[i] = code
                while r < e and _space(buf[r]):
                    r += 1
                cut[i] = r - s
            continue
        ts[i] = t
        if r < e and buf[r] == 93:
            r += 1
        r2 = r
        while r2 < e and _space(buf[r2]):
            r2 += 1
        if r2 > r:
            code, r3 = _level(buf, r2, e, levels, codes, only, False, True)
            if code > 0:
                level[i] = code
                r = r3
        while r < e and _space(buf[r]):
            r += 1
        cut[i] = r - s
    return status, ts, level, cut


@nb.njit(cache=True)
def scan_iso(buf, starts, ends):
    """Epoch of each text that is exactly one ISO 8601 timestamp, else NaN."""
    n = starts.shape[0]
    out = np.full(n, np.nan)
    for i in range(n):
        t, r = _iso(buf, starts[i], ends[i])
        if t != NO_TS and t != BAD_TS and r == ends[i]:
            out[i] = t
    return out


def scan_lines(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, now: float):
    import time
    year = time.gmtime(now).tm_year
    return scan(buf, starts, ends, year, now, LEVEL_TABLE, LEVEL_CODE, LEVEL_ONLY,
                MONTH_TABLE, WEEKDAY_TABLE)


def split_lines(data: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Buffer and line bounds of a block of newline-terminated lines (CR LF too)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    nl = np.flatnonzero(buf == 10)
    starts = np.concatenate(([0], nl + 1))
    ends = np.concatenate((nl, [len(buf)]))
    if len(buf) == 0 or buf[-1] == 10:
        starts, ends = starts[:-1], ends[:-1]
    cr = (ends > starts) & (buf[np.maximum(ends - 1, 0)] == 13)
    ends = ends - cr
    return buf, starts.astype(np.int64), ends.astype(np.int64)
