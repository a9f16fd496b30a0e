"""The familiarity gate: NumPy fit (training.familiarity). The same factor computed in the exported graph:
tests/integration/test_familiarity_graph.py."""
from __future__ import annotations

import numpy as np

from data_fixtures import clusters
from training import familiarity


def test_ledoit_wolf_shrinks_more_when_photos_are_few():
    rng = np.random.default_rng(0)
    few = rng.normal(size=(20, 40))
    many = rng.normal(size=(4000, 40)) * np.linspace(0.5, 2.0, 40)  # truly anisotropic, well estimated
    _, shrink_few = familiarity.ledoit_wolf(few - few.mean(0))
    _, shrink_many = familiarity.ledoit_wolf(many - many.mean(0))
    assert 0.0 <= shrink_many < 0.05 < shrink_few <= 1.0
    covariance, _ = familiarity.ledoit_wolf(many - many.mean(0))
    np.testing.assert_allclose(np.diag(covariance), np.linspace(0.5, 2.0, 40) ** 2, rtol=0.15)


def test_gate_keeps_familiar_photos_and_drops_unfamiliar_ones():
    rng = np.random.default_rng(1)
    train, labels, centres = clusters(rng, 600)
    validation, val_labels, _ = clusters(np.random.default_rng(1), 200)  # same centres (same seed), new noise
    validation = np.abs(centres[val_labels] + 0.3 * rng.normal(size=validation.shape))
    gate = familiarity.fit(train, labels, validation, val_labels, ["a", "b", "c"], rank=8)
    assert gate is not None and gate.basis.shape == (48, 8)
    kept = gate.factor(validation)
    # the centre sits at the validation photos' 97th percentile: about 3 % fall below one half
    assert 0.01 <= np.mean(kept < 0.5) <= 0.06
    assert np.median(kept) > 0.95
    strangers = np.abs(rng.normal(size=(200, 48)) * 2)  # nowhere near any class
    assert np.mean(gate.factor(strangers) < 0.5) > 0.95
    # the exact Mahalanobis distance when no direction is cut (rank = all but one)
    full = familiarity.fit(train, labels, validation, val_labels, ["a", "b", "c"], rank=47)
    z = familiarity.normalise(validation)
    residuals = familiarity.normalise(train) - np.stack([familiarity.normalise(train)[labels == k].mean(0) for k in range(3)])[labels]
    precision = np.linalg.inv(familiarity.ledoit_wolf(residuals)[0])
    exact = np.min([np.einsum("ij,jk,ik->i", z - m, precision, z - m) for m in full.means], axis=0)
    np.testing.assert_allclose(full.distance(validation), exact, rtol=1e-6)


def test_no_gate_without_enough_photos_and_other_takes_no_part():
    rng = np.random.default_rng(2)
    train, labels, _ = clusters(rng, 60)
    assert familiarity.fit(train, labels, train[:10], labels[:10], ["a", "b", "c"]) is None  # 10 validation photos
    labels_one_short = labels.copy()
    labels_one_short[labels == 2] = 0
    labels_one_short[np.flatnonzero(labels == 2)[0]] = 2
    assert familiarity.fit(train, labels_one_short, train, labels, ["a", "b", "c"]) is None  # one photo of c
    gate = familiarity.fit(train, labels, train, labels, ["a", "other", "c"], rank=8)
    assert gate is not None and gate.classes == ["a", "c"] and gate.means.shape[0] == 2
