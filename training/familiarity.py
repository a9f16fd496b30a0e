"""How much a photo looks like the training photos: the "not a flower" gate, in NumPy only.

A softmax always shares all of its mass among the known classes, so a cat photo can still get
"sunflowers 0.6": the top score alone refuses only about a third of non-flower photos at 5 % of
flowers refused. Where a photo's *features* lie says more. This gate measures the Mahalanobis
distance of a photo's pooled backbone features (L2-normalised) to the nearest class mean of the
training photos, under one covariance shared by the classes (shrunk towards a multiple of the
identity by the Ledoit-Wolf rule, since there are fewer photos than feature dimensions), and
turns it into a factor in (0, 1):

    factor = sigmoid(max((centre - distance) / scale, FLOOR_LOGIT))

`centre` is the distance that 97 % of the validation photos stay below and `scale` a tenth of the
way from the validation median to it: a sharp step, so the photos of the known classes keep their
calibrated scores (factor near 1; a softer step shrinks the scores of right answers too and
undoes the calibration) and photos far from every class lose them (factor near 0). The exported model
multiplies its calibrated scores by the factor: the top class never changes, and the model's
threshold (chosen afterwards on the validation photos' scores, as before) then refuses what the
top score or the distance gives away, in one number that phone SDKs apply from the metadata.

To keep the exported model small, the covariance keeps its RANK largest directions and one
variance (the mean of the others) for the rest of the space; the distance is computed as two sums
of squares (in those directions, and in the rest), which stays accurate when quantised.
An `other` class (photos the user knows are none of the classes) takes no part.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from chalicelib.contract.training_job import BACKGROUND_LABEL

RANK = 128  # covariance directions kept: 128 x 1280 values for MobileNetV2 (0.16 MB as int8)
CENTRE_QUANTILE = 0.97  # validation photos whose distance stays below the centre
SPREAD = 0.1  # scale = SPREAD x (centre - validation median)
MIN_VALIDATION = 20  # fewer validation photos than this place no centre: no gate
MIN_PER_CLASS = 2  # training photos a class needs for a mean and a spread
# The factor never falls below sigmoid(-7) (about 0.001): far from every class the scores shrink
# a thousandfold, below any threshold, yet keep their order (the top class never changes).
FLOOR_LOGIT = -7.0


def normalise(features: np.ndarray) -> np.ndarray:
    f = np.asarray(features, np.float64)
    return f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)


def ledoit_wolf(residuals: np.ndarray) -> tuple[np.ndarray, float]:
    """The covariance of centred rows shrunk towards mu x I, and the shrinkage (Ledoit & Wolf, 2004)."""
    n, p = residuals.shape
    sample = residuals.T @ residuals / n
    mu = float(np.trace(sample)) / p
    target_distance = float(np.sum((sample - mu * np.eye(p)) ** 2)) / p
    # mean squared distance of each row's outer product to the sample covariance, without building them
    squares = residuals**2
    spread = (float(np.sum(squares.T @ squares)) / n - float(np.sum(sample**2))) / p / n
    shrinkage = 1.0 if target_distance <= 0 else min(1.0, max(0.0, spread / target_distance))
    return (1 - shrinkage) * sample + shrinkage * mu * np.eye(p), shrinkage


@dataclass(frozen=True)
class Familiarity:
    means: np.ndarray  # (classes, d): mean normalised features of each class (`other` excepted)
    basis: np.ndarray  # (d, r): the covariance's largest directions
    variances: np.ndarray  # (r,): the shrunk covariance's variance along each of them
    residual_variance: float  # its mean variance in every other direction
    centre: float
    scale: float
    shrinkage: float
    classes: list[str]  # the classes `means` stand for

    def distance(self, features: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance to the nearest class mean, one per row."""
        z = normalise(features)
        along = z @ self.basis  # (n, r)
        rest = z - along @ self.basis.T  # the part outside the kept directions
        mean_along = self.means @ self.basis
        mean_rest = self.means - mean_along @ self.basis.T
        d_along = (((along[:, None, :] - mean_along[None]) ** 2) / self.variances).sum(-1)
        d_rest = ((rest[:, None, :] - mean_rest[None]) ** 2).sum(-1) / self.residual_variance
        return np.asarray((d_along + d_rest).min(axis=1))

    def factor(self, features: np.ndarray) -> np.ndarray:
        return factor_of(self.distance(features), self.centre, self.scale)

    def constants(self) -> dict[str, np.ndarray]:
        """What the exported graph computes the factor from (model.FamiliarityGate's weights)."""
        mean_along = self.means @ self.basis
        return {
            "basis": self.basis.astype(np.float32),
            "inverse_sd": (1 / np.sqrt(self.variances)).astype(np.float32),
            "means_along": (mean_along / np.sqrt(self.variances)).astype(np.float32),
            "means_rest": ((self.means - mean_along @ self.basis.T) / np.sqrt(self.residual_variance)).astype(np.float32),
            "inverse_residual_sd": np.array([1 / np.sqrt(self.residual_variance)], np.float32),
            "centre_scale": np.array([self.centre, self.scale], np.float32),
        }

    def summary(self, validation_distances: np.ndarray) -> dict[str, Any]:
        return {
            "method": "Mahalanobis distance of L2-normalised pooled features to the nearest class mean; "
                      "shared Ledoit-Wolf covariance, largest directions kept + one variance for the rest",
            "rank": int(self.basis.shape[1]),
            "shrinkage": round(self.shrinkage, 6),
            "centre": round(self.centre, 6),
            "scale": round(self.scale, 6),
            "classes": self.classes,
            "validation_distance_quantiles": {
                str(q): round(float(np.quantile(validation_distances, q)), 4) for q in (0.5, 0.9, 0.95, 0.99)},
        }


