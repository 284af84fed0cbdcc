"""Automatic segmentation with SAM's decoder: AMG (a grid of point prompts) and APG (prompts from AIS).

AMG spends most of its time in the mask decoder, once per prompt. Four things keep that small:

- prompts that cannot hit an object are skipped: with an AIS decoder, grid points on
  background (foreground probability below ``foreground_threshold``) never reach SAM's decoder;
- each AIS foreground component is prompted one point at a time, deepest inside first (AIS
  boundary distance), and a point inside a mask accepted earlier is dropped: it would only find
  that object again. A component is given up after ``max_rejected`` rejected masks, where
  further points rarely give an accepted one. Different components are decoded together, one
  point each per decoder call;
- each prompt is decoded on a window of the image embedding around its point (``window``
  pixels) instead of the whole tile: the decoder's cost grows with the number of image tokens
  it attends to. An accepted mask reaching the window's edge is decoded again on a window
  twice as wide (up to the whole tile), so large objects are not cut;
- the grid is laid per tile inner region, so no point is decoded twice across tile halos.

With ``foreground_threshold=None, skip_covered=False, window=None`` every grid point is decoded
on the whole tile, as SAM's AMG does: the exact path, against which ``scripts/bench_automatic.py``
validates the shortcuts by mSA on held-out real data. Each decoded prompt is itself cheaper than
in SAM's own code path, see :func:`samzoo.segmentation.mask_decoder.decode_masks`.

Candidates are filtered by predicted IoU and stability, de-duplicated by box NMS
(torchvision), cleaned (small regions and holes) and painted largest first.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from scipy import ndimage as ndi
from skimage.measure import regionprops
from skimage.morphology import remove_small_holes
from torch.nn import functional as F
from torchvision.ops import nms
from tqdm import tqdm

from samzoo.errors import InputError
from samzoo.models.model import SamzooModel
from samzoo.segmentation.ais import ais_maps
from samzoo.segmentation.embeddings import ImageEmbeddings, compute_embeddings
from samzoo.segmentation.mask_decoder import decode_masks
from samzoo.segmentation.predictor import (MASK_PROMPT_LOGIT, PROMPT_TOKENS_PER_CALL, ObjectMask, Prompt, predict,
                                           prompts_per_call)
from samzoo.segmentation.tiling import Tile, owning_tile
from samzoo.segmentation.watershed import watershed_from_maps

PATCH = 16  # image pixels per embedding token (SAM's ViT patch size)


def grid_points(embeddings: ImageEmbeddings, points_per_side: int) -> np.ndarray:
    """``(N, 2)`` grid points ``(y, x)``, ``points_per_side`` per model-input side, per tile inner region."""
    spacing = embeddings.input_size / points_per_side
    points = []
    for tile in embeddings.tiles:
        y0, x0, y1, x1 = tile.inner
        ys = np.arange(y0 + spacing / 2, y1, spacing)
        xs = np.arange(x0 + spacing / 2, x1, spacing)
        points.append(np.stack(np.meshgrid(ys, xs, indexing="ij"), -1).reshape(-1, 2))
    return np.concatenate(points)


@torch.no_grad()
def decode_points(model: SamzooModel, embeddings: ImageEmbeddings, points: np.ndarray, *,
                  window: int | None = 64, accept: Callable[[ObjectMask], bool] | None = None) -> list[ObjectMask]:
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

    Returns
    -------
    list of ObjectMask, in the order of ``points``.
    """
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    grid = embeddings.input_size // PATCH
    size = grid if window is None else min(grid, -(-int(window) // PATCH))
    if size < 1:
        raise InputError(f"window must be a positive number of pixels, got {window}")
    if size == grid:
        prompts = {i: Prompt(points=[p], point_labels=[1]) for i, p in enumerate(points)}
        decoded = predict(model, embeddings, prompts, multimask=True)
        return [decoded[i] for i in range(len(points))]
    results: list[ObjectMask | None] = [None] * len(points)
    by_tile: dict[int, list[int]] = {}
    for i, (y, x) in enumerate(points):
        by_tile.setdefault(owning_tile(embeddings.tiles, y, x).index, []).append(i)
    chunk = max(2, PROMPT_TOKENS_PER_CALL // size**2)
    for tile_index, ids in by_tile.items():
        for start in range(0, len(ids), chunk):
            part = ids[start:start + chunk]
            masks, cut = _decode_windows(model, embeddings, embeddings.tiles[tile_index], points[part], size)
            for i, mask in zip(part, masks):
                results[i] = mask
            redo = [i for i, c in zip(part, cut) if c and (accept is None or accept(results[i]))]
            if redo:  # reached the window's edge: the object may go on outside it, look twice as wide
                wider = decode_points(model, embeddings, points[redo], window=2 * size * PATCH, accept=accept)
                for i, mask in zip(redo, wider):
                    results[i] = mask
    return results


def _decode_windows(model: SamzooModel, embeddings: ImageEmbeddings, tile: Tile, points: np.ndarray,
                    size: int) -> tuple[list[ObjectMask], np.ndarray]:
    """Point prompts of one tile, each decoded on the ``size`` x ``size`` tokens around it.

    The windows are cut from the tile's embedding and from the dense positional encoding alike,
    and the points keep their tile coordinates, so the decoder sees every token at its true
    position. Returns the masks and, per point, whether its mask reaches a window edge that is
    not an edge of the tile's embedding.
    """
    sam = model.sam
    device = next(model.parameters()).device
    grid = embeddings.input_size // PATCH
    local = points - tile.outer[:2]
    coords = torch.as_tensor(local[:, None, ::-1].copy(), dtype=torch.float32, device=device)  # SAM's (x, y)
    labels = torch.ones(len(points), 1, dtype=torch.int64, device=device)
    sparse, dense = sam.prompt_encoder(points=(coords, labels), boxes=None, masks=None)
    # the window's top-left token: the point as near the centre as the embedding allows
    corners = np.clip(np.round(local / PATCH).astype(int) - size // 2, 0, grid - size)
    features = torch.from_numpy(embeddings.features[tile.index]).to(device)
    pe = sam.prompt_encoder.get_dense_pe()[0]
    windows = [(slice(None), slice(a, a + size), slice(b, b + size)) for a, b in corners]
    image = torch.stack([features[w] for w in windows])
    image_pe = torch.stack([pe[w] for w in windows])
    # "no mask" is the same embedding at every token: its top-left window serves every prompt
    low_res, iou = decode_masks(sam.mask_decoder, image, image_pe, sparse, dense[:1, :, :size, :size], True)
    best = iou.argmax(dim=1)
    rows = torch.arange(len(points), device=device)
    low_res, iou = low_res[rows, best], iou[rows, best]  # (B, 4 size, 4 size), (B,)
    # SAM upsamples its low-resolution logits 4x to the input size; the same, window by window
    logits = F.interpolate(low_res[:, None], scale_factor=4, mode="bilinear", align_corners=False)[:, 0]
    h, w = tile.outer[2] - tile.outer[0], tile.outer[3] - tile.outer[1]
    span = torch.arange(size * PATCH, device=device)
    top_left = torch.as_tensor(corners * PATCH, device=device)
    inside = (((top_left[:, :1] + span) < h)[:, :, None]) & (((top_left[:, 1:] + span) < w)[:, None, :])
    logits = logits.masked_fill(~inside, -MASK_PROMPT_LOGIT)  # the tile's padding is never the object
    binary = logits > 0
    stability = ((logits > 1).sum((1, 2)) / (logits > -1).sum((1, 2)).clamp(min=1)).tolist()
    at_end = torch.as_tensor(corners + size < grid, device=device)
    at_start = torch.as_tensor(corners > 0, device=device)
    cut = ((binary[:, 0].any(1) & at_start[:, 0]) | (binary[:, -1].any(1) & at_end[:, 0])
           | (binary[:, :, 0].any(1) & at_start[:, 1]) | (binary[:, :, -1].any(1) & at_end[:, 1])).cpu().numpy()
    binary, iou = binary.cpu().numpy(), iou.tolist()
    masks = []
    for i, (a, b) in enumerate(corners * PATCH):
        mask = np.zeros((h, w), dtype=bool)
        part = mask[a:a + size * PATCH, b:b + size * PATCH]
        part[...] = binary[i, :part.shape[0], :part.shape[1]]
        canvas = torch.full((1, 4 * grid, 4 * grid), -MASK_PROMPT_LOGIT)
        canvas[0, a // 4:a // 4 + 4 * size, b // 4:b // 4 + 4 * size] = low_res[i].cpu()
        masks.append(ObjectMask(tile, mask, iou[i], canvas, stability[i]))
    return masks, cut


def _box(mask: ObjectMask) -> list[float]:
    ys, xs = np.nonzero(mask.mask)
    y0, x0 = mask.tile.outer[:2]
    return [x0 + xs.min(), y0 + ys.min(), x0 + xs.max(), y0 + ys.max()]


def _paint(candidates: list[ObjectMask], shape: tuple[int, int], *, nms_iou: float, min_size: int) -> np.ndarray:
    """NMS on boxes (by predicted IoU), paint largest first, remove small regions, fill small holes."""
    candidates = [c for c in candidates if c.area >= min_size]
    labels = np.zeros(shape, dtype=np.int32)
    if not candidates:
        return labels
    boxes = torch.tensor([_box(c) for c in candidates], dtype=torch.float32)
    keep = nms(boxes, torch.tensor([c.score for c in candidates], dtype=torch.float32), nms_iou).tolist()
    kept = sorted((candidates[i] for i in keep), key=lambda c: -c.area)
    for label, c in enumerate(kept, start=1):
        labels[c.tile.outer_slice][c.mask] = label
    cleaned = np.zeros_like(labels)
    for region in regionprops(labels):
        # each object: its largest connected part, holes up to min_size filled
        sl = region.slice
        obj = labels[sl] == region.label
        parts, n = ndi.label(obj)
        if n > 1:
            obj = parts == (np.argmax(np.bincount(parts.ravel())[1:]) + 1)
        obj = remove_small_holes(obj, max_size=min_size)
        if obj.sum() >= min_size:
            cleaned[sl][obj & (cleaned[sl] == 0)] = region.label
    return cleaned


def amg_prompts(model: SamzooModel, embeddings: ImageEmbeddings, points_per_side: int,
                foreground_threshold: float | None) -> tuple[np.ndarray, np.ndarray]:
    """AMG's grid points in the order they are tried, and the AIS foreground component of each.

    With an AIS decoder and a ``foreground_threshold``, points on background are dropped and
    the rest are sorted deepest inside an object first (AIS boundary distance); each point's
    component is the connected region of AIS foreground it lies in. Otherwise every grid point
    is kept, in grid order, as a component of its own.
    """
    points = grid_points(embeddings, points_per_side)
    if foreground_threshold is None or model.ais_decoder is None:
        return points, np.arange(len(points))
    maps = ais_maps(model, embeddings)
    ys, xs = points[:, 0].astype(int), points[:, 1].astype(int)
    foreground = maps[0] >= foreground_threshold
    order = np.argsort(-maps[2][ys, xs], kind="stable")
    order = order[foreground[ys[order], xs[order]]]
    components, _ = ndi.label(foreground)
    return points[order], components[ys[order], xs[order]]


def segment_amg(model: SamzooModel, image: np.ndarray, *, embeddings: ImageEmbeddings | None = None,
                points_per_side: int = 32, foreground_threshold: float | None = 0.3,
                pred_iou_threshold: float = 0.7, stability_threshold: float = 0.85, nms_iou: float = 0.7,
                min_size: int = 25, batch_size: int = 64, skip_covered: bool = True, max_rejected: int | None = 2,
                window: int | None = 64, progress: bool = False) -> np.ndarray:
    """Automatic mask generation: a grid of point prompts through SAM's decoder.

    Parameters
    ----------
    model : SamzooModel
    image : ndarray (H, W) or (H, W, C)
    embeddings : ImageEmbeddings, optional
    points_per_side : int
        Grid density per model-input side (32 for a 512 input = one point per 16 pixels).
    foreground_threshold : float or None
        Skip grid points where the AIS foreground is below it; ``None`` (or a model without
        an AIS decoder) decodes every grid point, as SAM's original AMG does.
    pred_iou_threshold, stability_threshold : float
        Keep masks whose predicted IoU and stability score reach these values.
    nms_iou : float
        Masks whose boxes overlap more than this with a better mask are dropped.
    min_size : int
        Smaller masks, regions and holes are removed.
    batch_size : int
        At most this many prompts per decoder call.
    skip_covered : bool
        Drop grid points inside masks accepted earlier. (With AIS components, each decoder call
        takes at most one point per component either way.)
    max_rejected : int or None
        Stop prompting an AIS foreground component after this many rejected masks (``None``: never).
    window : int or None
        Decode each prompt on this many pixels of embedding around it
        (:func:`decode_points`); ``None``: on the whole tile.
    progress : bool
        Show a progress bar over the grid points.

    Returns
    -------
    ndarray (H, W) int32 instance labels.

    Notes
    -----
    ``foreground_threshold=None, skip_covered=False, window=None`` is the exact path: every grid
    point decoded on the whole tile, as SAM's AMG does.
    """
    if max_rejected is not None and max_rejected < 1:
        raise InputError(f"max_rejected must be at least 1 (or None), got {max_rejected}")
    embeddings = embeddings or compute_embeddings(model, image)
    points, component = amg_prompts(model, embeddings, points_per_side, foreground_threshold)
    ys, xs = points[:, 0].astype(int), points[:, 1].astype(int)
    if skip_covered and len(np.unique(component)) == len(component):
        # no AIS components: all points come in one round, and calls no larger than predict's
        # own let points covered by an earlier call be dropped sooner, at no cost
        batch_size = min(batch_size, prompts_per_call(model))
    covered = np.zeros(embeddings.shape, dtype=bool)
    rejected = np.zeros(component.max(initial=0) + 1, dtype=int)
    pending = np.ones(len(points), dtype=bool)
    candidates: list[ObjectMask] = []

    def accepted(r: ObjectMask) -> bool:
        return r.score >= pred_iou_threshold and r.stability >= stability_threshold and r.area >= min_size

    bar = tqdm(total=len(points), desc="AMG", disable=not progress, leave=False)
    while pending.any():
        # each round tries the next point of every component still in play, all in few calls
        todo = np.flatnonzero(pending)
        if skip_covered:
            todo = todo[~covered[ys[todo], xs[todo]]]
        if max_rejected is not None:
            todo = todo[rejected[component[todo]] < max_rejected]
        _, first = np.unique(component[todo], return_index=True)
        now = todo[np.sort(first)]
        left = int(pending.sum())
        pending[:] = False
        pending[todo] = True
        pending[now] = False
        bar.update(left - int(pending.sum()))
        for start in range(0, len(now), batch_size):
            batch = now[start:start + batch_size]
            if skip_covered:
                batch = batch[~covered[ys[batch], xs[batch]]]
            for i, r in zip(batch, decode_points(model, embeddings, points[batch], window=window, accept=accepted)):
                if accepted(r):
                    candidates.append(r)
                    covered[r.tile.outer_slice] |= r.mask
                else:
                    rejected[component[i]] += 1
    bar.close()
    return _paint(candidates, embeddings.shape, nms_iou=nms_iou, min_size=min_size)


def segment_apg(model: SamzooModel, image: np.ndarray, *, embeddings: ImageEmbeddings | None = None,
                nms_iou: float = 0.7, min_size: int = 25, **ais_kwargs) -> np.ndarray:
    """Prompts from AIS: each AIS instance prompts SAM with a point and with a box.

    Per instance, a positive point at its innermost pixel and its bounding box are decoded;
    the result with the higher predicted IoU is kept; overlaps are resolved by NMS and painting
    largest first. ``ais_kwargs`` go to the watershed
    (:func:`samzoo.segmentation.watershed.watershed_from_maps`).
    """
    embeddings = embeddings or compute_embeddings(model, image)
    instances = watershed_from_maps(ais_maps(model, embeddings), min_size=min_size, **ais_kwargs)
    point_prompts, box_prompts = {}, {}
    for region in regionprops(instances):
        sl = region.slice
        inner = ndi.distance_transform_edt(np.pad(instances[sl] == region.label, 1))[1:-1, 1:-1]
        y, x = np.unravel_index(int(np.argmax(inner)), inner.shape)
        point_prompts[region.label] = Prompt(points=[[y + sl[0].start, x + sl[1].start]], point_labels=[1])
        y0, x0, y1, x1 = region.bbox
        box_prompts[region.label] = Prompt(box=[y0, x0, y1 - 1, x1 - 1])
    if not point_prompts:
        return np.zeros(embeddings.shape, dtype=np.int32)
    by_point = predict(model, embeddings, point_prompts, multimask=True)
    by_box = predict(model, embeddings, box_prompts)
    best = [max(by_point[k], by_box[k], key=lambda r: r.score) for k in point_prompts]
    return _paint(best, embeddings.shape, nms_iou=nms_iou, min_size=min_size)
