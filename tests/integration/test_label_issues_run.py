"""A real training run reports likely mislabelled photos and weights imbalanced classes
(the pure parts: tests/unit/test_label_issues.py, test_class_balance.py, test_evaluation.py)."""
import json
import shutil

from data_fixtures import TINY, Job, make_folder_dataset, run_in_process
from test_train import event_tags
from training import train


def test_a_run_reports_mislabelled_photos_and_weights_imbalanced_classes(tmp_path, capsys):
    """tiny_cnn on colour patches: two red photos filed under green are flagged with red suggested; blue has a
    third of the photos, so the classes are weighted and every class under the minimum is warned about."""
    data = make_folder_dataset(tmp_path / "data", per_class=24, colours={"red": (220, 40, 40), "green": (40, 200, 60)})
    make_folder_dataset(tmp_path / "data", per_class=8, colours={"blue": (40, 60, 220)})
    for i in (0, 1):
        shutil.move(data / "red" / f"red_{i}.png", data / "green" / f"red_{i}.png")
    job = Job(tmp_path / "job", data).hyperparameters(**dict(TINY, weights="none"))
    assert run_in_process(job, train.main) == 0
    report = json.loads((job.output / "data" / "validation.json").read_text())
    issues = report["label_issues"]
    assert issues["photos"] == 56 and issues["count"] >= 2
    top = {i["file"]: i for i in issues["issues"][:2]}
    assert set(top) == {"green/red_0.png", "green/red_1.png"}
    assert all(i["given"] == "green" and i["suggested"] == "red" for i in top.values())
    assert (data / "green" / "red_0.png").exists()  # suggestions only: nothing moved

    balance = report["class_balance"]
    assert balance["class_weights"] and balance["class_weights"]["blue"] > 1 > balance["class_weights"]["green"]
    assert len(balance["warnings"]) == 3
    meta = job.metadata()
    assert meta["hyperparameters"]["class_weights"] is True
    assert "label_issues" in meta["training"]["seconds"]
    assert "f1" in meta["metrics"]["test"]["per_class"]["red"] and "confused_pairs" in meta["metrics"]["test"]
    assert "phase=label_issues flagged=" in capsys.readouterr().out
    tags = event_tags(job.output / "data" / "tensorboard")
    assert {"test/f1/red", "test/f1/blue", "test/per_class"} <= tags
