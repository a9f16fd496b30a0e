"""Incremental retraining's warm start (issue 21) in a real `flowers up`."""
from __future__ import annotations

import json


def test_flowers_up_warm_starts_the_second_run_from_the_first_model(tmp_path):
    """A real `flowers up`: the first run starts from scratch; photos of the same classes added later give a
    run that starts from the approved model's weights (its training output folder as SM_CHANNEL_PRODUCTION),
    trains the shorter schedule, computes backbone features only for the new photos, and says so in metadata.json."""
    from data_fixtures import require_photos
    from local_fixtures import TINY_UP, Up, flowers, modelarts_photos

    require_photos()
    home = tmp_path / "home"
    modelarts_photos(tmp_path / "set1", per_class=6)
    modelarts_photos(tmp_path / "set2", per_class=2, start=6)
    up = Up(home, *TINY_UP)
    try:
        assert flowers(home, "push", str(tmp_path / "set1"), "--home", str(home), "--quiet").returncode == 0

        def models():
            return [m for m in up.get("models").json()["models"] if m["status"] in ("approved", "pending")]

        (first,) = up.wait_for(models, 150, "the first model")
        assert first["status"] == "approved"
        assert flowers(home, "push", str(tmp_path / "set2"), "--home", str(home), "--quiet").returncode == 0
        second = up.wait_for(lambda: next((m for m in models() if m["version"] != first["version"]), None), 150, "the second model")
        before = json.loads((home / "artifacts" / "models" / first["version"] / "metadata.json").read_text())
        after = json.loads((home / "artifacts" / "models" / second["version"] / "metadata.json").read_text())
        assert before["training"]["start_from"] == {"kind": "imagenet", "warm": False, "chain": 0, "reason": "no production model yet",
                                                    "production_version": ""}
        start = after["training"]["start_from"]
        assert (start["kind"], start["warm"], start["chain"], start["production_version"]) == ("production", True, 1, first["version"])
        assert "training compares them" in start["reason"]  # ModelArts layout: the labels are in name.txt files
        assert (start["head_epochs"], start["epochs"]) == (1, 1)  # TINY_UP's 2 and 1, shortened
        channel = home / "artifacts" / "training" / before["source_job"] / "attempt-1" / "output" / "model"
        assert after["training"]["warm_start"] == str(channel) and (channel / "model.keras").exists()
        log = (home / "artifacts" / "training" / after["source_job"] / "log.txt").read_text()
        assert f"warm start from {channel}" in log
        # The first run's calibration cached every photo's features of the backbone this run starts from:
        # phase 1 computes only the new photos (no mirror images after a warm start), and reads the others.
        old, new = (sum(1 for p in (tmp_path / name).iterdir() if p.suffix == ".jpg") for name in ("set1", "set2"))
        phase1 = next(line for line in log.splitlines() if line.startswith("feature cache:") and line.endswith("(phase 1)"))
        assert phase1.startswith(f"feature cache: {old} photo(s) from") and f", {new} computed" in phase1, phase1
    finally:
        up.stop()
