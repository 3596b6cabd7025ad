"""Sinks: where documents go (JSON lines files, Elasticsearch, Kafka). Side effects live here.

A sink takes the pipeline's documents and dead letters and acknowledges them on ``flush``;
the caller commits input positions only after a flush returned. Embedded and streaming
modes share this interface.
"""
from __future__ import annotations

from typing import Protocol


class SinkUnavailable(Exception):
    """A sink could not acknowledge; the caller keeps its offsets and retries later."""


class Sink(Protocol):
    write_logs: bool  # the pipeline builds per-line documents only when True

    def write(self, kind: str, docs: list[tuple[str, dict]]) -> None:
        """Buffer (deterministic id, document) pairs of one kind (windows, anomalies, logs)."""

    def write_log_batch(self, events, idx, engine, source: str) -> None:
        """Buffer the per-line documents of a decoded batch (events, their template indices
        in engine), built as bytes by docs.LogDocs; only called when write_logs."""

    def dead_letter(self, errors: list) -> None:
        """Buffer error records (logml.errors.ErrorRecord)."""

    def flush(self) -> None:
        """Return when everything buffered is acknowledged; else raise SinkUnavailable."""

    def close(self) -> None:
        """Release resources; unflushed data is not sent."""
