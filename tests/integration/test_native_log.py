"""chalicelib/serving/native_log.py: LiteRT's banner is dropped from fd 2, everything else written there meanwhile is kept."""
from __future__ import annotations

import subprocess
import sys

from data_fixtures import ROOT

SCRIPT = """
import os, sys
from chalicelib.serving.native_log import without_litert_banner
os.write(2, b"before\\n")
with without_litert_banner():
    os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n")
    os.write(2, b"a real warning\\n")
    print("from python", file=sys.stderr, flush=True)
with without_litert_banner():  # once per process, as LiteRT says it: later calls leave fd 2 alone
    os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n")
"""


def test_only_the_banner_is_dropped_and_only_the_first_time():
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == ["before", "a real warning", "from python",
                                        "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."]
