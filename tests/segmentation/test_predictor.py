import numpy as np
import pytest
import torch

from samzoo.errors import InputError
from samzoo.segmentation.embeddings import compute_embeddings
from samzoo.segmentation.predictor import Prompt, paint_labels, predict


@pytest.fixture
def spy_prompts(tiny_model):
    """Record what the prompt encoder receives."""
    seen = []
    original = tiny_model.sam.prompt_encoder.forward

    def spy(points, boxes, masks):
        seen.append((points, boxes, masks))
        return original(points, boxes, masks)

    tiny_model.sam.prompt_encoder.forward = spy
    yield seen
    tiny_model.sam.prompt_encoder.forward = original


def test_prompts_reach_the_decoder_in_tile_coordinates(tiny_model, hela_frame, spy_prompts):
    image = hela_frame[0][:200, :300]
    emb = compute_embeddings(tiny_model, image, halo=16)
    prompts = {5: Prompt(points=[[150, 250]], point_labels=[1]),
               9: Prompt(box=[140, 230, 170, 270])}
    results = predict(tiny_model, emb, prompts)
    assert set(results) == {5, 9}
    tile = results[5].tile
    assert tile.inner[0] <= 150 < tile.inner[2] and tile.inner[1] <= 250 < tile.inner[3]
    points = [p for p, b, m in spy_prompts if p is not None][0]
    boxes = [b for p, b, m in spy_prompts if b is not None][0]
    y0, x0 = tile.outer[:2]
    # SAM takes (x, y) relative to the tile
    np.testing.assert_allclose(points[0][0, 0].numpy(), [250 - x0, 150 - y0])
    t9 = results[9].tile
    np.testing.assert_allclose(boxes[0].numpy(), [230 - t9.outer[1], 140 - t9.outer[0], 270 - t9.outer[1], 170 - t9.outer[0]])
    for r in results.values():
        assert r.mask.shape == (r.tile.outer[2] - r.tile.outer[0], r.tile.outer[3] - r.tile.outer[1])
        assert r.logits.shape == (1, 32, 32)
    labels = paint_labels(results, emb.shape)
    assert labels.shape == (200, 300) and set(np.unique(labels)) <= {0, 5, 9}


def test_refinement_passes_previous_logits(tiny_model, hela_frame, spy_prompts):
    emb = compute_embeddings(tiny_model, hela_frame[0][:120, :120])
    first = predict(tiny_model, emb, {1: Prompt(points=[[60, 60]], point_labels=[1])})
    spy_prompts.clear()
    predict(tiny_model, emb, {1: Prompt(points=[[60, 60], [20, 20]], point_labels=[1, 0])}, previous=first)
    masks = spy_prompts[0][2]
    torch.testing.assert_close(masks[0], first[1].logits)


def test_bad_prompts(tiny_model, hela_frame):
    emb = compute_embeddings(tiny_model, hela_frame[0][:120, :120])
    with pytest.raises(InputError, match="outside"):
        predict(tiny_model, emb, {1: Prompt(points=[[500, 10]], point_labels=[1])})
    with pytest.raises(InputError, match="ymin > ymax"):
        Prompt(box=[50, 10, 40, 20])
    with pytest.raises(InputError, match="at least one"):
        Prompt()
    with pytest.raises(InputError, match="1 \\(positive\\) or 0"):
        Prompt(points=[[1, 1]], point_labels=[2])


def test_many_prompts_give_what_each_gives_alone(tiny_model, hela_frame, monkeypatch):
    from samzoo.segmentation import predictor

    monkeypatch.setattr(predictor, "PROMPT_TOKENS_PER_CALL", 64 * 3)  # 3 prompts per decoder call at input 128
    emb = compute_embeddings(tiny_model, hela_frame[0][:128, :128])
    prompts = {i: Prompt(points=[[10 + 12 * i, 15 + 9 * i]], point_labels=[1]) for i in range(8)}
    together = predict(tiny_model, emb, prompts)
    for i, prompt in prompts.items():
        alone = predict(tiny_model, emb, {i: prompt})[i]
        assert abs(alone.score - together[i].score) < 1e-4
        assert (alone.mask != together[i].mask).sum() <= 2  # logits at exactly 0 may round either way


def test_result_does_not_depend_on_other_objects_point_counts(tiny_model, hela_frame):
    """A box with and without points, alone or decoded with others: SAM attends to padding tokens,
    so prompts with different numbers of points must not share a padded batch."""
    image = hela_frame[0][:200, :300]
    emb = compute_embeddings(tiny_model, image, cache=False)
    box = Prompt(box=[40, 60, 90, 120])
    with_points = Prompt(points=[[60, 80], [45, 65], [100, 130]], point_labels=[1, 1, 0], box=[40, 60, 90, 120])
    alone = predict(tiny_model, emb, {1: box})[1]
    together = predict(tiny_model, emb, {1: box, 2: with_points})
    torch.testing.assert_close(together[1].logits, alone.logits)
    assert not torch.equal(together[2].logits, alone.logits)


def test_box_bounds_its_mask_for_samzoo_models_only(tiny_model, hela_frame):
    """samzoo's own models drop mask pixels outside the prompt's box; SAM-family models keep
    SAM's mask as it is (parity with SAM and micro-sam)."""
    from samzoo.models.model import ModelConfig, SamzooModel

    image = hela_frame[0][:200, :300]
    prompts = {1: Prompt(box=[40, 60, 90, 120]), 2: Prompt(points=[[150, 200]], point_labels=[1])}
    emb = compute_embeddings(tiny_model, image, cache=False)
    raw = predict(tiny_model, emb, prompts, clip_to_box=False)
    clipped = predict(tiny_model, emb, prompts)
    inside = np.zeros(image.shape, bool)
    inside[40:91, 60:121] = True
    assert (raw[1].full_mask(image.shape) & ~inside).any()  # the untrained decoder's mask runs past the box
    np.testing.assert_array_equal(clipped[1].full_mask(image.shape), raw[1].full_mask(image.shape) & inside)
    np.testing.assert_array_equal(clipped[2].mask, raw[2].mask)  # no box, nothing to bound

    sam_family = SamzooModel(ModelConfig("samzoo_tiny", 128, ais_decoder=None, sam_input=True)).eval()
    emb = compute_embeddings(sam_family, image, cache=False)
    np.testing.assert_array_equal(predict(sam_family, emb, prompts)[1].mask,
                                  predict(sam_family, emb, prompts, clip_to_box=False)[1].mask)
    assert (predict(sam_family, emb, prompts, clip_to_box=True)[1].full_mask(image.shape) & ~inside).sum() == 0
