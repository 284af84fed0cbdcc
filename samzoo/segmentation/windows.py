"""SAM's mask decoder on windows of the image embedding: how AMG decodes its point prompts.

The decoder's cost grows with the number of image tokens each prompt attends to, so each point
is decoded on a window of the tile's embedding around it (``window`` pixels) instead of the
whole tile. An accepted mask reaching the window's edge is decoded again on a window twice as
wide (up to the whole tile), so large objects are not cut. Each prompt brings its own window,
so prompts of every tile of a large image share decoder calls.

On a window's few tokens the decoder's time is its token MLPs, bound by streaming their weights
and by arithmetic; where the hardware computes bfloat16 natively (CUDA, or a CPU with
AVX512-BF16 or AMX), a bfloat16 copy of the decoder (:func:`bfloat16_decoder`) roughly halves it.
"""

from __future__ import annotations

import copy
from typing import Callable

import numpy as np
import torch
from segment_anything.modeling import MaskDecoder
from torch.nn import functional as F

from samzoo.errors import InputError
from samzoo.models.copies import cached_copy
from samzoo.models.model import SamzooModel
from samzoo.segmentation.embeddings import ImageEmbeddings
from samzoo.segmentation.mask_decoder import decode_masks
from samzoo.segmentation.predictor import MASK_PROMPT_LOGIT, PROMPT_TOKENS_PER_CALL, ObjectMask, Prompt, predict
from samzoo.segmentation.tiling import Tile, owning_tiles

PATCH = 16  # image pixels per embedding token (SAM's ViT patch size)


