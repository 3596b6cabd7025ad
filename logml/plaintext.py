"""Plain-text lines at array speed: splitting, validation and header scan in numba passes.

For each line of a block: is it blank, does it hold NUL, is it valid UTF-8, where does its
header (timestamp, level) end, and the timestamp as epoch seconds. A header that has the
shape of a timestamp but names an impossible time (month 13, Feb 30, hour 24, minute 60,
second 61, offset beyond +-14:00) is ``BAD_TIME``: the line is dead-lettered rather than
read with a shifted clock. A leap second (``:60``) is read as the first second of the next
minute, as POSIX time has no leap seconds. The regular expressions in ``decode`` are the
reference the tests compare with, on every input.

Line ends: only LF separates records (CR LF loses its CR); a lone CR stays inside the line.
A UTF-8 byte order mark at the start of a line is dropped before anything else.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numba as nb
import numpy as np

from .jit import compiling

OK, EMPTY, NUL, BAD_UTF8, BAD_TIME = 0, 1, 2, 3, 4
NO_TS, BAD_TS = -1e18, -2e18  # no timestamp here; a timestamp-shaped impossible time
MAX_OFFSET_MIN = 14 * 60  # UTC offsets run from -12:00 to +14:00
PARALLEL_LINES = 4096  # per thread: below it a thread costs more than it saves

# the one signature of each kernel: text buffers and tables are read-only (bytes), positions
# contiguous int64 (scan_lines and scan_iso make them so), outputs contiguous
_I, _F = nb.int64, nb.float64
_BUF = nb.types.Array(nb.uint8, 1, "C", readonly=True)
_TABLE = nb.types.Array(nb.uint8, 2, "C", readonly=True)
_CODES = nb.types.Array(nb.int8, 1, "C", readonly=True)
_FLAGS = nb.types.Array(nb.boolean, 1, "C", readonly=True)
_POS = nb.types.Array(nb.int64, 1, "C", readonly=True)
_OUT8, _OUTF, _OUTI = nb.int8[::1], nb.float64[::1], nb.int64[::1]
_HELPER = {"cache": True, "no_cpython_wrapper": True, "no_cfunc_wrapper": True}  # jit-only

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


@nb.njit(inline="always")
def _digit(c):
    return 48 <= c <= 57


@nb.njit(inline="always")
def _space(c):
    return c == 32 or (9 <= c <= 13)


def _word_char(c):
    return _digit(c) or (65 <= c <= 90) or (97 <= c <= 122) or c == 95 or c >= 128


def _days_from_civil(y, m, d):
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


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


def _frac(b, p, e, maxd, comma):
    """[.,]digits at p -> (fraction, end); (0.0, p) when absent; (-1.0, p) when it has more
    than maxd digits. digits / 10**n, as the reference computes it, so both agree exactly."""
    if p + 1 < e and (b[p] == 46 or (comma and b[p] == 44)) and _digit(b[p + 1]):
        q = p + 1
        v = 0
        scale = 1.0
        while q < e and _digit(b[q]):
            if q - p - 1 == maxd:
                return -1.0, p
            v = v * 10 + (b[q] - 48)
            scale *= 10.0
            q += 1
        return v / scale, q
    return 0.0, p


def _time(b, p, e, hour_min):
    """H:MM:SS at p -> (h, m, s, end); h = -1 when the shape does not match."""
    h, q = _num(b, p, e, hour_min, 2)
    if h < 0 or q >= e or b[q] != 58:
        return -1, 0, 0, p
    mi, q = _num(b, q + 1, e, 2, 2)
    if mi < 0 or q >= e or b[q] != 58:
        return -1, 0, 0, p
    s, q = _num(b, q + 1, e, 2, 2)
    if s < 0:
        return -1, 0, 0, p
    return h, mi, s, q


def _days_in_month(y, m):
    if m == 2:
        return 29 if (y % 4 == 0 and y % 100 != 0) or y % 400 == 0 else 28
    if m == 4 or m == 6 or m == 9 or m == 11:
        return 30
    return 31


def _valid(y, mo, d, h, mi, s):
    """A time that exists: second 60 (a leap second) is allowed in any minute."""
    return (y >= 1 and 1 <= mo <= 12 and 1 <= d <= _days_in_month(y, mo) and h <= 23
            and mi <= 59 and s <= 60)


def _tz(b, q, e):
    """Z or [+-]HH[:]MM at q -> (seconds to add for UTC, end, 0 absent | 1 ok | 2 invalid)."""
    if q < e and (b[q] == 90 or b[q] == 122):
        return 0.0, q + 1, 1
    if q < e and (b[q] == 43 or b[q] == 45):
        r = q + 1
        if r + 2 <= e and _digit(b[r]) and _digit(b[r + 1]):
            hh = (b[r] - 48) * 10 + b[r + 1] - 48
            r += 2
            if r < e and b[r] == 58:
                r += 1
            if r + 2 <= e and _digit(b[r]) and _digit(b[r + 1]) and not (
                    r + 2 < e and _digit(b[r + 2])):
                mm = (b[r] - 48) * 10 + b[r + 1] - 48
                if mm > 59 or hh * 60 + mm > MAX_OFFSET_MIN:
                    return 0.0, q, 2
                sign = -1.0 if b[q] == 43 else 1.0
                return sign * (hh * 3600 + mm * 60), r + 2, 1
    return 0.0, q, 0


def _three(b, p, e, table):
    """Index of a 3-letter name (any case) at p in table, or -1."""
    if p + 3 > e:
        return -1
    for k in range(table.shape[0]):
        if ((b[p] | 32) == table[k, 0] and (b[p + 1] | 32) == table[k, 1]
                and (b[p + 2] | 32) == table[k, 2]):
            return k
    return -1


def _alpha(c):
    return (65 <= c <= 90) or (97 <= c <= 122)


def _iso(b, p, e):
    """YYYY-MM-DD[T ]HH:MM:SS[.f][Z|+HH:MM] at p -> (epoch | NO_TS | BAD_TS, end)."""
    y, q = _num(b, p, e, 4, 4)
    if y < 0 or q >= e or not (b[q] == 45 or b[q] == 47):
        return NO_TS, p
    mo, q = _num(b, q + 1, e, 1, 2)
    if mo < 0 or q >= e or not (b[q] == 45 or b[q] == 47):
        return NO_TS, p
    d, q = _num(b, q + 1, e, 1, 2)
    if d < 0 or q >= e or not (b[q] == 84 or b[q] == 116 or b[q] == 32):
        return NO_TS, p
    h, mi, s, q = _time(b, q + 1, e, 1)
    if h < 0:
        return NO_TS, p
    frac, q = _frac(b, q, e, 9, True)
    if frac < 0:
        return NO_TS, p
    off, q, tz = _tz(b, q, e)
    if tz == 2 or not _valid(y, mo, d, h, mi, s):
        return BAD_TS, p
    return _days_from_civil(y, mo, d) * 86400.0 + (h * 3600 + mi * 60 + s) + frac + off, q


def _no_year(mo, d, h, mi, s, frac, year, now):
    """Epoch of a date without a year: this year, or last year when that would put it more
    than a day ahead of now (December read in January); BAD_TS when it does not exist."""
    secs = h * 3600 + mi * 60 + s
    if _days_from_civil(year, mo, d) * 86400.0 + secs + frac > now + 86400.0:
        year -= 1
    if not _valid(year, mo, d, h, mi, s):
        return BAD_TS
    return _days_from_civil(year, mo, d) * 86400.0 + secs + frac


def _syslog(b, p, e, year, now, months, weekdays):
    """[Www ]Mmm D HH:MM:SS[.f][ YYYY] at p (syslog, Apache) -> (epoch | NO_TS | BAD_TS, end).
    A word that is not a month name is no timestamp."""
    # optional weekday then whitespace, then the month; the regex tries both readings
    after_weekday = -1
    if _three(b, p, e, weekdays) >= 0 and p + 3 < e and _space(b[p + 3]):
        after_weekday = p + 3
        while after_weekday < e and _space(b[after_weekday]):
            after_weekday += 1
    for k in range(2):
        q = after_weekday if k == 0 else p
        if q < 0:
            continue
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
        h, mi, s, r = _time(b, r, e, 2)
        if h < 0:
            continue
        frac, r = _frac(b, r, e, 6, True)
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
            return NO_TS, p
        if yr < 0:
            return _no_year(mo + 1, d, h, mi, s, frac, year, now), r
        if not _valid(yr, mo + 1, d, h, mi, s):
            return BAD_TS, p
        return _days_from_civil(yr, mo + 1, d) * 86400.0 + (h * 3600 + mi * 60 + s) + frac, r
    return NO_TS, p


def _md_time(b, q, e, mo, d, year, now):
    """HH:MM:SS[.f] at q of a month-day date without a year (logcat, klog) -> (epoch |
    NO_TS | BAD_TS, end)."""
    h, mi, s, q = _time(b, q, e, 2)
    if h < 0:
        return NO_TS, q
    frac, q2 = _frac(b, q, e, 6, False)
    if frac < 0:
        frac, q2 = 0.0, q
    if mo < 1 or mo > 12:
        return BAD_TS, q
    return _no_year(mo, d, h, mi, s, frac, year, now), q2


def _logcat(b, p, e, year, now):
    """MM-DD HH:MM:SS[.f] at p (Android logcat) -> (epoch | NO_TS | BAD_TS, end)."""
    mo, q = _num(b, p, e, 2, 2)
    if mo < 0 or q >= e or b[q] != 45:
        return NO_TS, p
    d, q = _num(b, q + 1, e, 2, 2)
    if d < 0 or q >= e or not _space(b[q]):
        return NO_TS, p
    while q < e and _space(b[q]):
        q += 1
    t, q = _md_time(b, q, e, mo, d, year, now)
    return t, (q if t != NO_TS and t != BAD_TS else p)


def _letter_level(c):
    """The level a line's first letter names (klog, Ruby's Logger): D I W E F; 0 else."""
    return 2 if c == 68 else 3 if c == 73 else 4 if c == 87 else 5 if c == 69 else (
        6 if c == 70 else 0)


def _klog(b, p, e, year, now):
    """LMMDD HH:MM:SS[.f] at p (klog: Kubernetes and many Go services; L one of I W E F)
    -> (epoch | NO_TS | BAD_TS, end, level code)."""
    code = _letter_level(b[p]) if p < e else 0
    if code < 3:  # no D in klog
        return NO_TS, p, 0
    if p + 5 >= e or not _space(b[p + 5]):
        return NO_TS, p, 0
    for k in range(1, 5):
        if not _digit(b[p + k]):
            return NO_TS, p, 0
    mo = (b[p + 1] - 48) * 10 + b[p + 2] - 48
    d = (b[p + 3] - 48) * 10 + b[p + 4] - 48
    q = p + 5
    while q < e and _space(b[q]):
        q += 1
    t, q = _md_time(b, q, e, mo, d, year, now)
    return (t, q, code) if t != NO_TS and t != BAD_TS else (t, p, 0)


def _clf(b, p, e, months):
    """HOST IDENT USER [DD/Mon/YYYY:HH:MM:SS +ZZZZ] at p (Common and Combined Log Format:
    nginx and Apache access logs, whose time is not at the head) -> epoch | NO_TS |
    BAD_TS. Read, not cut: the rest of the header is the request's."""
    q = p
    for _ in range(3):  # three fields, one space after each
        r = q
        while r < e and not _space(b[r]):
            r += 1
        if r == q or r >= e or b[r] != 32:
            return NO_TS
        q = r + 1
    if q >= e or b[q] != 91:
        return NO_TS
    d, q = _num(b, q + 1, e, 2, 2)
    if d < 0 or q + 4 >= e or b[q] != 47 or b[q + 4] != 47:
        return NO_TS
    if not (_alpha(b[q + 1]) and _alpha(b[q + 2]) and _alpha(b[q + 3])):
        return NO_TS
    mo = _three(b, q + 1, e, months)
    y, q = _num(b, q + 5, e, 4, 4)
    if y < 0 or q >= e or b[q] != 58:
        return NO_TS
    h, mi, s, q = _time(b, q + 1, e, 2)
    if h < 0 or q + 6 >= e or b[q] != 32 or b[q + 1] == 90 or b[q + 1] == 122:
        return NO_TS
    for k in range(2, 6):  # +HHMM, no colon
        if not _digit(b[q + k]):
            return NO_TS
    off, _, tz = _tz(b, q + 1, e)
    if tz == 0 or b[q + 6] != 93 or mo < 0:  # not a month name: no timestamp
        return NO_TS
    if tz == 2 or not _valid(y, mo + 1, d, h, mi, s):
        return BAD_TS
    return _days_from_civil(y, mo + 1, d) * 86400.0 + (h * 3600 + mi * 60 + s) + off


