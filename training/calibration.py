"""Calibrated scores and the "not a flower" threshold, in NumPy only (bench/ and tests use it without TensorFlow).

- `fit_temperature`: the T minimising the negative log-likelihood of softmax(logits / T) on the
  validation split (temperature scaling; dividing by T > 0 never changes the top class).
- `expected_calibration_error`: ECE with 15 equal-width bins of the top score.
- `choose_threshold`: the highest top-score threshold that refuses at most 5 % of the
  validation photos (a photo whose top class is `other`, the optional background class,
  counts as refused too).
"""
from __future__ import annotations

import numpy as np

from chalicelib.contract.training_job import BACKGROUND_LABEL, not_recognised

OTHER = BACKGROUND_LABEL  # a data set's optional background class: photos that are none of the classes
ECE_BINS = 15
MAX_REFUSED = 0.05  # share of (validation) flower photos the threshold may refuse
MIN_PHOTOS = 20  # fewer validation photos than this fit no temperature (T = 1): a few photos say nothing


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def logits_of(probabilities: np.ndarray) -> np.ndarray:
    """Logits up to a constant per row (what softmax cannot tell apart): log p, with 0 kept finite."""
    return np.log(np.maximum(np.asarray(probabilities, np.float64), 1e-12))


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    z = np.asarray(logits, np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(labels)), np.asarray(labels, int)].mean()) if len(labels) else 0.0


def fit_temperature(logits: np.ndarray, labels: np.ndarray, low: float = 0.1, high: float = 10.0) -> float:
    """T in [low, high] minimising the NLL of softmax(logits / T); 1.0 with fewer than MIN_PHOTOS photos.

    The NLL is convex in 1/T, so a golden-section search over log T finds its minimum.
    """
    if len(labels) < MIN_PHOTOS:
        return 1.0
    a, b = np.log(low), np.log(high)
    ratio = (np.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = nll(logits, labels, np.exp(c)), nll(logits, labels, np.exp(d))
    for _ in range(80):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = nll(logits, labels, np.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = nll(logits, labels, np.exp(d))
    return float(np.exp((a + b) / 2))


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Sum over equal-width bins of the top score of |accuracy - mean confidence| x the bin's share of photos."""
    p = np.asarray(probabilities, np.float64)
    if len(p) == 0:
        return 0.0
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == np.asarray(labels, int)).astype(np.float64)
    # bin i holds confidences in (i/bins, (i+1)/bins]; a confidence of 0 goes to the first bin
    index = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    total = 0.0
    for i in range(bins):
        members = index == i
        if members.any():
            total += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(total)


def refused(probabilities: np.ndarray, threshold: float | None, labels: list[str]) -> np.ndarray:
    """Which rows the server answers with `label: null` (training_contract.not_recognised on each row)."""
    p = np.asarray(probabilities, np.float64)
    return np.array([not_recognised(labels[int(row.argmax())], float(row.max()), threshold) for row in p], bool)


def choose_threshold(probabilities: np.ndarray, truth: np.ndarray, labels: list[str],
                     max_refused: float = MAX_REFUSED) -> float:
    """The highest threshold refusing at most `max_refused` of the photos whose true class is not `other`.

    A photo is refused when its top score is strictly below the threshold, so the threshold is
    the k-th lowest top score, k the number of photos the budget allows (after those whose top
    class is `other`). 0.0 when there are no such photos.
    """
    p = np.asarray(probabilities, np.float64)
    keep = np.ones(len(p), bool)
    if OTHER in labels:
        keep = np.asarray(truth, int) != labels.index(OTHER)
    p = p[keep]
    if not len(p):
        return 0.0
    already = int(refused(p, None, labels).sum())
    budget = int(np.floor(max_refused * len(p) + 1e-9)) - already
    if budget < 0:
        return 0.0
    scores = np.sort(p.max(axis=1))
    # rounded down to the 6 digits the API shows scores with, so a score shown is refused iff it is below it
    return float(np.floor(scores[budget] * 1e6) / 1e6)
