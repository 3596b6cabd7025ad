"""Sources: where records come from (files, stdin, Kafka). Side effects live here.

A source hands out batches in input order and is told, with ``commit``, the positions
(source name -> offset after the last record, as ``Pipeline.positions`` keeps them) whose
outputs the sinks acknowledged. Embedded and streaming modes share this interface.
"""
from __future__ import annotations

from typing import Protocol


class Source(Protocol):
    def poll(self, timeout: float) -> list:
        """The next batches (possibly none within ``timeout`` seconds)."""

    def commit(self, positions: dict[str, int]) -> bool:
        """Positions whose outputs were acknowledged: the source may forget what precedes.
        False when it could not take them now (they are offered again later)."""

    def close(self) -> None:
        """Release the input (a Kafka consumer leaves its group)."""