def _cri(b, p, e):
    """ISO 8601 time, stdout or stderr, F or P, each followed by one space, at p (the
    container runtime's log, /var/log/containers on Kubernetes nodes) -> (epoch | NO_TS,
    where the application's line starts)."""
    t, r = _iso(b, p, e)
    if t == NO_TS or t == BAD_TS or r + 10 > e or b[r] != 32 or b[r + 1] != 115:
        return NO_TS, p
    out = b[r + 2] == 116 and b[r + 3] == 100 and b[r + 4] == 111 and b[r + 5] == 117 and (
        b[r + 6] == 116)  # tdout
    err = b[r + 2] == 116 and b[r + 3] == 100 and b[r + 4] == 101 and b[r + 5] == 114 and (
        b[r + 6] == 114)  # tderr
    if not (out or err) or b[r + 7] != 32 or not (b[r + 8] == 70 or b[r + 8] == 80) or (
            b[r + 9] != 32):
        return NO_TS, p
    return t, r + 10


def _ruby(b, p, e):
    """L, [ISO 8601 #PID] at p (Ruby's Logger: Sidekiq, Puma, many Ruby services; L a level
    letter) -> (epoch | NO_TS | BAD_TS, end, level code of the letter)."""
    c = b[p] if p + 3 < e else 0
    code = _letter_level(c)
    if not (code > 0 or c == 65 or c == 85) or b[p + 1] != 44 or b[p + 2] != 32 or (
            b[p + 3] != 91):
        return NO_TS, p, 0
    t, r = _iso(b, p + 4, e)
    if t == NO_TS or t == BAD_TS:
        return t, p, 0
    if r + 2 >= e or b[r] != 32 or b[r + 1] != 35 or not _digit(b[r + 2]):
        return NO_TS, p, 0
    r += 2
    while r < e and _digit(b[r]):
        r += 1
    if r >= e or b[r] != 93:
        return NO_TS, p, 0
    return t, r, code


