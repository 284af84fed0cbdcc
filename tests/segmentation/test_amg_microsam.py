"""micro-sam's AMG, step by step (the default AMG of SAM-family models)."""

import numpy as np
import pytest
import torch
from segment_anything.utils.amg import build_point_grid

from samzoo.errors import InputError
from samzoo.models.model import ModelConfig, SamzooModel
from samzoo.segmentation import amg_microsam, automatic
from samzoo.segmentation.amg_microsam import (MaskCandidate, near_tile_edge, paint_microsam, remove_small_regions,
                                              sam_grid, segment_amg_microsam, tile_candidates)
from samzoo.segmentation.automatic import segment_amg
from samzoo.segmentation.embeddings import compute_embeddings
from samzoo.segmentation.predictor import Prompt, predict
from samzoo.segmentation.tiling import Tile


@pytest.fixture(scope="module")
def sam_family_model():
    """An untrained samzoo_tiny at 128 input with SAM's own input handling, as loaded SAM files get."""
    torch.manual_seed(0)
    return SamzooModel(ModelConfig("samzoo_tiny", 128, ais_decoder=None, sam_input=True, name="test")).eval()


def _candidate(mask: np.ndarray, score: float = 0.9) -> MaskCandidate:
    return MaskCandidate.of(mask, score, Tile(0, (0, 0) + mask.shape, (0, 0) + mask.shape))


def test_sam_grid_is_sams_point_grid_over_the_whole_tile():
    tile = Tile(3, (10, 20, 110, 70), (30, 40, 90, 50))  # the grid covers the outer region, halo included
    expected = build_point_grid(4) * np.array([50, 100])  # SAM's (x, y) in [0, 1], scaled to (width, height)
    np.testing.assert_allclose(sam_grid(tile, 4), expected[:, ::-1] + (10, 20))


def test_painting_is_microsams_mask_data_to_segmentation():
    big = np.zeros((40, 40), bool)
    big[:20, :20] = True
    strip = np.zeros((40, 40), bool)
    strip[:20, 8:12] = True  # painted over the larger mask, and cuts it in two
    labels = paint_microsam([_candidate(strip), _candidate(big)], (40, 40))
    assert labels.dtype == np.int32 and labels.max() == 3  # each connected part its own object
    assert len(np.unique(labels[:20, :8])) == 1 and labels[0, 0] != labels[0, 19]
    assert labels[0, 9] not in (0, labels[0, 0], labels[0, 19])
    assert (labels[20:] == 0).all()
    # the largest object, larger than the background, is taken for background and removed
    image = np.zeros((20, 24), bool)
    image[:, :20] = True
    small = np.zeros((20, 24), bool)
    small[5:9, 5:9] = True
    labels = paint_microsam([_candidate(image), _candidate(small)], (20, 24))
    assert labels.max() == 1 and (labels == 1).sum() == 16


def test_boxes_near_an_inner_tile_edge_are_dropped():
    tile = Tile(1, (0, 100, 200, 300), (0, 130, 170, 270))
    shape = (200, 400)
    boxes = [(105, 50, 150, 80),  # x0 within 20 pixels of the tile's left edge, inside the image: dropped
             (150, 0, 190, 30),  # y0 at the image's top edge: kept
             (150, 60, 200, 90)]  # nowhere near an edge: kept
    candidates = [MaskCandidate(b, np.ones((b[3] - b[1] + 1, b[2] - b[0] + 1), bool), 0.9, 1) for b in boxes]
    assert near_tile_edge(candidates, tile, shape).tolist() == [True, False, False]


def test_remove_small_regions_like_sams():
    mask = np.zeros((20, 20), bool)
    mask[2:12, 2:12] = True
    mask[5:7, 5] = False  # a hole of 2 pixels
    mask[15:17, 15] = True  # an island of 2 pixels
    filled, changed = remove_small_regions(mask, 5, "holes")
    assert changed and filled[5:7, 5].all() and filled.sum() == mask.sum() + 2
    cleaned, changed = remove_small_regions(filled, 5, "islands")
    assert changed and not cleaned[15:17, 15].any() and cleaned.sum() == 100
    assert not remove_small_regions(cleaned, 5, "islands")[1]
    # every island too small: the largest is kept
    islands = np.zeros((10, 10), bool)
    islands[1, 1:3] = islands[6:9, 6] = True
    kept, changed = remove_small_regions(islands, 5, "islands")
    assert changed and kept.sum() == 3 and kept[6:9, 6].all()


def test_candidates_are_all_three_masks_and_the_best_is_predicts(sam_family_model, hela_frame, monkeypatch):
    model = sam_family_model
    emb = compute_embeddings(model, hela_frame[0][:100, :120], cache=False)
    tile = emb.tiles[0]
    got = tile_candidates(model, emb, tile, 3, pred_iou_threshold=0.0, stability_threshold=0.0)
    assert len(got) == 27  # no filters: every point's three masks, point by point
    monkeypatch.setattr(amg_microsam, "CPU_PROMPTS_PER_CALL", 4)  # prompts decoded together, as on a GPU
    together = tile_candidates(model, emb, tile, 3, pred_iou_threshold=0.0, stability_threshold=0.0)
    np.testing.assert_allclose([c.score for c in together], [c.score for c in got], atol=1e-5)
    for a, b in zip(together, got):  # the same masks, up to float rounding at the threshold
        assert (a.full_mask(emb.shape) ^ b.full_mask(emb.shape)).sum() <= 0.002 * a.mask.size + 2
    for i, point in enumerate(sam_grid(tile, 3)):
        three = got[3 * i:3 * i + 3]
        best = max(three, key=lambda c: c.score)
        expected = predict(model, emb, {0: Prompt(points=[point], point_labels=[1])}, multimask=True)[0]
        assert best.score == pytest.approx(expected.score, abs=1e-4)
        mask, ref = best.full_mask(emb.shape), expected.full_mask(emb.shape)
        assert (mask ^ ref).sum() <= 0.002 * mask.size  # the same mask, up to float rounding at the threshold


def test_segment_amg_runs_microsams_amg_for_sam_family_models(sam_family_model, tiny_model, hela_frame, monkeypatch):
    image = hela_frame[0][:150, :200]
    emb = compute_embeddings(sam_family_model, image, halo=16, cache=False)
    assert len(emb.tiles) > 1  # tiled: the edge filter and the NMS across tiles run too
    labels = segment_amg(sam_family_model, image, embeddings=emb, points_per_side=2, pred_iou_threshold=0.0,
                         stability_threshold=0.0)
    assert labels.shape == image.shape and labels.dtype == np.int32
    np.testing.assert_array_equal(labels, segment_amg_microsam(sam_family_model, emb, points_per_side=2,
                                                               pred_iou_threshold=0.0, stability_threshold=0.0))
    calls = []
    monkeypatch.setattr(automatic, "segment_amg_microsam", lambda *a, **kw: calls.append(kw) or np.zeros((1, 1)))
    segment_amg(sam_family_model, image, embeddings=emb)
    assert calls[-1]["pred_iou_threshold"] == 0.88 and calls[-1]["stability_threshold"] == 0.95
    assert calls[-1]["min_size"] == 0
    own = compute_embeddings(tiny_model, image[:64, :64])
    segment_amg(tiny_model, None, embeddings=own, points_per_side=2, foreground_threshold=None)
    assert len(calls) == 1  # samzoo's own models keep samzoo's AMG
    segment_amg(tiny_model, None, embeddings=own, points_per_side=2, method="micro-sam")
    assert len(calls) == 2
    with pytest.raises(InputError):
        segment_amg(tiny_model, None, embeddings=own, method="sam")
