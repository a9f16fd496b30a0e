"""A plain progress bar on stderr: redrawn in place on a terminal, a line every 10 % otherwise."""
from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, total: int, what: str, unit: str = "", stream: TextIO | None = None):
        self.total = max(0, total)
        self.what = what
        self.unit = unit
        self.stream = stream or sys.stderr
        self.done = 0
        self.extra = ""
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._drawn_at = 0.0
        self._last_decile = -1

    def update(self, step: int = 1, extra: str = "") -> None:
        self.done += step
        self.extra = extra or self.extra
        self._draw()

    def _text(self) -> str:
        if self.total:
            share = min(1.0, self.done / self.total)
            bar = "#" * int(share * 30)
            return f"{self.what} [{bar:<30}] {self._fmt(self.done)}/{self._fmt(self.total)} {share * 100:3.0f}% {self.extra}"
        return f"{self.what} {self._fmt(self.done)} {self.extra}"

    def _fmt(self, n: int) -> str:
        return f"{n / 1e6:.1f} MB" if self.unit == "bytes" else str(n)

    def _draw(self, final: bool = False) -> None:
        now = time.monotonic()
        if self._tty:
            if final or now - self._drawn_at > 0.1:
                self.stream.write("\r" + self._text()[:160].ljust(100))
                self.stream.flush()
                self._drawn_at = now
            return
        decile = int(10 * self.done / self.total) if self.total else -1
        if final and decile == self._last_decile and self.total:
            return  # already printed
        if final or decile > self._last_decile:
            self._last_decile = decile
            self.stream.write(self._text() + "\n")
            self.stream.flush()

    def close(self) -> None:
        self._draw(final=True)
        if self._tty:
            self.stream.write("\n")
            self.stream.flush()