def _logfmt(b, p, e):
    """time=, ts= or t= and an ISO 8601 time, quoted or not, at p (logfmt: logrus, Go kit,
    Prometheus, Loki) -> (epoch | NO_TS | BAD_TS, end of the value)."""
    k = p
    while k < e and 97 <= b[k] <= 122:
        k += 1
    n = k - p
    key = n > 0 and b[p] == 116 and (n == 1 or (n == 2 and b[p + 1] == 115) or (
        n == 4 and b[p + 1] == 105 and b[p + 2] == 109 and b[p + 3] == 101))
    if not key or k >= e or b[k] != 61:
        return NO_TS, p
    q = k + 1
    quoted = q < e and b[q] == 34
    if quoted:
        q += 1
    t, r = _iso(b, q, e)
    if t == NO_TS or t == BAD_TS:
        return t, p
    if quoted:
        if r >= e or b[r] != 34:
            return NO_TS, p
        r += 1
    if r < e and not _space(b[r]):
        return NO_TS, p
    return t, r


def _kv_level(b, p, e, table, codes, only):
    """The level of the first level= or lvl= key after p (logfmt), quoted or not; 0 when
    there is none or its value is no level word."""
    for q in range(p, e - 4):
        if not _space(b[q]) or b[q + 1] != 108:  # a key starting with l
            continue
        if (q + 6 < e and b[q + 2] == 101 and b[q + 3] == 118 and b[q + 4] == 101
                and b[q + 5] == 108 and b[q + 6] == 61):
            v = q + 7
        elif b[q + 2] == 118 and b[q + 3] == 108 and b[q + 4] == 61:
            v = q + 5
        else:
            continue
        if v < e and b[v] == 34:
            v += 1
        code, _ = _level(b, v, e, table, codes, only, False, True)
        return code
    return 0


