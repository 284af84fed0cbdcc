"""AMG's decoding on embedding windows (:mod:`samzoo.segmentation.windows`) against decoding on the whole tile."""

import numpy as np
import pytest
import torch

from samzoo.errors import InputError
from samzoo.segmentation.automatic import grid_points
from samzoo.segmentation.embeddings import compute_embeddings
from samzoo.segmentation.mask_decoder import decode_masks
from samzoo.segmentation.predictor import Prompt, predict
from samzoo.segmentation.windows import _decode_windows, bfloat16_decoder, decode_points, owning_tiles


def test_decode_masks_with_one_image_per_prompt(tiny_model):
    sam = tiny_model.sam
    torch.manual_seed(2)
    images, pes = torch.randn(3, 256, 4, 4), torch.randn(3, 256, 4, 4)
    points = (torch.rand(3, 1, 2) * 64, torch.ones(3, 1, dtype=torch.int64))
    with torch.no_grad():
        sparse, dense = sam.prompt_encoder(points=points, boxes=None, masks=None)
        got = decode_masks(sam.mask_decoder, images, pes, sparse, dense[:1, :, :4, :4], True)
        for i in range(3):  # SAM's own decoder, one prompt at a time on its own image
            expected = sam.mask_decoder(image_embeddings=images[i:i + 1], image_pe=pes[i:i + 1],
                                        sparse_prompt_embeddings=sparse[i:i + 1],
                                        dense_prompt_embeddings=dense[:1, :, :4, :4], multimask_output=True)
            for a, b in zip(got, expected):
                torch.testing.assert_close(a[i:i + 1], b, atol=1e-4, rtol=1e-4)