@torch.no_grad()
def decode_points(model: SamzooModel, embeddings: ImageEmbeddings, points: np.ndarray, *,
                  window: int | None = 64, accept: Callable[[ObjectMask], bool] | None = None,
                  decoder: MaskDecoder | None = None) -> list[ObjectMask]:
    """Decode one positive point prompt per row of ``points`` (multimask, best predicted IoU kept).

    Parameters
    ----------
    model : SamzooModel
    embeddings : ImageEmbeddings
    points : ndarray (N, 2)
        ``(y, x)`` image pixels.
    window : int or None
        Decode each point on a square window of the tile's embedding around it, this many pixels
        wide (rounded up to whole tokens of 16 pixels), instead of on the whole tile. A mask
        reaching an edge of its window inside the tile is decoded again on a window twice as
        wide, up to the whole tile, so large objects are not cut. ``None`` (or a window as large
        as the tile) decodes on the whole tile, exactly as
        :func:`samzoo.segmentation.predictor.predict` does.
    accept : callable, optional
        Which masks the caller will keep (AMG: predicted IoU and stability high enough). Only
        those are decoded again when cut by their window: the others are thrown away anyway,
        and on held-out data (``scripts/bench_automatic.py``) widening them too cost a third
        more decoding and gained no mSA. By default every cut mask is decoded again.
    decoder : MaskDecoder, optional
        The mask decoder run on the windows: the model's own by default, or a copy of it, such
        as :func:`bfloat16_decoder` (the whole-tile path always runs the model's own).

    Returns
    -------
    list of ObjectMask, in the order of ``points``.
    """
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    grid = embeddings.input_size // PATCH
    size = grid if window is None else min(grid, -(-int(window) // PATCH))
    if size < 1:
        raise InputError(f"window must be a positive number of pixels, got {window}")
    if size == grid or model.config.sam_input:
        # resized tiles (SAM-family models): the windows assume pixels at the embedding's own
        # scale, so these decode on the whole tile, through predict's resized frame
        prompts = {i: Prompt(points=[p], point_labels=[1]) for i, p in enumerate(points)}
        # SAM's masks, as the windows give (AMG's grid points are not clicks on objects: no AIS instance)
        decoded = predict(model, embeddings, prompts, multimask=True, refine=False, pick_instance=False)
        return [decoded[i] for i in range(len(points))]
    results: list[ObjectMask | None] = [None] * len(points)
    tiles = [embeddings.tiles[i] for i in owning_tiles(embeddings.tiles, points)]
    chunk = max(2, PROMPT_TOKENS_PER_CALL // size**2)
    for start in range(0, len(points), chunk):
        part = np.arange(start, min(start + chunk, len(points)))
        masks, cut = _decode_windows(model, embeddings, [tiles[i] for i in part], points[part], size, decoder)
        for i, mask in zip(part, masks):
            results[i] = mask
        redo = [i for i, c in zip(part, cut) if c and (accept is None or accept(results[i]))]
        if redo:  # reached the window's edge: the object may go on outside it, look twice as wide
            wider = decode_points(model, embeddings, points[redo], window=2 * size * PATCH, accept=accept,
                                  decoder=decoder)
            for i, mask in zip(redo, wider):
                results[i] = mask
    return results


def bfloat16_decoder(model: SamzooModel) -> MaskDecoder:
    """A bfloat16 copy of the model's mask decoder, made once and remade when its weights change.

    Decoding AMG's windows with it (:func:`decode_points`) roughly halves the decoder's time where
    the hardware computes bfloat16 natively (:func:`native_bfloat16`): on a window's few image
    tokens the decoder's cost is its token MLPs, bound by streaming their weights and by
    arithmetic. A copy, not autocast: autocast would convert the weights again on every call.
    """
    return cached_copy(model.sam.mask_decoder, "bfloat16", lambda d: copy.deepcopy(d).to(torch.bfloat16))


def native_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 matrix products natively (CUDA, or a CPU with AVX512-BF16 or AMX).

    Elsewhere bfloat16 is emulated and slower than float32.
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    # torch has no public query for these CPU features; its private helpers may go away
    checks = (getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    return any(check() for check in checks if check is not None)


def _decode_windows(model: SamzooModel, embeddings: ImageEmbeddings, tiles: list[Tile], points: np.ndarray,
                    size: int, decoder: MaskDecoder | None = None) -> tuple[list[ObjectMask], np.ndarray]:
    """Point prompts, each decoded on the ``size`` x ``size`` tokens around it in its tile (``tiles[i]``).

    The windows are cut from the tile's embedding and from the dense positional encoding alike,
    and the points keep their tile coordinates, so the decoder sees every token at its true
    position. Prompts of different tiles share one decoder call: each brings its own window.
    Returns the masks and, per point, whether its mask reaches a window edge that is not an
    edge of the tile's embedding.
    """
    sam = model.sam
    device = next(model.parameters()).device
    grid = embeddings.input_size // PATCH
    origins = np.array([t.outer[:2] for t in tiles]).reshape(-1, 2)
    extents = np.array([[t.outer[2] - t.outer[0], t.outer[3] - t.outer[1]] for t in tiles]).reshape(-1, 2)
    local = points - origins
    coords = torch.as_tensor(local[:, None, ::-1].copy(), dtype=torch.float32, device=device)  # SAM's (x, y)
    labels = torch.ones(len(points), 1, dtype=torch.int64, device=device)
    sparse, dense = sam.prompt_encoder(points=(coords, labels), boxes=None, masks=None)
    # the window's top-left token: the point as near the centre as the embedding allows
    corners = np.clip(np.round(local / PATCH).astype(int) - size // 2, 0, grid - size)
    # prompt_encoder.get_dense_pe(), kept: it depends only on the grid and pe_layer's one buffer
    size_hw = sam.prompt_encoder.image_embedding_size
    pe = cached_copy(sam.prompt_encoder.pe_layer, f"dense {size_hw}", lambda layer: layer(size_hw))
    features = {t.index: torch.from_numpy(embeddings.features[t.index]).to(device) for t in tiles}
    windows = [(slice(None), slice(a, a + size), slice(b, b + size)) for a, b in corners]
    image = torch.stack([features[t.index][w] for t, w in zip(tiles, windows)])
    image_pe = torch.stack([pe[w] for w in windows])
    # "no mask" is the same embedding at every token: its top-left window serves every prompt
    decoder = decoder or sam.mask_decoder
    dtype = decoder.iou_token.weight.dtype
    image, image_pe, sparse, dense = (x.to(dtype) for x in (image, image_pe, sparse, dense[:1, :, :size, :size]))
    low_res, iou = decode_masks(decoder, image, image_pe, sparse, dense, True)
    low_res, iou = low_res.float(), iou.float()
    best = iou.argmax(dim=1)
    rows = torch.arange(len(points), device=device)
    low_res, iou = low_res[rows, best], iou[rows, best]  # (B, 4 size, 4 size), (B,)
    # SAM upsamples its low-resolution logits 4x to the input size; the same, window by window
    logits = F.interpolate(low_res[:, None], scale_factor=4, mode="bilinear", align_corners=False)[:, 0]
    span = torch.arange(size * PATCH, device=device)
    top_left = torch.as_tensor(corners * PATCH, device=device)
    h, w = torch.as_tensor(extents, device=device).T[:, :, None]
    inside = (((top_left[:, :1] + span) < h)[:, :, None]) & (((top_left[:, 1:] + span) < w)[:, None, :])
    logits = logits.masked_fill(~inside, -MASK_PROMPT_LOGIT)  # the tile's padding is never the object
    binary = logits > 0
    stability = ((logits > 1).sum((1, 2)) / (logits > -1).sum((1, 2)).clamp(min=1)).tolist()
    at_end = torch.as_tensor(corners + size < grid, device=device)
    at_start = torch.as_tensor(corners > 0, device=device)
    cut = ((binary[:, 0].any(1) & at_start[:, 0]) | (binary[:, -1].any(1) & at_end[:, 0])
           | (binary[:, :, 0].any(1) & at_start[:, 1]) | (binary[:, :, -1].any(1) & at_end[:, 1])).cpu().numpy()
    binary, iou, low_res = binary.cpu().numpy(), iou.tolist(), low_res.cpu()
    masks = []
    for i, ((a, b), tile) in enumerate(zip(corners * PATCH, tiles)):
        mask = np.zeros(tuple(extents[i]), dtype=bool)
        part = mask[a:a + size * PATCH, b:b + size * PATCH]
        part[...] = binary[i, :part.shape[0], :part.shape[1]]
        canvas = torch.full((1, 4 * grid, 4 * grid), -MASK_PROMPT_LOGIT)
        canvas[0, a // 4:a // 4 + 4 * size, b // 4:b // 4 + 4 * size] = low_res[i]
        masks.append(ObjectMask(tile, mask, iou[i], canvas, stability[i]))
    return masks, cut