def _skip_spaces(b, p, e):
    """The end of the whitespace at p; p when there is none."""
    while p < e and _space(b[p]):
        p += 1
    return p


def _before_level(b, p, e):
    """Where a level word may stand past what commonly sits between the time and it:
    a [thread] (log4j's and logback's patterns) or "- logger -" (Python's logging
    cookbook), each followed by whitespace; p when neither is at p."""
    if p < e and b[p] == 91:
        k = p + 1
        while k < e and b[k] != 93 and not _space(b[k]):
            k += 1
        if k > p + 1 and k < e and b[k] == 93:
            q = _skip_spaces(b, k + 1, e)
            if q > k + 1:
                return q
        return p
    if p + 1 < e and b[p] == 45 and _space(b[p + 1]):
        k = _skip_spaces(b, p + 1, e)
        m = k
        while m < e and not _space(b[m]):
            m += 1
        q = _skip_spaces(b, m, e)
        if m > k and q > m and q + 1 < e and b[q] == 45 and _space(b[q + 1]):
            return _skip_spaces(b, q + 1, e)
    return p


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


@nb.njit(inline="always")
def _scan_line(i, buf, starts, ends, limit, year, now, levels, codes, only, months, weekdays,
               status, ts, level, cut, end):
    """Line i of ``scan_lines``, written into its output arrays."""
    s = starts[i]
    e = min(ends[i], s + limit)
    cropped = e < ends[i]
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
        have = min(need, e - k - 1)  # continuation bytes before the end
        bad = False
        if have >= 1:
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
        for m in range(2, have + 1):
            if buf[k + m] < 0x80 or buf[k + m] > 0xBF:
                bad = True
        if bad or (have < need and not cropped):
            status[i] = BAD_UTF8
            break
        if have < need:  # a character cut by the limit: the text ends before it
            e = k
            break
        k += need + 1
    end[i] = e
    if status[i] != OK:
        return
    if blank and not cropped:
        status[i] = EMPTY
        return
    # header: [timestamp] [level]
    p = s
    while p < e and _space(buf[p]):
        p += 1
    t, r = _cri(buf, p, e)
    if t != NO_TS:  # a container runtime's line: its time, unless the app's line has one
        ts[i] = t
        cut[i] = r - s
        p = _skip_spaces(buf, r, e)
    q = p + 1 if p < e and buf[p] == 91 else p
    t, r = _iso(buf, q, e)
    if t == NO_TS:
        t, r = _syslog(buf, q, e, year, now, months, weekdays)
    if t == NO_TS:
        t, r = _logcat(buf, q, e, year, now)
    if t == NO_TS:
        t, r, code = _klog(buf, q, e, year, now)
        if t != NO_TS and t != BAD_TS:
            level[i] = code  # its letter, unless a level word follows (below)
    if t == NO_TS:
        t, r, code = _ruby(buf, p, e)
        if t != NO_TS and t != BAD_TS:
            level[i] = code  # its letter, unless a level word follows (below)
    if t == NO_TS:
        t, r = _logfmt(buf, p, e)
        if t != NO_TS and t != BAD_TS:  # the time cut; the level from its key, anywhere
            ts[i] = t
            level[i] = _kv_level(buf, r, e, levels, codes, only)
            cut[i] = _skip_spaces(buf, r, e) - s
            return
    if t == NO_TS:
        t = _clf(buf, p, e, months)
        if t != NO_TS and t != BAD_TS:  # an access log line: its time, the line whole
            ts[i] = t
            return
    if t == BAD_TS:
        status[i] = BAD_TIME
        return
    if t == NO_TS:
        code, r = _level(buf, p, e, levels, codes, only, True, False)
        if code > 0:
            level[i] = code
            while r < e and _space(buf[r]):
                r += 1
            cut[i] = r - s
        return
    ts[i] = t
    if r < e and buf[r] == 93:
        r += 1
    r2 = r
    while r2 < e and _space(buf[r2]):
        r2 += 1
    if r2 > r:
        code, r3 = _level(buf, r2, e, levels, codes, only, False, True)
        if code == 0:
            r4 = _before_level(buf, r2, e)
            if r4 > r2:
                code, r3 = _level(buf, r4, e, levels, codes, only, False, True)
        if code > 0:
            level[i] = code
            r = r3
    while r < e and _space(buf[r]):
        r += 1
    cut[i] = r - s


