"""HOME/operator-token (chalicelib/local_stack/guard.py) on a real file system: created 0600 whatever the umask,
kept across starts, replaced when others could read it."""
from __future__ import annotations

import os
import stat

from chalicelib.local_stack import guard


def test_created_once_with_mode_0600_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        token = guard.ensure_token(tmp_path)
    finally:
        os.umask(old)
    path = tmp_path / guard.TOKEN_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(token) >= 43
    assert guard.ensure_token(tmp_path) == token == guard.read_token(tmp_path)  # the next start keeps it


def test_a_token_file_others_can_read_is_replaced(tmp_path):
    path = tmp_path / guard.TOKEN_FILE
    path.write_text("known-to-others\n")
    path.chmod(0o644)
    token = guard.ensure_token(tmp_path)
    assert token != "known-to-others" and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_no_token_file_reads_as_none(tmp_path):
    assert guard.read_token(tmp_path) == ""
