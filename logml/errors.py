"""Error records: what could not be processed, why (a closed list), and the raw bytes.

Every error is counted under its reason in one metric and written to the dead-letter
output; none is swallowed. A record flagged ``kept`` was still processed (a truncated line).
A record may stand for ``count`` consecutive input lines (a run of blank lines is one
record, not one object per line): accounting counts ``count`` lines for it, and its
dead-letter document says ``lines``; ``offset`` and ``raw`` are those of the first line.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass
from enum import StrEnum


class Reason(StrEnum):
    EMPTY = "empty"
    INVALID_UTF8 = "invalid_utf8"
    NUL_BYTES = "nul_bytes"
    TOO_LONG = "too_long"
    INVALID_JSON = "invalid_json"
    NON_FINITE_NUMBER = "non_finite_number"  # NaN, Infinity, or a number beyond float range
    NOT_AN_OBJECT = "not_an_object"
    TOO_DEEP = "too_deep"
    MISSING_MESSAGE = "missing_message"
    BAD_TIMESTAMP = "bad_timestamp"
    ABSURD_TIMESTAMP = "absurd_timestamp"
    LATE = "late"
    SINK_REJECTED = "sink_rejected"


@dataclass
class ErrorRecord:
    reason: Reason
    detail: str
    raw: bytes
    source: str = ""
    offset: int = -1
    kept: bool = False  # processed anyway (truncated), dead-lettered for the full bytes
    key: bytes | None = None  # the source record's key (Kafka), kept on the dead letter
    count: int = 1  # consecutive input lines this record stands for (runs of blank lines)

    def doc(self) -> dict:
        """The dead-letter document: raw bytes as text when they are valid UTF-8, else base64."""
        try:
            raw = {"raw": self.raw.decode("utf-8")}
        except UnicodeDecodeError:
            raw = {"raw_base64": base64.b64encode(self.raw).decode()}
        return {"reason": str(self.reason), "detail": self.detail, "source": self.source,
                "offset": self.offset, "kept": self.kept, "bytes": len(self.raw),
                "lines": self.count, **raw}