def test_a_window_as_large_as_the_tile_is_the_whole_tile_decoding(tiny_model, hela_frame):
    # a tile smaller than the model input (100 x 120 of 128): the padding must stay out of the masks
    emb = compute_embeddings(tiny_model, hela_frame[0][:100, :120])
    points = grid_points(emb, 4)
    masks, cut = _decode_windows(tiny_model, emb, [emb.tiles[0]] * len(points), points, size=128 // 16)
    expected = predict(tiny_model, emb, {i: Prompt(points=[p], point_labels=[1]) for i, p in enumerate(points)},
                       multimask=True, refine=False)
    assert not cut.any()  # the window is the whole embedding: nothing lies beyond it
    for i, m in enumerate(masks):
        assert m.mask.shape == (100, 120)
        assert m.score == pytest.approx(expected[i].score, abs=1e-4)
        assert m.stability == pytest.approx(expected[i].stability, abs=1e-3)
        assert (m.mask != expected[i].mask).mean() < 1e-3  # float rounding at the threshold only
        torch.testing.assert_close(m.logits, expected[i].logits, atol=1e-3, rtol=1e-3)


def test_masks_stay_in_their_window_and_cut_ones_are_widened(tiny_model, hela_frame, decode_calls):
    emb = compute_embeddings(tiny_model, hela_frame[0][:128, :128])
    points = grid_points(emb, 4)
    _, cut = _decode_windows(tiny_model, emb, [emb.tiles[0]] * len(points), points, size=2)
    masks = decode_points(tiny_model, emb, points, window=32, accept=lambda r: False)  # nothing widened
    for (y, x), m in zip(points, masks):
        ys, xs = np.nonzero(m.mask)
        assert len(ys) == 0 or (np.abs(ys - y).max() <= 48 and np.abs(xs - x).max() <= 48)
    decode_points(tiny_model, emb, points, window=32)  # calls made inside it go through the spy
    # the masks cut by their 2-token window, and only those, are decoded again 4 tokens wide
    assert decode_calls[:1] == ([(int(cut.sum()), 64)] if cut.any() else [])
    with pytest.raises(InputError):
        decode_points(tiny_model, emb, points, window=0)


@pytest.fixture(scope="module")
def shipped_model():
    from samzoo.models.load import load_model

    return load_model(None)


def test_windowed_masks_match_whole_tile_masks_on_real_nuclei(shipped_model, hela_frame):
    """Held-out HeLa frame, the shipped model: points inside nuclei give the same masks either way."""
    image, gt = hela_frame[0][200:456, 300:556], hela_frame[1][200:456, 300:556]
    emb = compute_embeddings(shipped_model, image, cache=False)
    points = grid_points(emb, 16)
    points = points[gt[points[:, 0].astype(int), points[:, 1].astype(int)] > 0]  # on annotated nuclei
    assert len(points) > 20
    windowed = decode_points(shipped_model, emb, points, window=64)
    whole = decode_points(shipped_model, emb, points, window=None)
    ious = [(a.mask & b.mask).sum() / max((a.mask | b.mask).sum(), 1) for a, b in zip(windowed, whole)]
    # an approximation (the decoder attends to fewer tokens), not the same numbers: measured
    # median IoU 0.91, mean predicted-IoU difference 0.035; AMG's mSA is compared in the benchmark
    assert np.median(ious) > 0.85
    assert np.mean(np.abs([a.score - b.score for a, b in zip(windowed, whole)])) < 0.1


def test_bfloat16_decoding_agrees_with_float32_on_real_nuclei(shipped_model, hela_frame):
    """The bfloat16 copy of the decoder gives nearly the float32 masks and scores (AMG's mSA: benchmark)."""
    image, gt = hela_frame[0][200:456, 300:556], hela_frame[1][200:456, 300:556]
    emb = compute_embeddings(shipped_model, image, cache=False)
    points = grid_points(emb, 16)
    points = points[gt[points[:, 0].astype(int), points[:, 1].astype(int)] > 0]
    fp32 = decode_points(shipped_model, emb, points, window=64)
    decoder = bfloat16_decoder(shipped_model)
    assert decoder.iou_token.weight.dtype == torch.bfloat16
    assert bfloat16_decoder(shipped_model) is decoder  # made once
    bf16 = decode_points(shipped_model, emb, points, window=64, decoder=decoder)
    ious = [(a.mask & b.mask).sum() / max((a.mask | b.mask).sum(), 1) for a, b in zip(fp32, bf16)]
    assert np.median(ious) > 0.97
    # where two of SAM's three masks score nearly alike, rounding may pick the other one
    differences = np.abs([a.score - b.score for a, b in zip(fp32, bf16)])
    assert np.median(differences) < 0.005 and np.quantile(differences, 0.9) < 0.02
    assert all(m.logits.dtype == torch.float32 for m in bf16)


def test_prompts_of_different_tiles_share_a_decoder_call(tiny_model, hela_frame, monkeypatch):
    """Decoding the points of many tiles together gives each tile's own decoding (one call, not one per tile)."""
    from samzoo.segmentation import windows

    emb = compute_embeddings(tiny_model, hela_frame[0][:200, :300], halo=16)
    points = grid_points(emb, 4)
    tiles = [emb.tiles[i] for i in owning_tiles(emb.tiles, points)]
    assert len({t.index for t in tiles}) > 2
    together, cut = _decode_windows(tiny_model, emb, tiles, points, size=4)
    for i in range(len(points)):
        alone, alone_cut = _decode_windows(tiny_model, emb, tiles[i:i + 1], points[i:i + 1], size=4)
        assert together[i].tile is tiles[i] and together[i].mask.shape == alone[0].mask.shape
        assert (together[i].mask != alone[0].mask).mean() < 1e-3 and cut[i] == alone_cut[0]
        assert together[i].score == pytest.approx(alone[0].score, abs=1e-4)
    calls = []
    original = windows._decode_windows
    monkeypatch.setattr(windows, "_decode_windows", lambda *a: calls.append(len(a[2])) or original(*a))
    decode_points(tiny_model, emb, points, window=64, accept=lambda r: False)
    assert calls == [len(points)]
