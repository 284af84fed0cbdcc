"""Late divisions: daughters merged by the segmentation for a frame or two, split back at their neck."""

import numpy as np

from samzoo.tracking.lineage import graph_from_tracks
from samzoo.tracking.linking import link_overlap
from samzoo.tracking.merged import neck_split, split_late_divisions
from samzoo.tracking.metrics import evaluate_tracking
from tracking_helpers import disk


def _late_division_movie():
    """A nucleus (frames 0-1) divides; its daughters touch in frames 2-3 (one object in the
    'segmentation', two in the truth) and are apart in frames 4-5."""
    shape = (64, 80)
    truth = np.zeros((6,) + shape, dtype=np.uint16)
    truth[0][disk(shape, (32, 38), 9)] = 1
    truth[1][disk(shape, (32, 40), 9)] = 1
    for t, gap in zip(range(2, 6), (7, 8, 11, 13)):
        truth[t][disk(shape, (32, 40 - gap), 7)] = 2
        truth[t][disk(shape, (32, 40 + gap), 7) & (truth[t] == 0)] = 3
    tracks = np.array([[1, 0, 1, 0], [2, 2, 5, 1], [3, 2, 5, 1]])
    merged = truth.copy()
    merged[2:4][merged[2:4] > 0] = 2  # the segmentation sees one peanut-shaped object
    return merged, truth, tracks


def test_neck_split_cuts_two_lobes_but_not_one_ellipse():
    shape = (40, 60)
    peanut = disk(shape, (20, 22), 8) | disk(shape, (20, 36), 8)
    lobes = neck_split(peanut)
    assert len(lobes) == 2 and abs(int(lobes[0].sum()) - int(lobes[1].sum())) < 0.1 * peanut.sum()
    yy, xx = np.mgrid[:40, :60]
    ellipse = (yy - 20) ** 2 / 8 ** 2 + (xx - 30) ** 2 / 14 ** 2 <= 1
    assert neck_split(ellipse) == []
    assert neck_split(np.zeros(shape, bool)) == []


def test_late_division_moves_back_to_the_true_frame():
    merged, truth, tracks = _late_division_movie()
    gt = (graph_from_tracks(truth, tracks), truth)
    graph = link_overlap(merged)
    before = evaluate_tracking((graph, merged), gt)
    assert before["div_F1"] == 0.0  # the linker sees the division two frames late
    fixed_graph, fixed = split_late_divisions(graph, merged)
    after = evaluate_tracking((fixed_graph, fixed), gt)
    assert after["div_F1"] == 1.0 and after["TRA"] == 1.0
    assert (merged[2:4] > 0).sum() == (fixed[2:4] > 0).sum()  # pixels are relabelled, not lost
    assert len(np.unique(merged[2])) == 2  # the inputs are left as they were


def test_well_segmented_divisions_are_left_alone(small_movie, small_movie_gt):
    graph = link_overlap(small_movie.masks)
    fixed_graph, fixed = split_late_divisions(graph, small_movie.masks)
    assert np.array_equal(fixed, small_movie.masks)
    assert sorted(fixed_graph.edges) == sorted(graph.edges)
