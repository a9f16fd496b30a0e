"""Domain events in a real `flowers up`: appended to the local log, followed by `flowers events --follow`."""
from __future__ import annotations

import getpass
import json
import os
import select
import subprocess
import sys
import time

from flowers_cli.events import describe
from local_fixtures import TINY_UP, Up, cli_env, flowers, modelarts_photos


def test_flowers_up_appends_its_events_and_flowers_events_follows_them(tmp_path):
    from data_fixtures import require_photos

    require_photos()
    home = tmp_path / "home"
    follow = subprocess.Popen([sys.executable, "-m", "flowers_cli.main", "events", "--follow"], env=cli_env(home),
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0, cwd=str(tmp_path))
    up = Up(home, *TINY_UP)
    try:
        modelarts_photos(tmp_path / "photos", per_class=8)
        assert flowers(home, "push", str(tmp_path / "photos"), "--quiet").returncode == 0
        lines: list[str] = []
        deadline = time.monotonic() + 240

        pending = bytearray()

        def next_line() -> str:  # from the pipe itself: no buffer of Python's hides a line from select
            while b"\n" not in pending:
                assert time.monotonic() < deadline, f"waited in vain after {lines}\n{up.log()[-4000:]}"
                if select.select([follow.stdout], [], [], 1)[0]:
                    pending.extend(os.read(follow.stdout.fileno(), 65536))
            line, _, rest = bytes(pending).partition(b"\n")
            pending[:] = rest
            return line.decode() + "\n"

        while not any("Model Promoted" in line for line in lines):
            lines.append(next_line())
        version = lines[-1].split()[3]  # TIME Model Promoted VERSION ...
        assert [line.split()[1:3] for line in lines if line.strip()][:1] == [["Run", "Started"]]
        assert any("Model Registered" in line and f" {version} approved: " in line for line in lines)
        assert flowers(home, "reject", version, "--reason", "wrong colours").returncode == 0
        while "Model Rolled Back" not in lines[-1]:
            lines.append(next_line())
        user = getpass.getuser()
        assert f"{version} rejected, serving none (wrong colours) by {user} (local, cli)" in lines[-1]
        # The same photos again, on demand (through the running server): a new run of the version that made a model.
        retrained = flowers(home, "retrain", "--reason", "same photos, another try")
        assert retrained.returncode == 0 and "its model will be version" in retrained.stdout, retrained.stdout + retrained.stderr
        while "Run Started" not in lines[-1]:
            lines.append(next_line())
        assert f"job flowers-{version}-a2 (attempt 2) by {user} (local, cli)" in lines[-1]
        status = flowers(home, "status")
        assert f"reject   {version} by {user} (local, cli): wrong colours" in status.stdout, status.stdout
    finally:
        follow.kill()
        follow.wait()
        up.stop()
    listed = flowers(home, "events", "--json")
    events = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [e["type"] for e in events][:5] == ["Run Started", "Model Registered", "Model Promoted", "Model Rolled Back", "Run Started"]
    assert len({e["id"] for e in events}) == len(events) and all(e["source"] == "flowers" for e in events)
    assert [e.get("by") for e in events[:3]] == [None, None, None]  # the pipeline's own steps
    assert events[3]["by"] == events[4]["by"] == {"principal": getpass.getuser(), "kind": "local", "via": "cli"}
    assert events[4]["reason"] == "same photos, another try" and events[4]["model_version"] != events[4]["version"]
    assert [describe(e) for e in events][2].split()[1:3] == ["Model", "Promoted"]
