"""The CLI with no `flowers up` on its home answers in this process, and says so."""
from __future__ import annotations


def test_cli_says_when_it_answers_in_process(tmp_path):
    """With no `flowers up` on the home the CLI answers through the app in this process, and says so."""
    from local_fixtures import flowers

    (tmp_path / "home").mkdir()  # an empty home (a missing one is a usage error: tests/e2e/test_cli_errors.py)
    done = flowers(tmp_path / "home", "models")
    assert done.returncode == 0 and done.stdout.strip() == "no models yet", done.stdout + done.stderr
    assert "no `flowers up` is running on" in done.stderr and "answering in this process" in done.stderr
