"""A progress bar on stderr when it is a terminal; silent in a pipe or a file."""
from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int | None, label: str, unit: str = "lines", stream=None):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.total, self.label, self.unit = total, label, unit
        self.done = 0
        self.start = self._last = time.perf_counter()

    def update(self, n: int) -> None:
        self.done += n
        now = time.perf_counter()
        if self.enabled and now - self._last > 0.1:
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        rate = self.done / max(now - self.start, 1e-9)
        if self.total:
            frac = min(self.done / self.total, 1.0)
            bar = "#" * int(30 * frac) + "-" * (30 - int(30 * frac))
            text = f"\r{self.label} [{bar}] {frac:5.1%} {self.done:,} {self.unit} {rate:,.0f}/s"
        else:
            text = f"\r{self.label} {self.done:,} {self.unit} {rate:,.0f}/s"
        self.stream.write(text)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw(time.perf_counter())
            self.stream.write("\n")
            self.stream.flush()