def factor_of(distance: np.ndarray, centre: float, scale: float) -> np.ndarray:
    """sigmoid(max((centre - distance) / scale, FLOOR_LOGIT))."""
    logit = np.maximum((centre - np.asarray(distance, np.float64)) / scale, FLOOR_LOGIT)
    return np.asarray(1.0 / (1.0 + np.exp(-np.minimum(logit, 60.0))))


def fit(train_features: np.ndarray, train_labels: np.ndarray, validation_features: np.ndarray,
        validation_labels: np.ndarray, classes: list[str], rank: int = RANK) -> Familiarity | None:
    """The gate fitted on the training photos' features, its centre and scale on the validation photos'.

    None (no gate: every factor 1) when a class has fewer than MIN_PER_CLASS training photos or there
    are fewer than MIN_VALIDATION validation photos of the classes: too few to tell near from far.
    """
    labels = np.asarray(train_labels, int)
    kept = [k for k, name in enumerate(classes) if name != BACKGROUND_LABEL]
    if not kept or any((labels == k).sum() < MIN_PER_CLASS for k in kept):
        return None
    validation = np.asarray(validation_labels, int)
    in_classes = np.isin(validation, kept)
    if in_classes.sum() < MIN_VALIDATION:
        return None
    z = normalise(train_features)
    members = np.isin(labels, kept)
    means = np.stack([z[labels == k].mean(axis=0) for k in kept])
    residuals = z[members] - means[np.searchsorted(kept, labels[members])]
    covariance, shrinkage = ledoit_wolf(residuals)
    values, vectors = np.linalg.eigh(covariance)  # ascending
    rank = min(rank, len(values) - 1)
    basis, variances = vectors[:, -rank:][:, ::-1], values[-rank:][::-1]
    residual_variance = float(values[:-rank].mean())
    draft = Familiarity(means, basis, variances, residual_variance, 0.0, 1.0, shrinkage, [classes[k] for k in kept])
    distances = draft.distance(np.asarray(validation_features)[in_classes])
    centre = float(np.quantile(distances, CENTRE_QUANTILE))
    scale = max(SPREAD * (centre - float(np.median(distances))), 1e-6)
    return Familiarity(means, basis, variances, residual_variance, centre, scale, shrinkage, draft.classes)