def _scan(buf, starts, ends, limit, year, now, levels, codes, only, months, weekdays,
          status, ts, level, cut, end):
    for i in range(starts.shape[0]):
        _scan_line(i, buf, starts, ends, limit, year, now, levels, codes, only, months,
                   weekdays, status, ts, level, cut, end)


def _scan_iso(buf, starts, ends):
    n = starts.shape[0]
    out = np.full(n, np.nan)
    for i in range(n):
        t, r = _iso(buf, starts[i], ends[i])
        if t != NO_TS and t != BAD_TS and r == ends[i]:
            out[i] = t
    return out


def scan_lines(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, now: float,
               limit: int = 1 << 62):
    """Per line: status, epoch (NaN when none), level code, header length and the end of
    the text kept. A line longer than ``limit`` is read up to its limit only, cut back to a
    character boundary when the limit falls inside one. ``now`` gives the year of dates
    that have none."""
    n = starts.shape[0]
    starts, ends = _positions(starts), _positions(ends)
    out = (np.zeros(n, dtype=np.int8), np.full(n, np.nan), np.zeros(n, dtype=np.int8),
           np.zeros(n, dtype=np.int64), np.empty(n, dtype=np.int64))
    tables = (LEVEL_TABLE, LEVEL_CODE, LEVEL_ONLY, MONTH_TABLE, WEEKDAY_TABLE)
    year = time.gmtime(now).tm_year

    def part(a, b):
        _scan(buf, starts[a:b], ends[a:b], limit, year, now, *tables, *(o[a:b] for o in out))
    # threads pay off on big blocks only; waking them costs milliseconds on a busy machine.
    # Threads over one nogil kernel, not a parallel loop: that compiles a second time, slowly
    parts = min(nb.get_num_threads(), n // PARALLEL_LINES)
    if parts < 2:
        part(0, n)
        return out
    cuts = np.linspace(0, n, parts + 1).astype(np.int64).tolist()
    with ThreadPoolExecutor(parts - 1) as pool:
        others = [pool.submit(part, cuts[k], cuts[k + 1]) for k in range(1, parts)]
        part(cuts[0], cuts[1])
        for f in others:
            f.result()
    return out


def _positions(a: np.ndarray) -> np.ndarray:
    """Line positions as the kernels take them (contiguous int64): one compiled version."""
    return np.ascontiguousarray(a, dtype=np.int64)


def _grown(a, m):
    """a copy of a's first m entries in an array twice as long (a loop, not a slice
    assignment: that one compiles its shape-mismatch error message, seconds on a fresh
    install)."""
    out = np.empty(2 * m, dtype=np.int64)
    for k in range(m):
        out[k] = a[k]
    return out


def _split(buf):
    starts = np.empty(buf.shape[0] // 128 + 16, dtype=np.int64)  # grows when lines are short
    ends = np.empty_like(starts)
    lines = np.empty_like(starts)
    runs = np.empty((16, 4), dtype=np.int64)
    m = 0
    r = 0
    ln = 0
    p = 0
    n = buf.shape[0]
    while p < n:
        q = p
        while q < n and buf[q] != 10:
            q += 1
        s = p
        e = q
        if e > s and buf[e - 1] == 13:
            e -= 1
        if e - s >= 3 and buf[s] == 0xEF and buf[s + 1] == 0xBB and buf[s + 2] == 0xBF:
            s += 3
        k = s
        while k < e and _space(buf[k]):
            k += 1
        if k == e:  # blank: one more line of the current run, or a new run
            if r > 0 and runs[r - 1, 0] + runs[r - 1, 1] == ln:
                runs[r - 1, 1] += 1
            else:
                if r == runs.shape[0]:
                    runs = _grown(runs.ravel(), 4 * r).reshape((2 * r, 4))
                runs[r, 0] = ln
                runs[r, 1] = 1
                runs[r, 2] = s
                runs[r, 3] = e
                r += 1
        else:
            if m == starts.shape[0]:
                starts, ends, lines = _grown(starts, m), _grown(ends, m), _grown(lines, m)
            starts[m] = s
            ends[m] = e
            lines[m] = ln
            m += 1
        ln += 1
        p = q + 1
    return starts[:m], ends[:m], lines[:m], runs[:r], ln


def split_lines(data: bytes):
    """A block of LF-terminated lines (the last may lack its LF) as arrays, with no object
    per line: (buf, starts, ends, line, blank_runs, n_lines). ``line`` is the index of each
    non-blank line in the block; each row of ``blank_runs`` is a run of consecutive blank
    (empty or whitespace-only) lines: (first line, count, start, end of the first). Ends
    exclude the LF and a CR before it; starts skip a UTF-8 byte order mark."""
    buf = np.frombuffer(data, dtype=np.uint8)
    starts, ends, line, runs, n = _split(buf)
    return buf, starts, ends, line, runs, n


def scan_iso(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Epoch of each text that is exactly one ISO 8601 timestamp of the header grammar,
    else NaN (not that shape: the general reader decides; or an impossible time)."""
    return _scan_iso(buf, _positions(starts), _positions(ends))


# Each kernel is compiled once, for one signature, when the module is imported (from the
# cache after the first run): no specialisation per literal argument or array layout, and
# no compiling in the middle of a run. Callees come before their callers.
with compiling():
    _word_char = nb.njit((nb.uint8,), **_HELPER)(_word_char)
    _days_from_civil = nb.njit((_I, _I, _I), **_HELPER)(_days_from_civil)
    _num = nb.njit((_BUF, _I, _I, _I, _I), **_HELPER)(_num)
    _frac = nb.njit((_BUF, _I, _I, _I, nb.boolean), **_HELPER)(_frac)
    _time = nb.njit((_BUF, _I, _I, _I), **_HELPER)(_time)
    _days_in_month = nb.njit((_I, _I), **_HELPER)(_days_in_month)
    _valid = nb.njit((_I, _I, _I, _I, _I, _I), **_HELPER)(_valid)
    _tz = nb.njit((_BUF, _I, _I), **_HELPER)(_tz)
    _three = nb.njit((_BUF, _I, _I, _TABLE), **_HELPER)(_three)
    _alpha = nb.njit((nb.uint8,), **_HELPER)(_alpha)
    _iso = nb.njit((_BUF, _I, _I), **_HELPER)(_iso)
    _no_year = nb.njit((_I, _I, _I, _I, _I, _F, _I, _F), **_HELPER)(_no_year)
    _syslog = nb.njit((_BUF, _I, _I, _I, _F, _TABLE, _TABLE), **_HELPER)(_syslog)
    _md_time = nb.njit((_BUF, _I, _I, _I, _I, _I, _F), **_HELPER)(_md_time)
    _logcat = nb.njit((_BUF, _I, _I, _I, _F), **_HELPER)(_logcat)
    _clf = nb.njit((_BUF, _I, _I, _TABLE), **_HELPER)(_clf)
    _letter_level = nb.njit((_I,), **_HELPER)(_letter_level)
    _klog = nb.njit((_BUF, _I, _I, _I, _F), **_HELPER)(_klog)
    _cri = nb.njit((_BUF, _I, _I), **_HELPER)(_cri)
    _ruby = nb.njit((_BUF, _I, _I), **_HELPER)(_ruby)
    _logfmt = nb.njit((_BUF, _I, _I), **_HELPER)(_logfmt)
    _level = nb.njit((_BUF, _I, _I, _TABLE, _CODES, _FLAGS, nb.boolean, nb.boolean),
                     **_HELPER)(_level)
    _kv_level = nb.njit((_BUF, _I, _I, _TABLE, _CODES, _FLAGS), **_HELPER)(_kv_level)
    _skip_spaces = nb.njit((_BUF, _I, _I), **_HELPER)(_skip_spaces)
    _before_level = nb.njit((_BUF, _I, _I), **_HELPER)(_before_level)
    # nogil: scan_lines runs the parts of a big block in threads
    _scan = nb.njit((_BUF, _POS, _POS, _I, _I, _F, _TABLE, _CODES, _FLAGS, _TABLE, _TABLE,
                     _OUT8, _OUTF, _OUT8, _OUTI, _OUTI), cache=True, nogil=True)(_scan)
    _scan_iso = nb.njit((_BUF, _POS, _POS), cache=True)(_scan_iso)
    _grown = nb.njit((_POS, _I), **_HELPER)(_grown)
    _split = nb.njit((_BUF,), cache=True)(_split)
