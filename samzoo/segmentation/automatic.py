"""Automatic segmentation with SAM's decoder: AMG (a grid of point prompts) and APG (prompts from AIS).

AMG spends most of its time in the mask decoder, once per prompt. Three things keep that small:

- prompts that cannot hit an object are skipped: with an AIS decoder, grid points on
  background (foreground probability below ``foreground_threshold``) never reach SAM's decoder;
- prompts are decoded in batches, points deep inside AIS objects first, and a prompt falling
  inside a mask accepted by an earlier batch is dropped (it would only find that object again);
- the grid is laid per tile inner region, so no point is decoded twice across tile halos.

Each decoded prompt is itself cheaper than in SAM's own code path, see
:func:`samzoo.segmentation.mask_decoder.decode_masks`.

Candidates are filtered by predicted IoU and stability, de-duplicated by box NMS
(torchvision), cleaned (small regions and holes) and painted largest first.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage as ndi
from skimage.measure import regionprops
from skimage.morphology import remove_small_holes
from torchvision.ops import nms
from tqdm import tqdm

from samzoo.models.model import SamzooModel
from samzoo.segmentation.ais import ais_maps
from samzoo.segmentation.embeddings import ImageEmbeddings, compute_embeddings
from samzoo.segmentation.predictor import ObjectMask, Prompt, predict, prompts_per_call
from samzoo.segmentation.watershed import watershed_from_maps


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


def segment_amg(model: SamzooModel, image: np.ndarray, *, embeddings: ImageEmbeddings | None = None,
                points_per_side: int = 32, foreground_threshold: float | None = 0.3,
                pred_iou_threshold: float = 0.7, stability_threshold: float = 0.85, nms_iou: float = 0.7,
                min_size: int = 25, batch_size: int = 64, skip_covered: bool = True,
                progress: bool = False) -> np.ndarray:
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
        Prompts per decoder call.
    skip_covered : bool
        Drop grid points inside masks accepted by earlier batches. With ``False`` and
        ``foreground_threshold=None`` every grid point is decoded: the exact path, against
        which the shortcuts are validated (``scripts/bench_automatic.py``).

    Returns
    -------
    ndarray (H, W) int32 instance labels.
    """
    embeddings = embeddings or compute_embeddings(model, image)
    points = grid_points(embeddings, points_per_side)
    if foreground_threshold is not None and model.ais_decoder is not None:
        maps = ais_maps(model, embeddings)
        at_points = maps[:, points[:, 0].astype(int), points[:, 1].astype(int)]
        # points deep inside objects first (AIS boundary distance near 1): their masks, once
        # accepted, cover the object's other points, which are then never decoded
        order = np.argsort(-at_points[2], kind="stable")
        points = points[order][at_points[0][order] >= foreground_threshold]
        del maps
    covered = np.zeros(embeddings.shape, dtype=bool)
    candidates: list[ObjectMask] = []
    # predict() decodes at most prompts_per_call prompts at once anyway: smaller batches cost
    # nothing and let covered points be dropped sooner
    batch_size = min(batch_size, prompts_per_call(model)) if skip_covered else batch_size
    for start in tqdm(range(0, len(points), batch_size), desc="AMG", disable=not progress, leave=False):
        batch = points[start:start + batch_size]
        if skip_covered:
            batch = [p for p in batch if not covered[int(p[0]), int(p[1])]]
        if not len(batch):
            continue
        results = predict(model, embeddings, {i: Prompt(points=[p], point_labels=[1]) for i, p in enumerate(batch)},
                          multimask=True)
        for r in results.values():
            if r.score >= pred_iou_threshold and r.stability >= stability_threshold and r.area >= min_size:
                candidates.append(r)
                covered[r.tile.outer_slice] |= r.mask
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
