"""Batch classification by upload with a real `flowers up` (and `flowers classify DIR` against it)."""
from __future__ import annotations

import json
import shutil
import time

from local_fixtures import Up, flowers, seed_approved_model
from pipeline_fixtures import sample_photos, tiny_model  # noqa: F401  (fixtures)


def test_flowers_up_classifies_what_lands_in_bucket_classify_and_flowers_classify_does_it_from_a_terminal(tmp_path, tiny_model):  # noqa: F811
    home = tmp_path / "home"
    version = seed_approved_model(home, tiny_model)
    up = Up(home, "--quiet-period", "1")
    try:
        inbox = home / "bucket" / "classify" / "batch-1"
        inbox.mkdir(parents=True)
        sent = sample_photos(3)
        for photo in sent:
            shutil.copyfile(photo, inbox / photo.name)
        (inbox / "broken.jpg").write_bytes(b"not a photo at all")
        outputs = home / "bucket" / "predictions"

        def lines():
            found = [json.loads(line) for f in sorted(outputs.glob("*.jsonl")) for line in f.read_text().splitlines()]
            return found if len(found) >= 4 else None

        found = up.wait_for(lines, 60, "predictions for the 4 files")
        assert sorted(line["key"] for line in found) == sorted([f"classify/batch-1/{p.name}" for p in sent] + ["classify/batch-1/broken.jpg"])
        assert all(line["model_version"] == version for line in found if "error" not in line)
        assert sum("error" in line for line in found) == 1
        up.wait_for(lambda: "classified 4 photo(s) under classify/ with the served model: " in up.log(), 10, "the console line")
        assert "bucket: 4 new or changed" not in up.log()  # not announced as uploads to train on
        time.sleep(2)  # a quiet period and more: the photos started no run
        status = up.get("status").json()
        assert status["pending_uploads"] == 0 and status["running_job"] is None and status["last_outcome"] is None

        # From a terminal: the same lines, through the running server's POST /predict.
        folder = tmp_path / "mine"
        shutil.copytree(inbox, folder / "sub")
        done = flowers(home, "classify", str(folder), "--out", str(tmp_path / "out.jsonl"))
        assert done.returncode == 1, done.stderr  # the broken one
        mine = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
        assert [m["key"] for m in mine] == sorted(f"sub/{p.name}" for p in [*sent, inbox / "broken.jpg"])
        by_name = {line["key"].rsplit("/", 1)[1]: line for line in found}
        for line in mine:
            twin = by_name[line["key"].rsplit("/", 1)[1]]
            assert (line["label"], line["model_version"], "error" in line) == (twin["label"], twin["model_version"], "error" in twin)
            if "error" not in line:
                assert [p["label"] for p in line["predictions"]] == [p["label"] for p in twin["predictions"]]
        # Not a terminal: the progress bar is a line every 10 % on stderr.
        progress = [line for line in done.stderr.splitlines() if line.startswith("classify ")]
        assert 1 <= len(progress) <= 11 and "4/4" in progress[-1]
        assert "4 photo(s) classified by http://127.0.0.1:" in done.stderr
    finally:
        up.stop()
