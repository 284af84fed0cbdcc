import numpy as np
import pytest

from samzoo.errors import InputError
from samzoo.segmentation import automatic
from samzoo.segmentation.automatic import amg_prompts, grid_points, segment_amg, segment_apg
from samzoo.segmentation.embeddings import compute_embeddings
from samzoo.segmentation.predictor import ObjectMask


def test_grid_points_cover_each_inner_region_once(tiny_model, hela_frame):
    emb = compute_embeddings(tiny_model, hela_frame[0][:200, :300], halo=16)
    points = grid_points(emb, points_per_side=8)  # one point per 16 px at input 128
    assert len(np.unique(points, axis=0)) == len(points)
    assert (points >= 0).all() and (points[:, 0] < 200).all() and (points[:, 1] < 300).all()
    assert abs(len(points) - (200 / 16) * (300 / 16)) < 0.15 * len(points)


def _two_blobs(monkeypatch, shape=(128, 128)):
    """AIS maps with two foreground discs (boundary distance highest at their centres)."""
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    maps = np.zeros((3,) + shape, np.float32)
    for cy, cx in ((40, 40), (88, 88)):
        r = np.hypot(yy - cy, xx - cx)
        maps[0][r < 24] = 1.0
        maps[2] = np.maximum(maps[2], np.clip(1 - r / 24, 0, 1))
    monkeypatch.setattr(automatic, "ais_maps", lambda model, embeddings, **options: maps)
    return maps


def _fake_decoder(monkeypatch, score: float, cover=None):
    """Replace SAM's decoder: every prompt gets ``score``; its mask is ``cover`` (or its own pixel)."""
    calls = []

    def decode(model, embeddings, points, **kw):
        calls.append(np.asarray(points).copy())
        tile = embeddings.tiles[0]
        out = []
        for y, x in points:
            mask = cover.copy() if cover is not None else np.zeros(embeddings.shape, bool)
            mask[int(y), int(x)] = True
            out.append(ObjectMask(tile, mask, score, None, 1.0))
        return out

    monkeypatch.setattr(automatic, "decode_points", decode)
    return calls


def test_amg_prompts_foreground_components_deepest_first(tiny_model, monkeypatch):
    maps = _two_blobs(monkeypatch)
    emb = compute_embeddings(tiny_model, np.zeros((128, 128), np.uint8))
    points, component = amg_prompts(tiny_model, emb, 8, foreground_threshold=0.5)
    ys, xs = points[:, 0].astype(int), points[:, 1].astype(int)
    assert len(points) and (maps[0][ys, xs] >= 0.5).all()  # background points never reach the decoder
    assert sorted(set(component)) == [1, 2]
    assert (np.diff(maps[2][ys, xs]) <= 0).all()
    # without a foreground threshold: every grid point, each its own component
    points, component = amg_prompts(tiny_model, emb, 8, foreground_threshold=None)
    assert len(points) == 64 and len(np.unique(component)) == 64


def test_amg_gives_up_a_component_after_max_rejected(tiny_model, monkeypatch):
    _two_blobs(monkeypatch)
    emb = compute_embeddings(tiny_model, np.zeros((128, 128), np.uint8))
    _, component = amg_prompts(tiny_model, emb, 8, foreground_threshold=0.5)
    calls = _fake_decoder(monkeypatch, score=0.0)  # every mask rejected
    labels = segment_amg(tiny_model, None, embeddings=emb, points_per_side=8, max_rejected=2, give_up_margin=None)
    assert labels.max() == 0
    assert sum(len(c) for c in calls) == 4  # two per component
    assert all(len(c) <= 2 for c in calls)  # one point per component per decoder call
    calls.clear()
    segment_amg(tiny_model, None, embeddings=emb, points_per_side=8, max_rejected=None)
    assert sum(len(c) for c in calls) == len(component)
    with pytest.raises(InputError):
        segment_amg(tiny_model, None, embeddings=emb, max_rejected=0)


@pytest.mark.parametrize("score, decoded", [(0.0, 2), (0.5, 2), (0.6, 4), (0.69, 4)])
def test_amg_gives_up_at_once_after_a_mask_far_below_the_thresholds(tiny_model, monkeypatch, score, decoded):
    _two_blobs(monkeypatch)
    emb = compute_embeddings(tiny_model, np.zeros((128, 128), np.uint8))
    calls = _fake_decoder(monkeypatch, score=score)  # rejected: below pred_iou_threshold 0.7
    segment_amg(tiny_model, None, embeddings=emb, points_per_side=8, max_rejected=2, give_up_margin=0.15,
                pred_iou_threshold=0.7, stability_threshold=0.85)
    # more than 0.15 below the threshold: one point per component; closer: two, as max_rejected says
    assert sum(len(c) for c in calls) == decoded


def test_amg_calibrates_its_thresholds_on_each_image(tiny_model, monkeypatch):
    """An IoU head scoring every mask 0.6 (as on images unlike its training data): fixed
    thresholds keep nothing, calibrated ones keep the objects; scores under the floor never pass."""
    _two_blobs(monkeypatch)
    emb = compute_embeddings(tiny_model, np.zeros((128, 128), np.uint8))
    _fake_decoder(monkeypatch, score=0.6)
    fixed = segment_amg(tiny_model, None, embeddings=emb, points_per_side=8, min_size=1, pred_iou_threshold=0.7)
    assert fixed.max() == 0
    assert segment_amg(tiny_model, None, embeddings=emb, points_per_side=8, min_size=1).max() > 0
    calls = _fake_decoder(monkeypatch, score=0.4)
    assert segment_amg(tiny_model, None, embeddings=emb, points_per_side=8, min_size=1).max() == 0
    assert len(calls[0]) == 2  # the calibration's masks (one per component) are not decoded twice
    assert sum(len(c) for c in calls) == 4  # then one more point per component (max_rejected=2)


def test_amg_drops_points_inside_accepted_masks(tiny_model, monkeypatch):
    maps = _two_blobs(monkeypatch)
    emb = compute_embeddings(tiny_model, np.zeros((128, 128), np.uint8))
    calls = _fake_decoder(monkeypatch, score=1.0, cover=maps[0] > 0.5)  # the first mask covers both discs
    labels = segment_amg(tiny_model, None, embeddings=emb, points_per_side=8, min_size=1)
    assert sum(len(c) for c in calls) == 2  # the first round's two points; the rest are covered
    assert labels.max() == 1


def test_amg_exact_path_decodes_every_grid_point(tiny_model, hela_frame, decode_calls):
    image = hela_frame[0][:128, :128]
    emb = compute_embeddings(tiny_model, image)
    labels = segment_amg(tiny_model, image, embeddings=emb, points_per_side=8, foreground_threshold=None,
                         skip_covered=False, window=None, pred_iou_threshold=-1, stability_threshold=-1)
    assert labels.shape == (128, 128) and labels.dtype == np.int32
    assert sum(n for n, _ in decode_calls) == 64 and {w for _, w in decode_calls} == {None}


def test_apg_runs_and_gives_labels(tiny_model, hela_frame):
    labels = segment_apg(tiny_model, hela_frame[0][:128, :128], foreground_threshold=0.0, center_threshold=1.0,
                         boundary_threshold=-1.0)
    assert labels.shape == (128, 128)
