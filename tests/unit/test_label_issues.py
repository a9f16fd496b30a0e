"""Know your data: likely mislabelled photos (training.label_issues). Class imbalance: test_class_balance.py;
per-class metrics: test_evaluation.py; a real training run that reports them: tests/integration/test_label_issues_run.py."""
import numpy as np

from training import label_issues


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
