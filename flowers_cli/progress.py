"""The CLI's progress bar, drawn by tqdm: redrawn in place on a terminal; elsewhere (logs, CI, a pipe)
one line every 10 % and one at the end, each rendered by tqdm's own `format_meter` in ASCII."""
from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from tqdm import tqdm

LOG_WIDTH = 100  # columns of a bar written to a log


class Progress:
    def __init__(self, total: int, what: str, unit: str = "", stream: TextIO | None = None):
        self.total = max(0, total)
        self.what = what
        self.stream = stream or sys.stderr
        self.done = 0
        self.extra = ""
        self._bytes = unit == "bytes"
        self._started = time.monotonic()
        self._last_decile = -1
        self._closed = False
        self._bar: tqdm[Any] | None = None
        if hasattr(self.stream, "isatty") and self.stream.isatty():
            self._bar = tqdm(total=self.total or None, desc=what, file=self.stream, dynamic_ncols=True, leave=True,
                             unit="B" if self._bytes else "it", unit_scale=self._bytes, unit_divisor=1000)

    def update(self, step: int = 1, extra: str = "") -> None:
        self.done += step
        self.extra = extra or self.extra
        if self._bar is not None:
            if extra:
                self._bar.set_postfix_str(extra, refresh=False)
            self._bar.update(step)
            return
        decile = int(10 * self.done / self.total) if self.total else -1
        if decile > self._last_decile:
            self._last_decile = decile
            self._line()

    def _line(self) -> None:
        text = tqdm.format_meter(self.done, self.total, time.monotonic() - self._started, ncols=LOG_WIDTH, prefix=self.what,
                                 ascii=True, unit="B" if self._bytes else "it", unit_scale=self._bytes, unit_divisor=1000,
                                 postfix=self.extra or None)
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
            return
        decile = int(10 * self.done / self.total) if self.total else -1
        if decile != self._last_decile or not self.total:  # the end, unless its line is out already
            self._line()
