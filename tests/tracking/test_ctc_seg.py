"""CTC SEG and tracking scores against real Cell Tracking Challenge ground truth (a few frames)."""

import numpy as np
import pytest
import tifffile

from samzoo.errors import InputError
from samzoo.tracking.ctc_seg import SegAnnotation, object_scores, read_seg_folder, seg_measure
from samzoo.tracking.formats import read_ctc, write_ctc
from samzoo.tracking.metrics import evaluate_ctc_folders
from tracking_helpers import ctc_subset

SIM = "ctc/Fluo-N2DH-SIM+"


def test_object_scores_follow_the_ctc_definition():
    reference = np.zeros((10, 10), np.uint16)
    reference[0:4, 0:4] = 1  # 16 px
    reference[6:10, 0:4] = 2  # 16 px
    reference[0:2, 6:10] = 5  # 8 px
    result = np.zeros_like(reference)
    result[0:4, 0:5] = 7  # covers all of 1: Jaccard 16 / 20
    result[6:10, 0:2] = 3  # covers exactly half of 2: no match
    result[0:2, 6:9] = 4  # covers 6 of 8 px of 5: Jaccard 6 / 8
    assert np.allclose(object_scores(result, reference), [0.8, 0.0, 0.75])
    assert len(object_scores(result, np.zeros_like(reference))) == 0
    with pytest.raises(InputError, match="differ in shape"):
        object_scores(result, reference[:5])


def test_one_result_object_may_match_two_references():
    reference = np.zeros((4, 12), np.uint16)
    reference[:, 0:4], reference[:, 4:8] = 1, 2
    result = np.zeros_like(reference)
    result[:, 0:7] = 9  # all of 1 and 3/4 of 2: it matches both (the CTC allows it), Jaccard 16/28 and 12/32
    assert np.allclose(object_scores(result, reference), [16 / 28, 12 / 32])


def test_slices_of_3d_frames(tmp_path):
    reference = np.zeros((6, 6), np.uint16)
    reference[1:3, 1:3] = 4
    tifffile.imwrite(tmp_path / "man_seg_001_002.tif", reference)
    result = np.zeros((2, 3, 6, 6), np.uint16)
    result[1, 2][1:3, 1:4] = 1
    annotations = read_seg_folder(tmp_path)
    assert annotations == [SegAnnotation(1, 2, tmp_path / "man_seg_001_002.tif")]
    assert seg_measure(result, annotations)["SEG"] == pytest.approx(4 / 6)
    with pytest.raises(InputError, match="annotates frame 1"):
        seg_measure(result[:1], annotations)


@pytest.fixture(scope="module")
def sim_gt(shared_data, tmp_path_factory):
    """Frames 8-12 of Fluo-N2DH-SIM+ 01 (two divisions at frame 10) with their TRA and SEG ground truth."""
    return ctc_subset(shared_data / SIM, tmp_path_factory.mktemp("sim"), range(8, 13)) / "01_GT"


def _result_from(gt, tmp_path, edit=None):
    """A CTC result folder holding the ground truth's TRA tracks, optionally edited."""
    _, masks, tracks = read_ctc(gt / "TRA")
    if edit:
        masks, tracks = edit(masks.copy(), tracks.copy())
    return write_ctc(tmp_path / "res", masks, tracks, first_frame=8)


def test_ground_truth_as_result_scores_one(sim_gt, tmp_path):
    scores = evaluate_ctc_folders(_result_from(sim_gt, tmp_path), sim_gt)
    assert scores["TRA"] == scores["DET"] == scores["LNK"] == 1.0
    assert scores["gt_divisions"] >= 2 and scores["div_F1"] == 1.0
    assert scores["seg_frames"] == 5 and scores["seg_objects"] > 100
    # SIM+'s TRA markers are its segmentation: SEG is exactly 1 too
    assert scores["SEG"] == 1.0


def test_seg_annotations_as_result_score_seg_one(sim_gt, tmp_path):
    def seg_labels(masks, tracks):
        # the SEG masks relabelled to the TRA ids of the objects they cover, so that the tracks stay valid
        for t in range(len(masks)):
            seg = tifffile.imread(sim_gt / "SEG" / f"man_seg{8 + t:03d}.tif")
            frame = np.zeros_like(masks[t])
            for label in np.unique(seg[seg > 0]):
                ids, counts = np.unique(masks[t][seg == label], return_counts=True)
                frame[seg == label] = ids[np.argmax(counts)]
            masks[t] = frame
        return masks, tracks

    scores = evaluate_ctc_folders(_result_from(sim_gt, tmp_path, seg_labels), sim_gt)
    assert scores["SEG"] == 1.0 and scores["TRA"] > 0.99


def test_a_missing_object_lowers_every_score(sim_gt, tmp_path):
    def remove_one(masks, tracks):
        label = tracks[0, 0]
        masks[masks == label] = 0
        return masks, tracks[1:]

    perfect = evaluate_ctc_folders(_result_from(sim_gt, tmp_path / "a"), sim_gt)
    worse = evaluate_ctc_folders(_result_from(sim_gt, tmp_path / "b", remove_one), sim_gt)
    n_objects = perfect["seg_objects"]
    assert worse["SEG"] == pytest.approx(1 - 5 / n_objects)  # its 5 frames each lose one object
    assert worse["TRA"] < 1 and worse["DET"] < 1 and worse["fn_nodes"] == 5


def test_mismatched_frames_are_named(sim_gt, tmp_path):
    _, masks, tracks = read_ctc(sim_gt / "TRA")
    write_ctc(tmp_path / "res", masks, tracks)  # numbered from 0, the ground truth from 8
    with pytest.raises(InputError, match="begin at frame 0, the ground truth's at frame 8"):
        evaluate_ctc_folders(tmp_path / "res", sim_gt)
