"""Prompt segmentation: points, boxes and masks in, one mask per object out.

Prompts are in image pixel coordinates ``(y, x)``, like every array in samzoo; conversion to
SAM's ``(x, y)`` in tile coordinates happens here and nowhere else. Many objects are decoded
at once: objects are grouped by the tile that owns their prompt (see
:mod:`samzoo.segmentation.tiling`) and by prompt kind, and each group is one decoder batch.

Example
-------
>>> emb = compute_embeddings(model, image)                                  # doctest: +SKIP
>>> results = predict(model, emb, {1: Prompt(points=[[40, 52]], point_labels=[1])})  # doctest: +SKIP
>>> results = predict(model, emb, {1: Prompt(points=[[40, 52], [60, 52]], point_labels=[1, 0])},
...                   previous=results)                                    # refine  # doctest: +SKIP
>>> labels = paint_labels(results, emb.shape)                              # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import torch
from scipy import ndimage as ndi
from torch.nn import functional as F
from torchvision.ops import box_iou

from samzoo.errors import InputError
from samzoo.models.model import SamzooModel
from samzoo.segmentation.ais import tile_foreground, tile_instances
from samzoo.segmentation.embeddings import ImageEmbeddings
from samzoo.segmentation.mask_decoder import decode_masks
from samzoo.segmentation.refine import resolve_refine, snap_to_foreground
from samzoo.segmentation.sam_input import mask_prompt_logits, postprocess_logits, scale_xy
from samzoo.segmentation.tiling import Tile, owning_tile
from samzoo.segmentation.views import DEFAULT_VIEWS

MASK_PROMPT_LOGIT = 8.0  # a binary mask given as a prompt becomes logits of +-this value
# SAM's mask decoder runs its transformer over one copy of the image tokens per prompt: a call's
# working set grows as prompts x image tokens. Beyond ~4096 of those (16 prompts at 256 input)
# it falls out of the CPU caches and every prompt gets slower (samzoo_tiny, one core: 5.4 ms per
# prompt in calls of 16, 6.1 ms in one call of 64); larger groups are decoded in chunks.
PROMPT_TOKENS_PER_CALL = 4096
# A box alone picks the AIS instance it bounds when their boxes overlap by this IoU. Held out
# (11 sources, 6 planes each, boxes from the ground truth): mean one-box IoU 0.760 with SAM's
# clipped mask, 0.796 at 0.5, 0.789 at 0.7, 0.780 at 0.8; with one view's instances 0.782 at 0.5
BOX_PICK_IOU = 0.5


@dataclass
class Prompt:
    """The prompts for one object, in image pixels.

    Attributes
    ----------
    points : array-like (N, 2)
        ``(y, x)`` of each point.
    point_labels : array-like (N,)
        1 = positive (object), 0 = negative (not the object).
    box : array-like (4,) or None
        ``(ymin, xmin, ymax, xmax)``.
    mask : ndarray (H, W) bool or None
        A mask of the object in the whole image, e.g. from another method.
    """

    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    point_labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    box: np.ndarray | None = None
    mask: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.points = np.asarray(self.points, dtype=float).reshape(-1, 2)
        self.point_labels = np.asarray(self.point_labels, dtype=int).reshape(-1)
        if len(self.points) != len(self.point_labels):
            raise InputError(f"{len(self.points)} points but {len(self.point_labels)} point labels")
        if not np.isin(self.point_labels, (0, 1)).all():
            raise InputError("point labels must be 1 (positive) or 0 (negative)")
        if self.box is not None:
            self.box = np.asarray(self.box, dtype=float).reshape(4)
            if self.box[0] > self.box[2] or self.box[1] > self.box[3]:
                raise InputError(f"box {self.box.tolist()} has ymin > ymax or xmin > xmax")
        if len(self.points) == 0 and self.box is None and self.mask is None:
            raise InputError("an object needs at least one point, a box or a mask")

    def anchor(self) -> tuple[float, float]:
        """Where the object is: box centre, else mean of positive points, else of all points."""
        if self.box is not None:
            return (self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2
        positive = self.points[self.point_labels == 1]
        if len(positive):
            return tuple(positive.mean(0))
        if len(self.points):
            return tuple(self.points.mean(0))
        ys, xs = np.nonzero(self.mask)
        return float(ys.mean()), float(xs.mean())


@dataclass
class ObjectMask:
    """The prediction for one object.

    Attributes
    ----------
    tile : Tile
        The tile it was decoded in; ``mask`` covers the tile's outer region.
    mask : ndarray (h, w) bool
    score : float
        The decoder's predicted IoU of the chosen mask.
    logits : Tensor (1, 4g, 4g)
        Low-resolution logits, the mask prompt for a refinement step.
    stability : float
        IoU of the mask thresholded at logit +1 and at -1 (SAM's stability score): near 1 when
        the boundary does not move with the threshold.
    """

    tile: Tile
    mask: np.ndarray
    score: float
    logits: torch.Tensor
    stability: float = 1.0

    def full_mask(self, shape: tuple[int, int]) -> np.ndarray:
        """The mask in the whole image of ``shape``."""
        full = np.zeros(shape, dtype=bool)
        full[self.tile.outer_slice] = self.mask
        return full

    @property
    def area(self) -> int:
        return int(self.mask.sum())


def check_prompts(prompts: Mapping[int, Prompt], shape: tuple[int, int]) -> None:
    """Raise :class:`InputError` for prompts outside an image of ``shape``."""
    height, width = shape
    for object_id, p in prompts.items():
        # NaN compares False with every bound, so it must be caught before the range checks
        if not np.isfinite(p.points).all() or (p.box is not None and not np.isfinite(p.box).all()):
            raise InputError(f"object {object_id}: prompt coordinates must be finite numbers")
        if len(p.points) and ((p.points < 0).any() or (p.points[:, 0] > height - 1).any()
                              or (p.points[:, 1] > width - 1).any()):
            raise InputError(f"object {object_id}: a point lies outside the image of shape {shape}")
        if p.box is not None and ((p.box < 0).any() or p.box[2] > height - 1 or p.box[3] > width - 1):
            raise InputError(f"object {object_id}: box {p.box.tolist()} reaches outside the image of shape {shape}")
        if p.mask is not None and p.mask.shape != tuple(shape):
            raise InputError(f"object {object_id}: mask shape {p.mask.shape} differs from the image {shape}")


def prompts_per_call(model: SamzooModel) -> int:
    """How many prompts :func:`predict` decodes per call of SAM's decoder (see ``PROMPT_TOKENS_PER_CALL``).

    At least 2: part of the work is shared by the prompts of one call (see
    :func:`samzoo.segmentation.mask_decoder.decode_masks`); at 1024 input (4096 image tokens),
    calls of 2-4 prompts take ~64 ms per prompt, calls of 1 ~77 ms, calls of 16 ~90 ms.
    """
    return max(2, PROMPT_TOKENS_PER_CALL // (model.input_size // 16) ** 2)


@torch.no_grad()
def predict(model: SamzooModel, embeddings: ImageEmbeddings, prompts: Mapping[int, Prompt], *,
            multimask: bool | None = None, previous: Mapping[int, ObjectMask] | None = None,
            refine: bool | None = None, clip_to_box: bool | None = None,
            pick_instance: bool | None = None) -> dict[int, ObjectMask]:
    """Segment one object per entry of ``prompts``.

    Parameters
    ----------
    model : SamzooModel
    embeddings : ImageEmbeddings
        From :func:`samzoo.segmentation.embeddings.compute_embeddings` with the same model.
    prompts : mapping of object id -> Prompt
    multimask : bool, optional
        Predict three candidate masks and keep the one with the highest predicted IoU. By
        default only for objects prompted by a single point, which is ambiguous.
    previous : mapping of object id -> ObjectMask, optional
        An earlier result; its low-resolution logits become the mask prompt (iterative
        refinement) and the object stays in the same tile.
    refine : bool, optional
        Let the AIS decoder's full-resolution foreground decide each mask's border
        (:func:`samzoo.segmentation.refine.snap_to_foreground`). By default for every model that
        can (samzoo's own, with an AIS decoder); never for SAM-family models. The low-resolution
        logits (the next step's mask prompt) and the scores stay SAM's.
    clip_to_box : bool, optional
        A box says where its object lies: drop mask pixels outside an object's box. SAM's
        decoder does not bound its masks by the box, and on unseen images its box masks often
        run into neighbours (held-out mean one-box IoU of the default model 0.64 -> 0.80; see
        ``model_cards/samzoo_tiny_lm.md``). By default for samzoo's own models; never for
        SAM-family models, whose masks follow SAM and micro-sam. Pass False where a box is not
        the object's extent, e.g. last frame's box as a prompt for this frame.
    pick_instance : bool, optional
        An object prompted by one positive point alone (no box, mask or earlier result) gets
        the AIS instance under its point, where the AIS decoder finds one; elsewhere SAM's mask.
        The watershed sees the neighbours a single-point SAM mask does not (held-out mean one-point
        IoU 0.665 -> 0.709; see ``model_cards/samzoo_tiny_lm.md``). Likewise an object prompted by
        a box alone, where ``clip_to_box`` holds, gets the AIS instance inside the box whose
        bounding box overlaps it by IoU >= :data:`BOX_PICK_IOU` (held-out one-box IoU 0.771 -> 0.798).
        The instances are the tile's AIS over two views, as ``segment`` finds them by default
        (:func:`samzoo.segmentation.ais.tile_instances`; one point 0.714 -> 0.717 against one
        view). By default for every model that can refine (samzoo's own); never for SAM-family
        models. Corrections (an earlier result with more points) are SAM's, prompted with the
        picked mask. Pass False where a point or box does not name one object, e.g. AMG's grid.

    Returns
    -------
    dict of object id -> ObjectMask
    """
    check_prompts(prompts, embeddings.shape)
    previous = previous or {}
    groups: dict[tuple, list[int]] = {}
    for object_id, p in prompts.items():
        tile = previous[object_id].tile if object_id in previous else owning_tile(embeddings.tiles, *p.anchor())
        use_multimask = _single_point(p, object_id, previous) if multimask is None else multimask
        has_mask = p.mask is not None or object_id in previous
        # the number of points is part of the group: padding a prompt with "not a point" tokens
        # (label -1) is not neutral, SAM's decoder attends to them like to any other token
        key = (tile.index, p.box is not None, has_mask, use_multimask, len(p.points))
        groups.setdefault(key, []).append(object_id)
    results = {}
    for (tile_index, has_box, has_mask, use_multimask, _), ids in groups.items():
        tile = embeddings.tiles[tile_index]
        chunk = prompts_per_call(model)
        for start in range(0, len(ids), chunk):
            chunk_ids = ids[start:start + chunk]
            batch = [prompts[i] for i in chunk_ids]
            masks = [previous[i].logits if i in previous else _mask_logits(model, prompts[i].mask, tile)
                     for i in chunk_ids] if has_mask else None
            results.update(zip(chunk_ids, _decode(model, embeddings, tile, batch, masks, has_box, use_multimask)))
    if clip_to_box is None:
        clip_to_box = not model.config.sam_input
    picked = set()
    if resolve_refine(model, pick_instance, "pick instances"):
        picked = {i for i in results if _single_point(prompts[i], i, previous) and prompts[i].point_labels[0] == 1
                  and _pick_instance(model, embeddings, results[i], prompts[i].points[0])}
        # a box picks only where it is its object's extent (clip_to_box): not last frame's box
        picked |= {i for i in results if clip_to_box and _box_alone(prompts[i], i, previous)
                   and _pick_instance_in_box(model, embeddings, results[i], prompts[i].box)}
    if resolve_refine(model, refine):
        for i, r in results.items():
            if i not in picked:  # an AIS instance's border is the foreground's already
                r.mask = snap_to_foreground(r.mask, tile_foreground(model, embeddings, r.tile))
    if clip_to_box:
        for object_id, r in results.items():
            if prompts[object_id].box is not None:
                r.mask = _inside_box(r.mask, prompts[object_id].box, r.tile)
    return results


def _single_point(prompt: Prompt, object_id: int, previous: Mapping[int, ObjectMask]) -> bool:
    """Whether an object is prompted by one point alone (and is not a refinement step)."""
    return len(prompt.points) == 1 and prompt.box is None and prompt.mask is None and object_id not in previous


def _box_alone(prompt: Prompt, object_id: int, previous: Mapping[int, ObjectMask]) -> bool:
    """Whether an object is prompted by a box alone (and is not a refinement step)."""
    return prompt.box is not None and len(prompt.points) == 0 and prompt.mask is None and object_id not in previous


def _pick_instance(model: SamzooModel, embeddings: ImageEmbeddings, result: ObjectMask, point: np.ndarray) -> bool:
    """Replace, in place, ``result``'s mask and logits by the AIS instance under a positive ``point``.

    The logits become the instance as a mask prompt, so that a correction refines the mask the
    user saw. Returns whether there was an instance to pick.
    """
    # the same views as segment's default AIS, so that a click picks the object segment drew;
    # held out it also picks slightly better masks (one-point IoU 0.714 -> 0.717, 11 sources)
    instances = tile_instances(model, embeddings, result.tile, views=DEFAULT_VIEWS)
    y = int(round(point[0])) - result.tile.outer[0]
    x = int(round(point[1])) - result.tile.outer[1]
    label = instances[min(max(y, 0), instances.shape[0] - 1), min(max(x, 0), instances.shape[1] - 1)]
    if not label:
        return False
    result.mask = instances == label
    result.logits = _region_logits(model, result.mask)
    return True


def _pick_instance_in_box(model: SamzooModel, embeddings: ImageEmbeddings, result: ObjectMask,
                          box: np.ndarray) -> bool:
    """Replace, in place, ``result``'s mask and logits by the AIS instance that ``box`` bounds.

    That is the instance inside the box whose own bounding box overlaps it best, if by at least
    :data:`BOX_PICK_IOU` (else SAM's mask stays). Returns whether there was one.
    """
    instances = tile_instances(model, embeddings, result.tile, views=DEFAULT_VIEWS)
    # a box reaching past the tile keeps its size (an instance cut by the tile's edge matches it less)
    in_tile = _box_in_tile(box, result.tile)
    labels = np.unique(instances[_clipped(in_tile)])
    labels = labels[labels > 0]
    if not labels.size:
        return False
    extents = ndi.find_objects(instances)  # extents[label - 1]: the instance's bounding box
    # torchvision's box IoU is order-agnostic in its axes: (y0, x0, y1, x1) half-open boxes go in as they are
    candidates = [(rows.start, cols.start, rows.stop, cols.stop) for rows, cols in (extents[i - 1] for i in labels)]
    ious = box_iou(torch.tensor([in_tile], dtype=torch.float64), torch.tensor(candidates, dtype=torch.float64))[0]
    if float(ious.max()) < BOX_PICK_IOU:
        return False
    best = labels[int(torch.nonzero(ious == ious.max())[-1])]  # on a tie, the larger label
    result.mask = instances == best
    result.logits = _region_logits(model, result.mask)
    return True


def _box_in_tile(box: np.ndarray, tile: Tile) -> tuple[int, int, int, int]:
    """A prompt's box (image pixels, inclusive ``ymin, xmin, ymax, xmax``) in ``tile``'s outer
    region, half-open ``(y0, x0, y1, x1)``; it may reach past the region."""
    rows, cols = tile.outer_slice
    y0, x0 = int(np.floor(box[0])) - rows.start, int(np.floor(box[1])) - cols.start
    y1, x1 = int(np.ceil(box[2])) - rows.start + 1, int(np.ceil(box[3])) - cols.start + 1
    return y0, x0, y1, x1


def _clipped(box: tuple[int, int, int, int]) -> tuple[slice, slice]:
    """The part of a half-open box from :func:`_box_in_tile` that starts inside its tile, as slices."""
    y0, x0, y1, x1 = box
    return slice(max(y0, 0), max(y1, 0)), slice(max(x0, 0), max(x1, 0))


def _inside_box(mask: np.ndarray, box: np.ndarray, tile: Tile) -> np.ndarray:
    """``mask`` (over ``tile``'s outer region) without its pixels outside ``box`` (image pixels,
    inclusive ``ymin, xmin, ymax, xmax``)."""
    inside = np.zeros_like(mask)
    inside[_clipped(_box_in_tile(box, tile))] = True
    return mask & inside


def _decode(model: SamzooModel, embeddings: ImageEmbeddings, tile: Tile, batch: list[Prompt],
            masks: list[torch.Tensor] | None, has_box: bool, multimask: bool) -> list[ObjectMask]:
    sam = model.sam
    device = next(model.parameters()).device
    y0, x0 = tile.outer[0], tile.outer[1]
    h, w = tile.outer[2] - y0, tile.outer[3] - x0
    size = model.input_size
    # SAM-family models see the tile resized (sam_input): prompts move into that frame
    to_input = (lambda xy: scale_xy(xy, (h, w), size)) if model.config.sam_input else (lambda xy: xy)
    n_points = max(len(p.points) for p in batch)
    points = None
    if n_points:
        # every prompt of a group has the same number of points (see predict): no padding
        coords = np.zeros((len(batch), n_points, 2), dtype=np.float32)
        labels = -np.ones((len(batch), n_points), dtype=np.int64)
        for i, p in enumerate(batch):
            coords[i, :len(p.points)] = to_input(p.points[:, ::-1] - (x0, y0))
            labels[i, :len(p.points)] = p.point_labels
        points = (torch.from_numpy(coords).to(device), torch.from_numpy(labels).to(device))
    boxes = None
    if has_box:
        corners = np.stack([p.box[[1, 0, 3, 2]] - (x0, y0, x0, y0) for p in batch]).reshape(-1, 2, 2)
        boxes = torch.tensor(to_input(corners).reshape(-1, 4), dtype=torch.float32, device=device)
    mask_input = torch.stack(masks).to(device) if masks is not None else None
    sparse, dense = sam.prompt_encoder(points=points, boxes=boxes, masks=mask_input)
    embedding = torch.from_numpy(embeddings.features[tile.index][None]).to(device)
    # without mask prompts, every prompt's dense embedding is the same ("no mask"): one copy will do
    low_res, iou = decode_masks(sam.mask_decoder, embedding, sam.prompt_encoder.get_dense_pe(), sparse,
                                dense if mask_input is not None else dense[:1], multimask)
    best = iou.argmax(dim=1)
    chosen = torch.arange(len(batch), device=device)
    low_res, iou = low_res[chosen, best][:, None], iou[chosen, best]
    if model.config.sam_input:
        logits = postprocess_logits(low_res, (h, w), size)[:, 0]
    else:
        logits = F.interpolate(low_res, size=(size, size), mode="bilinear", align_corners=False)[:, 0, :h, :w]
    binary = (logits > 0).cpu().numpy()
    stability = ((logits > 1).sum((1, 2)) / (logits > -1).sum((1, 2)).clamp(min=1)).tolist()
    return [ObjectMask(tile, binary[i], float(iou[i]), low_res[i].cpu(), stability[i]) for i in range(len(batch))]


def _mask_logits(model: SamzooModel, mask: np.ndarray, tile: Tile) -> torch.Tensor:
    """A whole-image binary mask as the ``(1, 4g, 4g)`` low-resolution logits of ``tile``."""
    return _region_logits(model, mask[tile.outer_slice])


def _region_logits(model: SamzooModel, region: np.ndarray) -> torch.Tensor:
    """A binary mask over a tile's outer region as that tile's ``(1, 4g, 4g)`` low-resolution logits."""
    if model.config.sam_input:
        return mask_prompt_logits(region, model.sam.prompt_encoder.mask_input_size[0])
    crop = torch.from_numpy(region.astype(np.float32))
    size = model.input_size
    crop = F.pad(crop, (0, size - crop.shape[1], 0, size - crop.shape[0]))
    low = F.interpolate(crop[None, None], size=model.sam.prompt_encoder.mask_input_size, mode="area")[0]
    return (low * 2 - 1) * MASK_PROMPT_LOGIT


def paint_labels(results: Mapping[int, ObjectMask], shape: tuple[int, int]) -> np.ndarray:
    """Paint object masks into one label image, largest first so small objects stay visible.

    Returns
    -------
    ndarray (H, W) uint32, each object's pixels set to its id.
    """
    labels = np.zeros(shape, dtype=np.uint32)
    for object_id, result in sorted(results.items(), key=lambda item: -item[1].area):
        region = labels[result.tile.outer_slice]
        region[result.mask] = object_id
    return labels
