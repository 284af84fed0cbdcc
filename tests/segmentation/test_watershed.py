import numpy as np

from samzoo.segmentation.watershed import watershed_from_maps
from samzoo.training.data import instance_targets


def test_perfect_maps_give_back_the_instances(hela_frame):
    _, seg = hela_frame
    crop = seg[100:356, 200:456].astype(np.int32)
    labels = watershed_from_maps(instance_targets(crop), min_size=10)
    # every ground-truth object of reasonable size comes back as exactly one instance
    for label in np.unique(crop)[1:]:
        obj = crop == label
        if obj.sum() < 50:
            continue
        found = np.unique(labels[obj])
        found = found[found > 0]
        assert len(found) == 1
        overlap = (labels == found[0]) & obj
        assert overlap.sum() / ((labels == found[0]) | obj).sum() > 0.8


def test_empty_foreground():
    assert watershed_from_maps(np.zeros((3, 16, 16), np.float32)).max() == 0
