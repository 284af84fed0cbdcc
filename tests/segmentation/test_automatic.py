import numpy as np

from samzoo.segmentation import automatic
from samzoo.segmentation.automatic import grid_points, segment_amg, segment_apg
from samzoo.segmentation.embeddings import compute_embeddings


def test_grid_points_cover_each_inner_region_once(tiny_model, hela_frame):
    emb = compute_embeddings(tiny_model, hela_frame[0][:200, :300], halo=16)
    points = grid_points(emb, points_per_side=8)  # one point per 16 px at input 128
    assert len(np.unique(points, axis=0)) == len(points)
    assert (points >= 0).all() and (points[:, 0] < 200).all() and (points[:, 1] < 300).all()
    assert abs(len(points) - (200 / 16) * (300 / 16)) < 0.15 * len(points)


def test_amg_skips_background_and_covered_points(tiny_model, hela_frame, monkeypatch):
    image = hela_frame[0][:128, :128]
    emb = compute_embeddings(tiny_model, image)
    decoded = []
    original = automatic.predict

    def counting(model, embeddings, prompts, **kw):
        decoded.append(len(prompts))
        return original(model, embeddings, prompts, **kw)

    monkeypatch.setattr(automatic, "predict", counting)
    everything = segment_amg(tiny_model, image, embeddings=emb, points_per_side=8, foreground_threshold=None,
                             pred_iou_threshold=-1, stability_threshold=-1, batch_size=16)
    n_all = sum(decoded)
    assert everything.shape == (128, 128) and everything.dtype == np.int32
    # accepted masks make later points inside them unnecessary: fewer than the 64 grid points are decoded
    assert 0 < n_all < 64
    decoded.clear()
    segment_amg(tiny_model, image, embeddings=emb, points_per_side=8, foreground_threshold=1.01)
    assert sum(decoded) == 0  # nothing is foreground: no decoder call at all


def test_apg_runs_and_gives_labels(tiny_model, hela_frame):
    labels = segment_apg(tiny_model, hela_frame[0][:128, :128], foreground_threshold=0.0, center_threshold=1.0,
                         boundary_threshold=-1.0)
    assert labels.shape == (128, 128)
