"""LiteRT's "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." kept out of the logs.

LiteRT's C++ logger writes that line to file descriptor 2 the first time a process creates an
interpreter, whatever TF_CPP_MIN_LOG_LEVEL says, and its minimum severity cannot be set from
Python. So the first interpreter is created with fd 2 pointed at a temporary file; what else
landed there meanwhile (other threads' output, a real warning) is written back to fd 2.
"""
from __future__ import annotations

import os
import tempfile
import threading
from contextlib import contextmanager
from typing import Iterator

BANNER = b"Created TensorFlow Lite XNNPACK delegate for CPU."
_lock = threading.Lock()
_done = False  # LiteRT says it once per process


@contextmanager
def without_litert_banner() -> Iterator[None]:
    global _done
    if _done:
        yield
        return
    with _lock:
        if _done:
            yield
            return
        with tempfile.TemporaryFile() as capture:
            saved = os.dup(2)
            os.dup2(capture.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                capture.seek(0)
                kept = b"".join(line for line in capture.read().splitlines(keepends=True) if BANNER not in line)
                if kept:
                    os.write(2, kept)
        _done = True
