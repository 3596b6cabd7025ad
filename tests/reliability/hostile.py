"""Hostile inputs: ordinary accidents (and a few worse) that must not hang logml, blow its
memory or poison the event clock of everyone else.

Each case is an input file plus what is known about it: how many lines it holds and which
of them are hostile (may be dead-lettered, or counted in a window of their own). Every
other line is on time: it must be counted in a window, never dead-lettered ``late``.
Cases are built from a plain, regular base stream (two services, one line every half
second) with the accident spliced in, so a poisoned clock shows as late lines.

``python -m tests.reliability.hostile DIR`` writes every case to DIR (for trying by hand).
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import orjson

from logml.errors import Reason

T0 = 1_764_000_000.0  # 2025-11-24T16:00:00Z: in the past, after 1990
STEP = 0.5  # seconds between base lines
SERVICES = ("api", "db")
MAX_LINE_BYTES = 65536  # decode.max_line_bytes default


def iso(t: float) -> str:
    ms = int(round((t - int(t)) * 1000)) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(t))) + f".{ms:03d}Z"


def event(t: float, message: str, service: str = "api", level: str = "info",
          ts: object = ...) -> bytes:
    doc = {"@timestamp": iso(t) if ts is ... else ts, "message": message,
           "service": {"name": service}, "log": {"level": level}}
    return orjson.dumps(doc)


def base_json(n: int, start: float = T0, services: Iterable[str] = SERVICES) -> list[bytes]:
    """n ordinary JSON events, alternating services, one every STEP seconds."""
    svc = tuple(services)
    return [event(start + i * STEP, f"GET /users/{i % 97} 200 in {3 + i % 11}ms",
                  svc[i % len(svc)], "error" if i % 50 == 7 else "info") for i in range(n)]


def base_plain(n: int, start: float = T0) -> list[bytes]:
    return [f"{iso(start + i * STEP)} INFO GET /users/{i % 97} 200 in {3 + i % 11}ms"
            .encode() for i in range(n)]


@dataclass
class Case:
    name: str
    write: Callable[[Path], None]  # writes the input file
    lines: tuple[int, ...]  # lines in: accepted counts (one, unless a decision is open)
    hostile: frozenset[int] = frozenset()  # lines (0-based) that may be dead-lettered
    reasons: dict[int, set[str]] = field(default_factory=dict)  # required dead-letter reasons
    counted: frozenset[int] = frozenset()  # hostile lines that must be counted in a window
    services: frozenset[str] | None = None  # the services windows may name, when known
    args: tuple[str, ...] = ()
    max_windows: int | None = None  # bound on window documents (gaps must not fill in)
    rss_mb: int = 1536
    wall_s: float = 30.0


def _lines(data: list[bytes], end: bytes = b"\n") -> Callable[[Path], None]:
    def write(path: Path) -> None:
        path.write_bytes(b"\n".join(data) + end)
    return write


def _splice(base: list[bytes], at: int, *extra: bytes) -> tuple[list[bytes], frozenset[int]]:
    out = base[:at] + list(extra) + base[at:]
    return out, frozenset(range(at, at + len(extra)))


def _case(name: str, data: list[bytes], hostile: frozenset[int] = frozenset(), **kw) -> Case:
    return Case(name, _lines(data), (len(data),), hostile, **kw)


# ------------------------------------------------------------------- the cases
NOT_LATE = {r.value for r in Reason} - {"late"}  # dead-lettered, and not for its time


def cases() -> list[Case]:
    out: list[Case] = []
    base = base_json(2400)

    # the table ---------------------------------------------------------------
    out.append(_case("gap_2000_then_plain", [b"2000-01-01T00:00:00Z x", b"hello"],
                     frozenset({0, 1}), max_windows=200))
    data, h = _splice(base, 0, event(662_688_000.0, "boot"))  # 1991
    out.append(_case("ts_1991_then_current", data, h, max_windows=400))
    data, h = _splice(base, 1200, b"2100-01-01T00:00:00Z INFO from the future")
    out.append(_case("plain_year_2100_in_json", data, h, max_windows=400))
    data, h = _splice(base, 1200, b"plain line without any time")
    out.append(_case("plain_line_without_time_in_json", data, h))
    data, h = _splice(base, 1200, event(T0 + 600 + 23 * 3600, "clock jumped", "api"))
    out.append(_case("one_event_23h_ahead", data, h, max_windows=400))
    two = [event(T0 + i * STEP + (3600 if i % 2 else 0), f"tick {i % 13}", SERVICES[i % 2])
           for i in range(4000)]
    out.append(_case("services_clocks_1h_apart", two))
    bom = list(base)
    bom[0] = b"\xef\xbb\xbf" + bom[0]
    out.append(_case("utf8_bom_first_line", bom, services=frozenset(SERVICES)))
    data, h = _splice(base, 1200, b'{"@timestamp": "%s", "message": "bad \\ud800 here", '
                      b'"service": {"name": "api"}}' % iso(T0 + 600).encode())
    out.append(_case("lone_surrogate_escape", data, h, reasons={1200: {"invalid_utf8"}}))
    data, h = _splice(base, 1200, b'{"@timestamp": "%s", "message": "x", "v": NaN}'
                      % iso(T0 + 600).encode(),
                      b'{"@timestamp": "%s", "message": "y", "v": -Infinity}'
                      % iso(T0 + 600).encode())
    out.append(_case("nan_and_infinity", data, h, reasons={k: NOT_LATE for k in h}))
    # fields before the message, as the reader keeps only the first max_line_bytes + 1
    long_json = orjson.dumps({"@timestamp": iso(T0 + 600), "service": {"name": "db"},
                              "message": "big payload " + "x" * (MAX_LINE_BYTES + 100)})
    data, h = _splice(base, 1200, long_json)
    out.append(_case("json_line_over_max_line_bytes", data, h, reasons={1200: {"too_long"}},
                     counted=h, services=frozenset(SERVICES)))
    bad_dates = [b"2026-11-30T25:61:61Z ERROR hour 25", b"2026-02-30T10:00:00Z ERROR feb 30",
                 b"2025-11-24T16:10:00+99:99 ERROR offset +99:99",
                 event(T0 + 600, "json hour 25", "api", ts="2025-11-24T25:00:00Z"),
                 event(T0 + 600, "json feb 30", "api", ts="2025-02-30T10:00:00Z")]
    data, h = _splice(base, 1200, *bad_dates)
    out.append(_case("invalid_calendar_dates", data, h,
                     reasons={1203: {"bad_timestamp"}, 1204: {"bad_timestamp"}}))
    out.append(Case("one_million_empty_lines", _empty_lines(1_000_000, base[:200]),
                    (1_000_200,), frozenset(range(100, 1_000_100)), wall_s=180))
    out.append(Case("four_mb_of_newlines", _empty_lines(4 << 20, []), (4 << 20,),
                    frozenset(range(4 << 20)), wall_s=300))
    out.append(Case("line_of_200_mb", _huge_line(200 << 20, base[:400]), (401,),
                    frozenset({200}), reasons={200: {"too_long"}}, counted=frozenset({200}),
                    wall_s=180))
    cr = [f"{iso(T0 + i)} INFO record {i}".encode() for i in range(1000)]
    out.append(Case("cr_only_line_endings", _lines([b"\r".join(cr)], b"\r"), (1000, 1),
                    frozenset(range(1000))))

    # more accidents ------------------------------------------------------------------
    data, h = _splice(base, 1200, b"before \x00\x00 after")
    out.append(_case("nul_bytes_in_a_line", data, h, reasons={1200: {"nul_bytes"}}))
    data, h = _splice(base, 1200, b"\xff\xfe\xfd garbage \xc3\x28")
    out.append(_case("invalid_utf8_line", data, h, reasons={1200: {"invalid_utf8"}}))
    data, h = _splice(base, 1200, b"[" * 5000 + b"]" * 5000, b'{"message":' + b"[" * 200
                      + b"]" * 200 + b"}")
    out.append(_case("deeply_nested_json", data, h))
    mixed = [base_json(1, T0 + i * STEP)[0] if i % 3 else base_plain(1, T0 + i * STEP)[0]
             for i in range(2400)]
    out.append(_case("json_and_plain_mixed_with_times", mixed))
    out.append(Case("crlf_line_endings", _crlf(base), (len(base),)))
    out.append(Case("no_newline_at_end", _lines(base, b""), (len(base),)))
    gap = base[:1200] + base_json(1200, T0 + 30 * 86400)
    out.append(_case("thirty_day_gap", gap, max_windows=2000))
    epoch = [event(0, f"epoch ms {i}", SERVICES[i % 2], ts=int((T0 + i * STEP) * 1000))
             for i in range(2400)]
    out.append(_case("epoch_millisecond_timestamps", epoch))
    many = [event(T0 + i * 0.05, f"hello {i % 7}", f"svc-{i % 3000}") for i in range(30000)]
    out.append(_case("three_thousand_services", many, wall_s=240))
    shuffled = list(base)
    for i in range(0, len(shuffled) - 40, 40):  # out of order by up to 20 s: within lateness
        shuffled[i], shuffled[i + 39] = shuffled[i + 39], shuffled[i]
    out.append(_case("out_of_order_within_lateness", shuffled))
    data, h = _splice(base, 1200, event(T0 + 600, "missing time", "api", ts=None),
                      event(T0 + 600, "unparsable time", "api", ts="yesterday at noon"))
    out.append(_case("json_missing_and_unparsable_timestamp", data, frozenset({1201})))
    data, h = _splice(base, 1200, b"   \t  ", b"\x1b[31mred\x1b[0m terminal colours")
    out.append(_case("whitespace_and_escape_sequences", data, frozenset({1200})))
    return out


def _crlf(base: list[bytes]) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        path.write_bytes(b"\r\n".join(base) + b"\r\n")
    return write


def _empty_lines(n: int, around: list[bytes]) -> Callable[[Path], None]:
    """half of around, n empty lines, the other half."""
    def write(path: Path) -> None:
        half = len(around) // 2
        with open(path, "wb") as f:
            if half:
                f.write(b"\n".join(around[:half]) + b"\n")
            left = n
            while left:
                k = min(left, 1 << 22)
                f.write(b"\n" * k)
                left -= k
            if around[half:]:
                f.write(b"\n".join(around[half:]) + b"\n")
    return write


def _huge_line(size: int, around: list[bytes]) -> Callable[[Path], None]:
    """half of around, one plain line of size bytes, the other half."""
    def write(path: Path) -> None:
        half = len(around) // 2
        with open(path, "wb") as f:
            f.write(b"\n".join(around[:half]) + b"\n")
            f.write(f"{iso(T0 + half * STEP)} INFO huge ".encode())
            chunk = b"abcdefgh" * (1 << 17)
            left = size
            while left > 0:
                f.write(chunk[:left])
                left -= len(chunk)
            f.write(b"\n" + b"\n".join(around[half:]) + b"\n")
    return write


def by_name() -> dict[str, Case]:
    return {c.name: c for c in cases()}


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "hostile-inputs")
    target.mkdir(parents=True, exist_ok=True)
    for c in cases():
        c.write(target / f"{c.name}.log")
        print(target / f"{c.name}.log")
