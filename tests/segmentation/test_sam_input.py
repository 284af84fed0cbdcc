"""SAM's own input handling (micro-sam's), used for SAM-family models."""

import numpy as np
import torch

from samzoo.models.model import ModelConfig, SamzooModel
from samzoo.segmentation.embeddings import compute_embeddings
from samzoo.segmentation.sam_input import mask_prompt_logits, minmax_uint8, postprocess_logits, resized_shape, scale_xy


def test_minmax_uint8_is_microsams_to_image():
    rng = np.random.default_rng(0)
    image = rng.integers(100, 4000, (20, 30)).astype(np.uint16)
    # micro_sam.util._to_image, step by step
    x = np.concatenate([image[..., None]] * 3, axis=-1).astype("float32")
    x -= x.min(axis=(0, 1))[None, None]
    x /= x.max(axis=(0, 1))[None, None] + 1e-7
    expected = np.moveaxis((x * 255).astype("uint8"), -1, 0)
    np.testing.assert_array_equal(minmax_uint8(image), expected)
    # uint8 is stretched too, and each channel on its own
    rgb = np.stack([np.full((4, 4), 10, np.uint8), np.arange(16, dtype=np.uint8).reshape(4, 4) + 5,
                    np.zeros((4, 4), np.uint8)], -1)
    out = minmax_uint8(rgb)
    assert out[0].max() == 0 and out[1].min() == 0 and out[1].max() == 255 and out[2].max() == 0


def test_resized_frame():
    assert resized_shape(512, 256, 1024) == (1024, 512)
    np.testing.assert_allclose(scale_xy([[10.0, 20.0]], (512, 256), 1024), [[20.0, 40.0]])  # (x, y), both x2
    logits = torch.zeros(1, 1, 256, 256)
    logits[..., :128] = 5  # the left half of the low-resolution canvas: the resized tile
    out = postprocess_logits(logits, (512, 256), 1024)
    assert out.shape == (1, 1, 512, 256) and (out > 0).all()
    # a tile as large as the input: the second resize is to its own size, skipped (the same numbers)
    torch.manual_seed(0)
    logits = torch.randn(2, 1, 256, 256)
    full = torch.nn.functional.interpolate(logits, (1024, 1024), mode="bilinear", align_corners=False)
    expected = torch.nn.functional.interpolate(full[..., :, :512], (1024, 512), mode="bilinear", align_corners=False)
    torch.testing.assert_close(postprocess_logits(logits, (1024, 512), 1024), expected, rtol=0, atol=0)
    mask = np.zeros((512, 256), bool)
    mask[100:200, 50:100] = True
    prompt = mask_prompt_logits(mask, 256)
    assert prompt.shape == (1, 256, 256) and prompt[0, :, 128:].max() < 0  # padding is background
    ys, xs = np.nonzero(prompt[0].numpy() > 0)  # the mask at half size: rows 50-99, columns 25-49
    assert 49 <= ys.min() and ys.max() <= 100 and 24 <= xs.min() and xs.max() <= 50 and 1100 < len(ys) < 1400
    assert float(prompt.max()) == np.float32(np.log(0.999 / 0.001))


def test_tiles_are_normalised_and_resized_on_their_own():
    """micro-sam's tiled embeddings: each tile min-max normalised and resized to 1024 by itself."""
    torch.manual_seed(0)
    model = SamzooModel(ModelConfig("vit_t", 1024, ais_decoder=None, sam_input=True)).eval()
    rng = np.random.default_rng(1)
    image = rng.integers(0, 1000, (200, 350)).astype(np.uint16)
    image[:, 200:] += 3000  # the right tile is much brighter: a whole-image normalisation would differ
    tiled = compute_embeddings(model, image, tile_size=256, halo=32, cache=False)
    assert len(tiled.tiles) == 2
    for tile in tiled.tiles:
        alone = compute_embeddings(model, image[tile.outer_slice], cache=False)
        np.testing.assert_allclose(tiled.features[tile.index], alone.features[0], atol=1e-3)
