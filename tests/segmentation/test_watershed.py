import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import remove_small_objects
from skimage.segmentation import relabel_sequential, watershed

from samzoo.segmentation.watershed import (BOUNDARY_THRESHOLD, CENTER_THRESHOLD, FOREGROUND_THRESHOLD,
                                           border_regions, watershed_from_maps)
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


def _reference(maps, min_size):
    """The straightforward formulation: scikit-image on the whole image, then relabel."""
    foreground = maps[0] > FOREGROUND_THRESHOLD
    seeds, _ = ndi.label(foreground & (maps[1] < CENTER_THRESHOLD) & (maps[2] > BOUNDARY_THRESHOLD))
    seeds = remove_small_objects(seeds, max_size=max(min_size // 4, 1) - 1)
    labels = remove_small_objects(watershed(-maps[2], markers=seeds, mask=foreground), max_size=min_size - 1)
    return relabel_sequential(labels)[0]


def test_same_labels_as_the_whole_image_formulation(hela_frame):
    # real objects (targets of a real segmentation, blurred and noised) in one corner: the
    # bounding-box shortcut and the one-pass size filter must change nothing
    _, seg = hela_frame
    maps = np.zeros((3, 300, 400), np.float32)
    maps[:, 150:, 200:] = instance_targets(seg[100:250, 200:400].astype(np.int32))
    rng = np.random.default_rng(0)
    maps = np.clip(ndi.gaussian_filter(maps, (0, 1, 1)) + rng.normal(0, 0.15, maps.shape), 0, 1).astype(np.float32)
    for min_size in (1, 10, 25):
        expected = _reference(maps, min_size)
        got = watershed_from_maps(maps, min_size=min_size)
        assert got.dtype == np.int32 and got.max() > 5
        np.testing.assert_array_equal(got, expected)



def test_border_regions_are_the_unseeded_foreground_at_the_image_edge(hela_frame):
    _, seg = hela_frame
    crop = seg[100:356, 200:456].astype(np.int32)
    maps = instance_targets(crop)
    labels = watershed_from_maps(maps, min_size=10)
    # objects cut by the crop's edge: in perfect maps they are whole, so seeded and found
    assert border_regions(maps, labels, min_size=10).max() == 0
    # remove the seeds of every object touching the edge: their foreground is left over
    edge = np.unique(np.concatenate([crop[0], crop[-1], crop[:, 0], crop[:, -1]]))
    edge = edge[edge > 0]
    unseeded = maps.copy()
    unseeded[2][np.isin(crop, edge)] = 0
    labels = watershed_from_maps(unseeded, min_size=10)
    regions = border_regions(unseeded, labels, min_size=10)
    assert regions.max() >= len(edge) - 2  # touching ones may join (one foreground region)
    assert not (regions > 0)[labels > 0].any()
    assert set(np.unique(crop[regions > 0])) <= set(edge) | {0}
    inner = np.zeros((3, 64, 64), np.float32)
    inner[0, 20:30, 20:30] = 1  # unseeded, but inside the image: not a border region
    assert border_regions(inner, np.zeros((64, 64), int), min_size=4).max() == 0
