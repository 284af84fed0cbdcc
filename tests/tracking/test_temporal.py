"""Temporal repair of merged objects: an object covering two objects of a neighbouring frame is cut."""

import numpy as np
import pytest

from samzoo.tracking.lineage import graph_from_tracks
from samzoo.tracking.linking import link_overlap
from samzoo.tracking.metrics import evaluate_tracking
from samzoo.tracking.temporal import add_border_objects, cut_by_markers, split_by_neighbours
from tracking_helpers import disk, late_division_movie


def test_cut_by_markers_finds_the_neck_of_two_lobes_but_not_of_an_ellipse():
    shape = (40, 60)
    peanut = disk(shape, (20, 22), 8) | disk(shape, (20, 36), 8)
    markers = disk(shape, (20, 20), 3) * 1 + disk(shape, (20, 38), 3) * 2
    parts, neck = cut_by_markers(peanut, markers)
    assert neck < 0.9
    assert np.array_equal(parts > 0, peanut)
    assert abs(int((parts == 1).sum()) - int((parts == 2).sum())) < 0.1 * peanut.sum()
    yy, xx = np.mgrid[:40, :60]
    ellipse = (yy - 20) ** 2 / 8 ** 2 + (xx - 30) ** 2 / 14 ** 2 <= 1
    _, neck = cut_by_markers(ellipse, disk(shape, (20, 22), 3) * 1 + disk(shape, (20, 38), 3) * 2)
    assert neck > 0.95  # cut through its middle: as thick there as anywhere
    _, neck = cut_by_markers(peanut, disk(shape, (20, 22), 3) * 1)
    assert neck == np.inf  # one marker only


def test_daughters_merged_after_division_are_cut_back_to_the_division():
    merged, truth, tracks = late_division_movie()
    fixed = split_by_neighbours(merged)
    assert len(np.unique(merged[2])) == 2  # the input is left as it was
    for t in range(len(truth)):  # the cut objects are the true ones (under other labels)
        pairs = {(a, b) for a, b in zip(truth[t].ravel(), fixed[t].ravel()) if a or b}
        assert len(pairs) == len({a for a, _ in pairs}) == len({b for _, b in pairs}) == len(np.unique(truth[t])) - 1
    assert np.array_equal(fixed[:2], merged[:2])  # the compact mother is left whole
    gt = (graph_from_tracks(truth, tracks), truth)
    scores = evaluate_tracking((link_overlap(fixed), fixed), gt)
    assert scores["TRA"] == 1.0 and scores["div_F1"] == 1.0


def test_two_neighbours_merged_for_a_while_are_cut_forward_and_backward():
    shape = (60, 90)
    truth = np.zeros((6,) + shape, dtype=np.uint16)
    gaps = (14, 11, 8, 8, 8, 12)  # half the distance between the nuclei: they touch in frames 2-4
    for t, gap in enumerate(gaps):
        truth[t][disk(shape, (30, 45 - gap), 8)] = 1
        truth[t][disk(shape, (30, 45 + gap), 8) & (truth[t] == 0)] = 2
    merged = truth.copy()
    merged[2:5][merged[2:5] > 0] = 1
    fixed = split_by_neighbours(merged)
    assert all(len(np.unique(frame)) == 3 for frame in fixed)
    tracks = np.array([[1, 0, 5, 0], [2, 0, 5, 0]])
    gt = (graph_from_tracks(truth, tracks), truth)
    assert evaluate_tracking((link_overlap(fixed), fixed), gt)["TRA"] == 1.0


def test_a_compact_object_is_not_cut_and_well_segmented_movies_stay_as_they_are(small_movie):
    shape = (50, 50)
    masks = np.zeros((2,) + shape, dtype=np.uint16)
    masks[0][disk(shape, (25, 19), 5)] = 1  # two small objects become one round one
    masks[0][disk(shape, (25, 31), 5)] = 2
    masks[1][disk(shape, (25, 25), 11)] = 1
    assert np.array_equal(split_by_neighbours(masks), masks)
    assert np.array_equal(split_by_neighbours(small_movie.masks), small_movie.masks)


def test_lazy_masks_are_changed_in_place_only(tmp_path):
    import zarr

    merged, _, _ = late_division_movie()
    store = zarr.create_array(str(tmp_path / "m.zarr"), shape=merged.shape, chunks=(1, *merged.shape[1:]),
                              dtype=np.uint32)
    store[:] = merged
    with pytest.raises(ValueError, match="in_place"):
        split_by_neighbours(store)
    split_by_neighbours(store, in_place=True)
    assert np.array_equal(store[:], split_by_neighbours(merged.astype(np.uint32)))


def test_merged_balls_are_cut_in_3d():
    zz, yy, xx = np.mgrid[:16, :24, :48]

    def ball(x):
        return (zz - 8) ** 2 + (yy - 12) ** 2 + (xx - x) ** 2 <= 6 ** 2

    truth = np.zeros((3, 16, 24, 48), dtype=np.uint16)
    for t, gap in enumerate((9, 6, 9)):  # they touch in frame 1
        truth[t][ball(24 - gap)] = 1
        truth[t][ball(24 + gap) & (truth[t] == 0)] = 2
    merged = truth.copy()
    merged[1][merged[1] > 0] = 1
    fixed = split_by_neighbours(merged)
    assert len(np.unique(fixed[1])) == 3
    assert np.array_equal(fixed[1] == fixed[1][8, 12, 18], truth[1] == 1)


def test_border_regions_that_continue_an_object_are_added():
    shape = (40, 40)
    masks = np.zeros((4,) + shape, dtype=np.uint32)
    candidates = np.zeros_like(masks)
    # a nucleus leaving through the top edge: found in frames 0-1, only a sliver in 2 and 3
    masks[0][disk(shape, (8, 20), 6)] = 1
    masks[1][disk(shape, (5, 20), 6)] = 1
    candidates[2][:4, 16:25] = 1
    candidates[3][:2, 17:24] = 1
    # a fragment at the right edge in one frame only: continues nothing
    candidates[1][20:25, 37:] = 1
    out = add_border_objects(masks, candidates)
    assert out[2][:4, 16:25].min() > 0 and out[3][:2, 17:24].min() > 0  # the second through the first
    assert out[1][20:25, 37:].max() == 0
    assert np.array_equal(out[:2][masks[:2] > 0], masks[:2][masks[:2] > 0]) and masks[2].max() == 0
    # a nucleus entering: the backward pass
    entering = add_border_objects(masks[::-1].copy(), candidates[::-1].copy())
    assert np.array_equal(entering[::-1] > 0, out > 0)
    with pytest.raises(ValueError, match="shape"):
        add_border_objects(masks, candidates[:2])
