"""Likely mislabelled photos: suggestions for a person, never acted on by the pipeline.

Every photo of the data set (train, validation and test splits) gets out-of-fold predicted
probabilities: the photos are cut into `folds` stratified folds, and a multinomial logistic
regression (the same softmax head phase 1 trains, fitted by L-BFGS on standardised features)
learns from the other folds' pooled backbone features (strongly regularised) (phase 1's, computed once anyway) and
scores the held-out fold. Fitting takes seconds, so the run hardly slows. cleanlab's
`find_label_issues` (confident learning: prune by the estimated noise rate) then picks the photos
whose given label is unlikely, ranked by self-confidence (the out-of-fold probability of the given
label, lowest first). Each is listed with its given label, the suggested one (the most probable
class other than the given one) and the confidence in that suggestion. The photos are never relabelled or dropped.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

FOLDS = 5
MAX_LISTED = 200  # issues kept in validation.json, best first; `count` covers them all
MIN_PER_CLASS = 2  # a class with fewer photos cannot be held out and learnt at once: no search
# Strong L2 regularisation: a backbone gives ~1,000 features for about as many photos. On the shared photos'
# features with 5 % of labels flipped (three seeds), C = 0.003 put 53-58 flips in the top 75 flags; 0.1 put 48-53.
C = 0.003


def out_of_fold_probabilities(features: np.ndarray, labels: np.ndarray, num_classes: int, folds: int = FOLDS,
                              seed: int = 0) -> np.ndarray:
    """(n, num_classes) probabilities, each photo's from a model that never saw it."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    smallest = int(np.bincount(labels, minlength=num_classes).min())
    splitter = StratifiedKFold(n_splits=max(2, min(folds, smallest)), shuffle=True, random_state=seed)
    probabilities = np.zeros((len(labels), num_classes), np.float64)
    for train, held_out in splitter.split(features, labels):
        mean, std = features[train].mean(axis=0), features[train].std(axis=0) + 1e-6
        model = LogisticRegression(C=C, max_iter=200)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # 200 iterations rank the photos well enough
            model.fit((features[train] - mean) / std, labels[train])
        probabilities[np.ix_(held_out, model.classes_)] = model.predict_proba((features[held_out] - mean) / std)
    return probabilities


def rank_issues(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Indices of the likely mislabelled photos, most likely first (cleanlab.filter.find_label_issues)."""
    from cleanlab.filter import find_label_issues

    # n_jobs=1: by default cleanlab forks a multiprocessing pool, and forking a process that runs TensorFlow's
    # threads (and, multi-worker, gRPC's) can leave a child stuck on a lock held at the fork: the run hangs,
    # and its peers with it. Pruning a few classes takes milliseconds in-process; the result does not change.
    return np.asarray(find_label_issues(labels, probabilities, filter_by="prune_by_noise_rate",
                                        return_indices_ranked_by="self_confidence", n_jobs=1), dtype=np.int64)


def find(features: np.ndarray, labels: np.ndarray, paths: list[str], class_names: list[str], folds: int = FOLDS,
         seed: int = 0, limit: int = MAX_LISTED) -> dict[str, Any]:
    """validation.json's "label_issues": how they were found, how many, and the first `limit`, ranked.

    Never raises for its data: too few photos or classes say so under "skipped" instead.
    """
    started = time.monotonic()
    labels = np.asarray(labels, np.int64)
    method = {"method": "cleanlab.filter.find_label_issues (prune_by_noise_rate) on out-of-fold probabilities",
              "model": "multinomial logistic regression on phase-1 backbone features", "folds": folds,
              "photos": int(len(labels))}
    counts = np.bincount(labels, minlength=len(class_names)) if len(labels) else np.zeros(len(class_names), int)
    if len(class_names) < 2 or len(labels) != len(features) or len(labels) != len(paths):
        return dict(method, count=0, issues=[], skipped="needs at least 2 classes and one feature row per photo")
    if counts.min() < MIN_PER_CLASS:
        return dict(method, count=0, issues=[],
                    skipped=f"every class needs at least {MIN_PER_CLASS} photos to be held out in turn")
    probabilities = out_of_fold_probabilities(features, labels, len(class_names), folds, seed)
    ranked = rank_issues(probabilities, labels)
    issues = []
    for index in ranked[:limit]:
        others = probabilities[index].copy()
        others[labels[index]] = -1.0
        suggested = int(others.argmax())  # the most probable class other than the given one
        issues.append({"file": paths[index], "given": class_names[labels[index]],
                       "suggested": class_names[suggested],
                       "confidence": round(float(probabilities[index, suggested]), 4),  # in the suggested label
                       "given_score": round(float(probabilities[index, labels[index]]), 4)})
    accuracy = float((probabilities.argmax(axis=1) == labels).mean())
    return dict(method, count=int(len(ranked)), out_of_fold_accuracy=round(accuracy, 4), issues=issues,
                seconds=round(time.monotonic() - started, 2))
