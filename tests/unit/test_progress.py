"""The CLI's progress bar (flowers_cli/progress.py, drawn by tqdm): in place on a terminal, a line every 10 % elsewhere."""
from __future__ import annotations

import io

from flowers_cli.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_in_a_log_a_line_every_ten_percent_and_one_at_the_end():
    out = io.StringIO()
    bar = Progress(1000, "push to s3://b/p/", stream=out)
    for i in range(1000):
        bar.update(1, "2 bad" if i == 500 else "")
    bar.close()
    bar.close()  # twice: nothing more
    lines = out.getvalue().splitlines()
    assert len(lines) == 11 and "\r" not in out.getvalue()
    assert [line.split("%")[0].split()[-1] for line in lines] == [str(p) for p in range(0, 101, 10)]
    assert lines[-1].startswith("push to s3://b/p/: 100%|") and "1000/1000" in lines[-1] and "2 bad" in lines[-1]
    assert all(len(line) <= 100 for line in lines)


def test_a_total_not_known_ends_with_one_line_and_bytes_read_as_megabytes():
    out = io.StringIO()
    bar = Progress(0, "scan", stream=out)
    bar.update(3)
    bar.close()
    assert out.getvalue().splitlines() == [out.getvalue().splitlines()[-1]] and out.getvalue().startswith("scan: 3it")
    out = io.StringIO()
    bar = Progress(5_000_000, "download", unit="bytes", stream=out)
    bar.update(5_000_000)
    bar.close()
    assert out.getvalue().count("\n") == 1 and "5.00M/5.00M" in out.getvalue()


def test_on_a_terminal_tqdm_redraws_in_place():
    out = Terminal()
    bar = Progress(50, "classify photos", stream=out)
    for _ in range(50):
        bar.update(1)
    bar.close()
    text = out.getvalue()
    assert "\r" in text and text.count("\n") <= 1 and "50/50" in text and "classify photos: 100%" in text
