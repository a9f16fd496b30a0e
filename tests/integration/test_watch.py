"""flowers up's bucket watch at rest and on a change (chalicelib/local_stack/watcher.py's Watch), on a real folder
with real inotify notifications: a write wakes a scan, nothing happening wakes none, reading a photo wakes
none, the slow rescan still runs, its period grows with a costly scan, and where notifications are refused it
polls as before. The idle CPU and the upload-to-scan latency are measured in bench/idle_watch.py."""
from __future__ import annotations

import threading
import time

import pytest

from chalicelib.local_stack import watcher as watcher_module
from chalicelib.local_stack.watcher import POLL_SECONDS, Watch


class Running:
    """A Watch in its own thread, as flowers up runs it."""

    def __init__(self, root, mode="notify"):
        self.scanned = threading.Event()
        self.said: list[str] = []
        self.watch = Watch(root, self._scan, mode, self.said.append)
        self.stop = threading.Event()
        self.watch.start()
        self.thread = threading.Thread(target=self.watch.run, args=(self.stop,), daemon=True)
        self.thread.start()

    def _scan(self):
        self.scanned.set()

    def close(self):
        self.stop.set()
        self.watch.changed.set()
        self.thread.join(10)
        self.watch.stop()
        assert not self.thread.is_alive()


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "bucket"
    (root / "roses").mkdir(parents=True)
    (root / "roses" / "a.jpg").write_bytes(b"a")
    return root


def test_nothing_happening_wakes_no_scan_and_a_write_wakes_one(folder):
    running = Running(folder)
    try:
        assert running.watch.mode == "notify"
        assert not running.scanned.wait(4 * POLL_SECONDS)  # poll mode would have scanned 4 times by now
        assert running.watch.scans == 0
        (folder / "roses" / "b.jpg").write_bytes(b"b")
        assert running.scanned.wait(30), "a new photo woke no scan"
        running.scanned.clear()
        (folder / "tulips").mkdir()  # a new folder and a photo in it: both seen
        (folder / "tulips" / "c.jpg").write_bytes(b"c")
        assert running.scanned.wait(30), "a photo in a new folder woke no scan"
        running.scanned.clear()
        (folder / "roses" / "b.jpg").unlink()
        assert running.scanned.wait(30), "a deletion woke no scan"
    finally:
        running.close()


def test_reading_photos_wakes_no_scan(folder):
    """A training run reads the bucket's photos and a scan hashes them: neither may wake the next scan."""
    running = Running(folder)
    try:
        for _ in range(20):
            (folder / "roses" / "a.jpg").read_bytes()
        assert not running.scanned.wait(4 * POLL_SECONDS)
        assert running.watch.scans == 0
    finally:
        running.close()


def test_the_safety_net_rescans_without_a_notification(folder, monkeypatch):
    monkeypatch.setattr(watcher_module, "RESCAN_SECONDS", 0.2)
    running = Running(folder)
    running.watch.rescan_every = 0.2
    try:
        assert running.scanned.wait(30), "no rescan without notifications"
    finally:
        running.close()


def test_a_costly_scan_makes_the_rescan_rarer(folder):
    """The safety net stays under 1 % of a core: a scan that takes 5 s is repeated every 500 s at most."""
    now = [1000.0]

    def slow_scan():
        now[0] += 5.0

    watch = Watch(folder, slow_scan, "notify", clock=lambda: now[0])
    watch.scan_now()
    assert watch.rescan_every == pytest.approx(500.0)
    assert watch.next_wait(since_last_scan=100.0) == pytest.approx(400.0)
    quick = Watch(folder, lambda: None, "notify", clock=lambda: now[0])
    quick.scan_now()
    assert quick.rescan_every == watcher_module.RESCAN_SECONDS
    assert Watch(folder, lambda: None, "poll").next_wait(since_last_scan=0.1) == pytest.approx(POLL_SECONDS - 0.1)


def test_poll_mode_and_refused_notifications_rescan_every_half_second(folder, monkeypatch):
    running = Running(folder, "poll")
    try:
        assert running.scanned.wait(30)
    finally:
        running.close()

    def refuse(*args, **kwargs):
        raise OSError(28, "inotify watch limit reached")

    monkeypatch.setattr(watcher_module.Observer, "schedule", refuse)
    running = Running(folder)
    try:
        assert running.watch.mode == "poll" and "no file-system notifications" in running.said[0]
        assert running.scanned.wait(30), "the fallback does not poll"
    finally:
        running.close()


def test_a_failed_scan_is_tried_again(folder):
    """A scan that raises (a delivery that failed) is repeated without waiting for another change."""
    calls: list[int] = []
    again = threading.Event()

    def scan():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("on_upload failed")
        again.set()

    said: list[str] = []
    watch = Watch(folder, scan, "notify", said.append)
    watch.start()
    stop = threading.Event()
    thread = threading.Thread(target=watch.run, args=(stop,), daemon=True)
    thread.start()
    try:
        (folder / "roses" / "b.jpg").write_bytes(b"b")
        assert again.wait(30) and "on_upload failed" in said[0]
    finally:
        stop.set()
        watch.changed.set()
        thread.join(10)
        watch.stop()
