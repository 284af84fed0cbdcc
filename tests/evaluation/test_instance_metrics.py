import numpy as np
import pytest
from scipy import ndimage as ndi

from samzoo.evaluation import evaluate_instances, evaluate_many, mean_segmentation_accuracy
from samzoo.segmentation.classical import classical_baseline


def test_hand_made_cases():
    gt = np.zeros((20, 40), int)
    gt[2:12, 2:12] = 1      # 100 px
    gt[2:12, 20:30] = 2
    assert mean_segmentation_accuracy(gt, gt) == 1.0
    missed = np.where(gt == 2, 0, gt)
    m = evaluate_instances(missed, gt)
    assert (m["sa50"], m["precision"], m["recall"]) == (0.5, 1.0, 0.5)
    shifted = np.zeros_like(gt)
    shifted[2:12, 4:14] = 1  # IoU 80/120 = 0.667 with object 1
    shifted[2:12, 20:30] = 2
    # object 1 matches at thresholds 0.50..0.65 (4 of 10), object 2 everywhere
    sa = [(1 + (t <= 0.65 + 1e-9)) / (1 + (t <= 0.65 + 1e-9) + 2 * (t > 0.65 + 1e-9)) for t in np.arange(0.5, 1, 0.05)]
    assert mean_segmentation_accuracy(shifted, gt) == pytest.approx(np.mean(sa))
    assert mean_segmentation_accuracy(np.zeros_like(gt), np.zeros_like(gt)) == 1.0


def test_real_labels(hela_frame):
    _, gt = hela_frame
    permuted = np.zeros_like(gt)
    ids = np.unique(gt)[1:]
    for new, old in zip(np.random.default_rng(0).permutation(ids), ids):
        permuted[gt == old] = new
    assert mean_segmentation_accuracy(permuted, gt) == 1.0
    eroded = np.where(ndi.grey_erosion(gt, size=5) == gt, gt, 0)
    m = evaluate_instances(eroded, gt)
    assert 0 < m["msa"] < 1 and m["sa50"] > 0.9
    per_image, overall = evaluate_many([(gt, gt), (eroded, gt)])
    assert per_image[0]["msa"] == 1.0 and per_image[1]["msa"] < overall["msa"] < 1.0


def test_classical_baseline_is_a_fair_reference(hela_frame):
    image, gt = hela_frame
    m = evaluate_instances(classical_baseline(image), gt)
    assert m["msa"] > 0.4 and m["sa50"] > 0.6   # measured: 0.448 and 0.653 on held-out frame 17
    assert classical_baseline(np.full((32, 32), 5.0)).max() == 0
