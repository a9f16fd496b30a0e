"""The feature cache in a real `flowers up`: the second run reads the first run's features, which left the first
training job in its model folder and reached the cache through its conversion job."""
from __future__ import annotations

import json


def test_flowers_up_second_run_reads_the_first_run_s_features(tmp_path):
    """Both runs from scratch (-H warm_start=none: tiny_cnn's seeded initial weights are the same backbone), so the
    second computes phase 1's features only for its new photos and reads the rest from HOME/artifacts/features/."""
    from data_fixtures import require_photos
    from local_fixtures import TINY_UP, Up, flowers, modelarts_photos

    require_photos()
    home = tmp_path / "home"
    modelarts_photos(tmp_path / "set1", per_class=6)
    modelarts_photos(tmp_path / "set2", per_class=2, start=6)
    up = Up(home, *TINY_UP, "-H", "warm_start=none")
    try:
        assert flowers(home, "push", str(tmp_path / "set1"), "--home", str(home), "--quiet").returncode == 0

        def models():
            return [m for m in up.get("models").json()["models"] if m["status"] in ("approved", "pending")]

        (first,) = up.wait_for(models, 150, "the first model")
        assert flowers(home, "push", str(tmp_path / "set2"), "--home", str(home), "--quiet").returncode == 0
        second = up.wait_for(lambda: next((m for m in models() if m["version"] != first["version"]), None), 150, "the second model")
        logs = []
        for version in (first["version"], second["version"]):
            job = json.loads((home / "artifacts" / "models" / version / "metadata.json").read_text())["source_job"]
            logs.append(next(line for line in (home / "artifacts" / "training" / job / "log.txt").read_text().splitlines()
                             if line.startswith("feature cache:")))
        assert logs[0].startswith("feature cache: 0 photo(s) from")
        hits = int(logs[1].split()[2])
        computed = int(logs[1].split(", ")[1].split()[0])
        assert hits > 0 and 0 < computed < hits, logs[1]  # the 6 new photos (and their mirror images) only
        # They left each training job in its model folder and reached the cache through its conversion (as the
        # cloud's network-isolated jobs do): the folder holds them and the marker, the job's copy is gone.
        assert list((home / "artifacts" / "features").rglob("*.f32"))
        assert (home / "artifacts" / "features" / "README.txt").exists()
        assert not list((home / "artifacts" / "training").glob("*/attempt-*/output/model/features"))
    finally:
        up.stop()
