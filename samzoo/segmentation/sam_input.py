"""SAM's own input handling, as SAM's ``SamPredictor`` and micro-sam 1.8.14 do it, for the published models.

samzoo's own models see percentile-normalised tiles padded black at their own size (how they
were trained). The published SAM-family models (``ModelConfig.sam_input``) were trained, and are
run by micro-sam, differently, and samzoo matches that step by step:

- intensities: ``micro_sam.util._to_image``: every channel min-max scaled to 0..255 and cast to
  uint8 (truncated), also for uint8 input;
- each tile is resized so that its longest side is the model input (1024), by segment-anything's
  ``ResizeLongestSide`` (PIL bilinear on uint8), normalised with SAM's mean and std, then padded
  with zeros (``Sam.preprocess``), so a 512-pixel image fills the canvas rather than a quarter;
- prompts are scaled into the resized frame (``ResizeLongestSide.apply_coords``/``apply_boxes``),
  low-resolution mask logits go back through ``Sam.postprocess_masks`` (to 1024, crop, to the
  tile), and a mask prompt is made like ``micro_sam.prompt_based_segmentation._compute_logits_from_mask``.
"""

from __future__ import annotations

import numpy as np
import torch
from segment_anything.utils.transforms import ResizeLongestSide
from torch.nn import functional as F

from samzoo.io.normalize import channels_last

MASK_PROMPT_EPS = 1e-3  # micro-sam's mask prompt: logits of the probabilities 1 - eps and eps


def minmax_uint8(image: np.ndarray) -> np.ndarray:
    """micro-sam's normalisation: ``(3, H, W)`` float32 holding uint8 values, per channel min to 0, max to 255.

    Parameters
    ----------
    image : ndarray (H, W) or (H, W, C), C in 1..3
        One channel is repeated three times, two get a zero third channel (as micro-sam does).
        Non-finite values (which micro-sam does not handle) are set to their channel's finite minimum.

    Examples
    --------
    >>> minmax_uint8(np.array([[0, 1], [2, 4]], np.uint16))[0].tolist()
    [[0.0, 63.0], [127.0, 255.0]]
    """
    image = channels_last(image)
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    elif image.shape[-1] == 2:
        image = np.concatenate([image, np.zeros_like(image[..., :1])], axis=-1)
    x = image.astype(np.float32)
    finite = np.isfinite(x)
    if not finite.all():
        lowest = np.where(finite, x, np.inf).min(axis=(0, 1))
        x = np.where(finite, x, np.where(np.isfinite(lowest), lowest, 0)[None, None]).astype(np.float32)
    # the same float32 operations in the same order as micro_sam.util._to_image
    x -= x.min(axis=(0, 1))[None, None]
    x /= x.max(axis=(0, 1))[None, None] + 1e-7
    x = (x * 255).astype(np.uint8)
    return np.ascontiguousarray(np.moveaxis(x, -1, 0), dtype=np.float32)


def resized_shape(height: int, width: int, size: int) -> tuple[int, int]:
    """The tile's size inside the model input: longest side ``size`` (``ResizeLongestSide.get_preprocess_shape``)."""
    return ResizeLongestSide.get_preprocess_shape(height, width, size)


def encoder_input(sam, tile: torch.Tensor) -> torch.Tensor:
    """A ``(1, 3, h, w)`` tile of uint8 values as SAM's encoder input ``(1, 3, S, S)``.

    ``SamPredictor.set_image``: resized by ``ResizeLongestSide`` (PIL, on uint8), then
    ``Sam.preprocess`` (normalise, pad with zeros).
    """
    size = sam.image_encoder.img_size
    array = tile[0].permute(1, 2, 0).cpu().numpy().astype(np.uint8)
    resized = ResizeLongestSide(size).apply_image(array)
    x = torch.as_tensor(resized, device=tile.device).permute(2, 0, 1).contiguous()[None]
    return sam.preprocess(x.float())


def scale_xy(coords: np.ndarray, tile_hw: tuple[int, int], size: int) -> np.ndarray:
    """SAM ``(x, y)`` coordinates (``..., 2``) of a tile into its resized frame (``apply_coords``)."""
    new_h, new_w = resized_shape(*tile_hw, size)
    coords = np.array(coords, dtype=np.float32, copy=True)
    coords[..., 0] *= new_w / tile_hw[1]
    coords[..., 1] *= new_h / tile_hw[0]
    return coords


def postprocess_logits(low_res: torch.Tensor, tile_hw: tuple[int, int], size: int) -> torch.Tensor:
    """``Sam.postprocess_masks``: ``(B, 1, 4g, 4g)`` low-resolution logits to ``(B, 1, h, w)`` of the tile."""
    full = F.interpolate(low_res, (size, size), mode="bilinear", align_corners=False)
    new_h, new_w = resized_shape(*tile_hw, size)
    if (new_h, new_w) == tuple(tile_hw):  # a tile as large as the input: resizing it to its own size changes nothing
        return full[..., :new_h, :new_w]
    return F.interpolate(full[..., :new_h, :new_w], tile_hw, mode="bilinear", align_corners=False)


def mask_prompt_logits(mask: np.ndarray, low_res_size: int) -> torch.Tensor:
    """micro-sam's mask prompt: a binary ``(h, w)`` mask of the tile as ``(1, g4, g4)`` logits.

    Resized on its longest side to the low-resolution size (bilinear, antialiased), padded with
    background, then +-logit(1 - 1e-3) where the resized mask is above 0.5.
    """
    binary = torch.from_numpy((np.asarray(mask) == 1).astype(np.float32))[None, None]
    if tuple(binary.shape[-2:]) != (low_res_size, low_res_size):
        # ResizeLongestSide.apply_image_torch, written out: segment-anything 1.0 on PyPI reads the
        # size from the batch and channel axes there (fixed in segment_anything_py, which micro-sam uses)
        target = resized_shape(binary.shape[-2], binary.shape[-1], low_res_size)
        binary = F.interpolate(binary, target, mode="bilinear", align_corners=False, antialias=True)
        binary = F.pad(binary, (0, low_res_size - binary.shape[-1], 0, low_res_size - binary.shape[-2]))
    inside = float(np.log((1 - MASK_PROMPT_EPS) / MASK_PROMPT_EPS))
    return torch.where(binary[0] > 0.5, inside, -inside).float()
