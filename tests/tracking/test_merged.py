"""Late divisions: daughters merged by the segmentation for a frame or two, split back at their neck."""

import numpy as np

from samzoo.tracking.lineage import graph_from_tracks
from samzoo.tracking.linking import link_overlap
from samzoo.tracking.merged import neck_split, split_late_divisions
from samzoo.tracking.metrics import evaluate_tracking
from tracking_helpers import disk, late_division_movie


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
    merged, truth, tracks = late_division_movie()
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
