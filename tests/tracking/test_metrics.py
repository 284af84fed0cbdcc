import math

import numpy as np
import pytest

from samzoo.errors import InputError
from samzoo.tracking.formats import to_ctc
from samzoo.tracking.lineage import detections, graph_from_tracks, node_index
from samzoo.tracking.metrics import evaluate_ctc_folders, evaluate_tracking


def test_perfect_result_scores_one(small_movie_gt):
    scores = evaluate_tracking(small_movie_gt, small_movie_gt)
    assert scores["TRA"] == scores["DET"] == scores["LNK"] == scores["div_F1"] == 1.0
    assert scores["gt_divisions"] == scores["pred_divisions"] >= 3


def test_errors_lower_the_scores(division_movie):
    masks, tracks = division_movie
    gt = graph_from_tracks(masks, tracks)
    pred = gt.copy()
    idx = node_index(pred)
    pred.remove_edge(idx[(1, 1)], idx[(2, 3)])  # a missed division: one daughter starts a new track
    scores = evaluate_tracking((pred, masks), (gt, masks))
    assert scores["DET"] == 1.0 and scores["LNK"] < 1.0 and scores["TRA"] < 1.0
    assert scores["div_F1"] == 0.0 and scores["fn_edges"] == 1
    missing = masks.copy()
    missing[3][missing[3] == 4] = 0  # a missed object
    pred = graph_from_tracks(missing, tracks)
    assert evaluate_tracking((pred, missing), (gt, masks))["DET"] < 1.0


def test_no_divisions_gives_nan_division_f1(division_movie):
    masks, _ = division_movie
    single = masks[:2]
    gt = graph_from_tracks(single, np.array([[1, 0, 1, 0]]))
    assert math.isnan(evaluate_tracking((gt, single), (gt, single))["div_F1"])


def test_folders_give_the_same_numbers(small_movie, small_movie_gt, tmp_path):
    gt_dir = small_movie.save_ctc(tmp_path / "gt")
    pred = small_movie_gt[0].copy()
    pred.remove_edges_from(list(pred.edges)[:5])
    to_ctc(pred, small_movie.masks, tmp_path / "res")
    in_memory = evaluate_tracking((pred, small_movie.masks), small_movie_gt)
    from_disk = evaluate_ctc_folders(tmp_path / "res", gt_dir)
    for key in ("TRA", "DET", "LNK", "div_F1"):
        assert from_disk[key] == pytest.approx(in_memory[key])
    assert in_memory["TRA"] < 1.0


def test_shape_mismatch(division_movie):
    masks, tracks = division_movie
    gt = graph_from_tracks(masks, tracks)
    with pytest.raises(InputError, match="shape"):
        evaluate_tracking((gt, masks[:3]), (gt, masks))


def test_a_division_is_credited_once_within_the_frame_buffer():
    """One true division (frame 2) found both one frame early and one frame late on two branches
    of a predicted lineage: traccuracy 0.3 alone fails here with KeyError 'FN_DIV'."""
    gt_masks = np.zeros((6, 20, 40), dtype=np.uint16)
    gt_masks[:3, 5:15, 10:30] = 1
    gt_masks[3:, 5:15, 10:19], gt_masks[3:, 5:15, 21:30] = 2, 3
    gt = graph_from_tracks(gt_masks, np.array([[1, 0, 2, 0], [2, 3, 5, 1], [3, 3, 5, 1]]))
    masks = np.zeros_like(gt_masks)
    masks[:2, 5:15, 10:30] = 1
    masks[2, 5:15, 10:22], masks[2, 5:15, 22:30] = 1, 2  # the early division's two objects
    masks[3:, 5:15, 10:19], masks[3:, 5:15, 21:30] = 1, 2
    pred = detections(masks)
    idx = node_index(pred)
    pred.add_edges_from([(idx[0, 1], idx[1, 1]), (idx[1, 1], idx[2, 1]), (idx[1, 1], idx[2, 2]),  # early
                         (idx[2, 1], idx[3, 1]), (idx[2, 2], idx[3, 2]),
                         (idx[3, 1], idx[4, 1]), (idx[3, 1], idx[4, 2]),  # late
                         (idx[4, 1], idx[5, 1]), (idx[4, 2], idx[5, 2])])
    exact = evaluate_tracking((pred, masks), (gt, gt_masks))
    assert exact["div_F1"] == 0.0 and exact["pred_divisions"] == 2
    for buffer in (1, 2):
        scores = evaluate_tracking((pred, masks), (gt, gt_masks), division_frame_buffer=buffer)
        # one of the two predicted divisions matches the true one, the other stays wrong
        assert scores["div_recall"] == 1.0 and scores["div_precision"] == 0.5
