import numpy as np

from samzoo.tracking.geometry import estimate_drift, overlaps, shift_labels
from tracking_helpers import disk


def test_overlaps_matches_a_direct_count():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 4, (30, 30)), rng.integers(0, 5, (30, 30))
    la, lb = np.array([3, 1, 2]), np.array([4, 2, 1, 3])
    expected = np.array([[((a == i) & (b == j)).sum() for j in lb] for i in la])
    assert np.array_equal(overlaps(a, b, la, lb), expected)


def test_shift_and_drift_estimate():
    labels = np.zeros((80, 90), dtype=np.int32)
    labels[disk(labels.shape, (30, 40), 6)] = 1
    labels[disk(labels.shape, (50, 20), 5)] = 2
    moved = shift_labels(labels, (7, -12))
    assert moved[37, 28] == 1 and moved[57, 8] == 2 and (moved == 1).sum() == (labels == 1).sum()
    assert np.allclose(estimate_drift(labels, moved), (7, -12))
    assert np.allclose(estimate_drift(labels, np.zeros_like(labels)), 0)
