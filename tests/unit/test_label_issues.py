"""Know your data: likely mislabelled photos (training.label_issues), class imbalance (training.class_balance),
per-class metrics (training.evaluation), and a real training run that reports them."""
import json
import shutil

import numpy as np

from data_fixtures import TINY, Job, make_folder_dataset, run_in_process
from test_train import event_tags
from training import class_balance, evaluation, label_issues, train


def clustered(per_class: int, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Features in well separated clusters, one per class."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), per_class)
    centres = rng.normal(0, 4, (classes, 16))
    return (centres[labels] + rng.normal(0, 1, (len(labels), 16))).astype(np.float32), labels


def test_flipped_labels_are_found_ranked_with_the_true_class_suggested():
    features, truth = clustered(40, seed=2)
    given = truth.copy()
    flipped = [3, 50, 97]
    given[flipped] = (truth[flipped] + 1) % 3
    paths = [f"{['a', 'b', 'c'][g]}/{i}.jpg" for i, g in enumerate(given)]
    found = label_issues.find(features, given, paths, ["a", "b", "c"], seed=1)
    files = [issue["file"] for issue in found["issues"]]
    assert set(files[:3]) == {paths[i] for i in flipped}  # the flips first
    assert found["count"] == len(found["issues"]) <= 6
    for issue in found["issues"][:3]:
        index = paths.index(issue["file"])
        assert issue["given"] == "abc"[given[index]] and issue["suggested"] == "abc"[truth[index]]
        assert issue["confidence"] > 0.5 > issue["given_score"]
    assert found["out_of_fold_accuracy"] >= 0.97 and found["folds"] == 5


def test_every_photo_is_scored_by_a_model_that_never_saw_it():
    features, labels = clustered(10, classes=2)
    # a photo that is its own class's outlier: a model that saw it would still fit it
    features[0] = features[15]
    probabilities = label_issues.out_of_fold_probabilities(features, labels, 2, seed=0)
    assert probabilities.shape == (20, 2) and np.allclose(probabilities.sum(axis=1), 1)
    assert probabilities[0, 0] < 0.5


def test_too_few_photos_say_so_and_never_raise():
    features, labels = clustered(1, classes=3)
    found = label_issues.find(features, labels, ["x", "y", "z"], ["a", "b", "c"])
    assert found["count"] == 0 and "at least 2 photos" in found["skipped"]
    one_class = label_issues.find(np.zeros((4, 3)), np.zeros(4, int), list("abcd"), ["a"])
    assert one_class["count"] == 0 and "2 classes" in one_class["skipped"]
    mismatched = label_issues.find(np.zeros((4, 3)), np.array([0, 1, 0, 1]), ["a"], ["a", "b"])
    assert mismatched["count"] == 0 and mismatched["skipped"]
    # four photos per class: folds shrink to the smallest class
    features, labels = clustered(4, classes=2)
    assert label_issues.find(features, labels, [str(i) for i in range(8)], ["a", "b"])["folds"] == 5
    assert label_issues.out_of_fold_probabilities(features, labels, 2).shape == (8, 2)


def test_class_weights_only_past_twice_the_smallest_class():
    assert class_balance.weights([100, 60, 50]) is None  # exactly 2x: balanced enough
    weights = class_balance.weights([100, 20, 30])
    assert weights == {0: 0.5, 1: 2.5, 2: 1.6667}
    # every photo counted by its weight: each class contributes the same total
    assert {round(n * weights[i]) for i, n in enumerate([100, 20, 30])} == {50}
    assert class_balance.weights([10, 0]) is None and class_balance.weights([7]) is None

    report = class_balance.report(["a", "b", "c"], [100, 20, 30], [125, 25, 38], enabled=True)
    assert report["class_weights"] == {"a": 0.5, "b": 2.5, "c": 1.6667} and report["largest_to_smallest"] == 5.0
    assert report["warnings"] == ["b: 25 photos, fewer than the 30 recommended; add photos of this class"]
    off = class_balance.report(["a", "b", "c"], [100, 20, 30], [125, 25, 38], enabled=False)
    assert off["class_weights"] is None and "class_weights=false" in off["status"]


def test_per_class_f1_and_most_confused_pairs():
    labels = ["daisy", "roses", "tulips"]
    true = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    predicted = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 0])
    metrics = evaluation.classification_metrics(true, predicted, labels)
    roses = metrics["per_class"]["roses"]
    assert roses["precision"] == 0.5 and roses["recall"] == 1 / 3 and roses["support"] == 3
    assert abs(roses["f1"] - 0.4) < 1e-9
    assert metrics["confused_pairs"] == [{"true": "roses", "predicted": "tulips", "count": 2},
                                         {"true": "daisy", "predicted": "roses", "count": 1},
                                         {"true": "tulips", "predicted": "daisy", "count": 1}]
    empty = evaluation.classification_metrics(np.array([], int), np.array([], int), labels)
    assert empty["confused_pairs"] == [] and empty["per_class"]["daisy"]["f1"] == 0.0
    text = evaluation.per_class_text(metrics)
    assert "| roses | 0.500 | 0.333 | 0.400 | 3 |" in text and "roses → tulips (2)" in text


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
