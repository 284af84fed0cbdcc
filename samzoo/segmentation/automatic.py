"""Automatic segmentation with SAM's decoder: AMG (a grid of point prompts) and APG (prompts from AIS).

AMG spends most of its time in the mask decoder, once per prompt. These keep that small:

- prompts that cannot hit an object are skipped: with an AIS decoder, grid points on
  background (foreground probability below ``foreground_threshold``) never reach SAM's decoder;
- each AIS foreground component is prompted one point at a time, deepest inside first (AIS
  boundary distance), and a point inside a mask accepted earlier is dropped: it would only find
  that object again. A component is given up after ``max_rejected`` rejected masks, or at once
  after a mask far below the thresholds (``give_up_margin``), where further points rarely give
  an accepted one. Different components, of every tile, are decoded together, one point each
  per component and decoder call;
- each prompt is decoded on a window of the image embedding around its point, in bfloat16
  where the hardware has it (:mod:`samzoo.segmentation.windows`);
- the grid is laid per tile inner region, so no point is decoded twice across tile halos.

With ``foreground_threshold=None, skip_covered=False, window=None`` every grid point is decoded
on the whole tile in float32, as SAM's AMG does: the exact path, against which
``scripts/bench_automatic.py`` validates the shortcuts by mSA on held-out real data. Each decoded
prompt is itself cheaper than in SAM's own code path, see
:func:`samzoo.segmentation.mask_decoder.decode_masks`.

Candidates are filtered by predicted IoU and stability, de-duplicated by box NMS
(torchvision), cleaned (small regions and holes) and painted largest first.

That is samzoo's AMG, the default for samzoo's own models. SAM-family models (the published
SAM and micro-sam models, and their files loaded by path) get micro-sam's AMG by default, step by
step (:mod:`samzoo.segmentation.amg_microsam`); ``method=`` chooses either for any model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage as ndi
from skimage.measure import regionprops
from skimage.morphology import remove_small_holes
from torchvision.ops import nms
from tqdm import tqdm

from samzoo.errors import InputError
from samzoo.models.model import SamzooModel
from samzoo.segmentation.ais import ais_maps, tile_foreground
from samzoo.segmentation.amg_microsam import PRED_IOU_THRESHOLD, STABILITY_THRESHOLD, segment_amg_microsam
from samzoo.segmentation.embeddings import ImageEmbeddings, compute_embeddings
from samzoo.segmentation.predictor import ObjectMask, Prompt, predict, prompts_per_call
from samzoo.segmentation.refine import resolve_refine, snap_to_foreground
from samzoo.segmentation.watershed import watershed_from_maps
from samzoo.segmentation.windows import bfloat16_decoder, decode_points, native_bfloat16

APG_CHUNK = 512  # APG instances decoded at a time
# samzoo's AMG thresholds: fixed values until PR 17, now the ceilings of the per-image calibration
PRED_IOU_CEILING, STABILITY_CEILING = 0.7, 0.85
# (step below the image's median, floor) for predicted IoU and stability; measured on the first
# masks of held-out images of 11 sources (see calibrated_thresholds)
CALIBRATION_STEPS = ((0.1, 0.45), (0.05, 0.75))
CALIBRATION_SAMPLE = 256  # components whose first mask calibrates an image's thresholds
AMG_METHODS = ("samzoo", "micro-sam")


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


@dataclass
class AMGMask:
    """One mask AMG kept before painting: its bounding box ``(y0, x0, y1, x1)`` in the image (end
    exclusive), the mask inside that box, and the decoder's predicted IoU and stability score.

    AMG keeps every accepted mask until it paints them; on a large image there are tens of
    thousands, and a tile-sized mask each (as :class:`ObjectMask` holds) would not fit in memory.
    """

    box: tuple[int, int, int, int]
    mask: np.ndarray
    score: float
    stability: float = 1.0

    @classmethod
    def of(cls, r: ObjectMask) -> AMGMask:
        ys, xs = np.nonzero(r.mask.any(1))[0], np.nonzero(r.mask.any(0))[0]
        if not len(ys):
            return cls((0, 0, 0, 0), np.zeros((0, 0), bool), r.score, r.stability)
        y0, x0 = r.tile.outer[0] + ys[0], r.tile.outer[1] + xs[0]
        crop = r.mask[ys[0]:ys[-1] + 1, xs[0]:xs[-1] + 1].copy()
        return cls((y0, x0, y0 + crop.shape[0], x0 + crop.shape[1]), crop, r.score, r.stability)

    @property
    def area(self) -> int:
        return int(self.mask.sum())


def paint_masks(candidates: list[AMGMask], shape: tuple[int, int], *, nms_iou: float, min_size: int) -> np.ndarray:
    """Instance labels ``shape`` from AMG's masks: NMS on their boxes (by ``score``), painted
    largest first, small regions removed and small holes filled (as SAM's AMG does)."""
    candidates = [c for c in candidates if c.area >= min_size]
    labels = np.zeros(shape, dtype=np.int32)
    if not candidates:
        return labels
    # torchvision's boxes: (x0, y0, x1, y1), corners inclusive
    boxes = torch.tensor([[x0, y0, x1 - 1, y1 - 1] for y0, x0, y1, x1 in (c.box for c in candidates)],
                         dtype=torch.float32)
    keep = nms(boxes, torch.tensor([c.score for c in candidates], dtype=torch.float32), nms_iou).tolist()
    kept = sorted((candidates[i] for i in keep), key=lambda c: -c.area)
    for label, c in enumerate(kept, start=1):
        y0, x0, y1, x1 = c.box
        labels[y0:y1, x0:x1][c.mask] = label
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


def calibrated_thresholds(first: list[ObjectMask], pred_iou_threshold: float | None = None,
                          stability_threshold: float | None = None) -> tuple[float, float]:
    """AMG's predicted-IoU and stability thresholds for one image, from its first masks.

    SAM's IoU head scores masks lower on images unlike its training data, all of them alike: on
    held-out H&E-like tissue the first mask of each AIS component had a median predicted IoU of
    0.55 where it matched a nucleus (IoU >= 0.5) and 0.38 where it did not, against 0.77 and
    0.62 on HeLa. A fixed 0.7 kept 4 % of tissue's masks. Within an image the ranking holds, so
    each threshold sits a fixed step (``CALIBRATION_STEPS``) below the median of ``first`` (the
    first mask of up to ``CALIBRATION_SAMPLE`` AIS components: one per object or clump),
    clipped to a floor under which masks are rarely objects and a ceiling of the fixed defaults.

    Parameters
    ----------
    first : list of ObjectMask
    pred_iou_threshold, stability_threshold : float, optional
        Given values are kept as they are.

    Returns
    -------
    (pred_iou_threshold, stability_threshold)

    Examples
    --------
    >>> from types import SimpleNamespace as Mask
    >>> calibrated_thresholds([Mask(score=0.5, stability=0.86), Mask(score=0.6, stability=0.9)])
    (0.45, 0.83)
    """
    if not first:
        return (PRED_IOU_CEILING if pred_iou_threshold is None else pred_iou_threshold,
                STABILITY_CEILING if stability_threshold is None else stability_threshold)
    (iou_step, iou_floor), (stability_step, stability_floor) = CALIBRATION_STEPS
    if pred_iou_threshold is None:
        pred_iou_threshold = round(float(np.clip(np.median([r.score for r in first]) - iou_step,
                                                 iou_floor, PRED_IOU_CEILING)), 4)
    if stability_threshold is None:
        stability_threshold = round(float(np.clip(np.median([r.stability for r in first]) - stability_step,
                                                  stability_floor, STABILITY_CEILING)), 4)
    return pred_iou_threshold, stability_threshold


def amg_prompts(model: SamzooModel, embeddings: ImageEmbeddings, points_per_side: int,
                foreground_threshold: float | None, *, keep_foreground: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """AMG's grid points in the order they are tried, and the AIS foreground component of each.

    With an AIS decoder and a ``foreground_threshold``, points on background are dropped and
    the rest are sorted deepest inside an object first (AIS boundary distance); each point's
    component is the connected region of AIS foreground it lies in. Otherwise every grid point
    is kept, in grid order, as a component of its own. ``keep_foreground``: see :func:`ais_maps`.
    """
    points = grid_points(embeddings, points_per_side)
    if foreground_threshold is None or model.ais_decoder is None:
        return points, np.arange(len(points))
    maps = ais_maps(model, embeddings, keep_foreground=keep_foreground)
    ys, xs = points[:, 0].astype(int), points[:, 1].astype(int)
    foreground = maps[0] >= foreground_threshold
    order = np.argsort(-maps[2][ys, xs], kind="stable")
    order = order[foreground[ys[order], xs[order]]]
    components, _ = ndi.label(foreground)
    return points[order], components[ys[order], xs[order]]


def segment_amg(model: SamzooModel, image: np.ndarray, *, embeddings: ImageEmbeddings | None = None,
                points_per_side: int = 32, method: str | None = None, foreground_threshold: float | None = 0.3,
                pred_iou_threshold: float | None = None, stability_threshold: float | None = None,
                nms_iou: float = 0.7, min_size: int | None = None, batch_size: int = 64, skip_covered: bool = True,
                max_rejected: int | None = 2, give_up_margin: float | None = 0.15, window: int | None = 64,
                bfloat16: bool | None = None, refine: bool | None = None, progress: bool = False) -> np.ndarray:
    """Automatic mask generation: a grid of point prompts through SAM's decoder.

    Parameters
    ----------
    model : SamzooModel
    image : ndarray (H, W) or (H, W, C)
    embeddings : ImageEmbeddings, optional
    points_per_side : int
        ``"samzoo"``: grid density per model-input side (32 for a 512 input = one point per 16
        pixels), over each tile's inner region. ``"micro-sam"``: points per side of each tile
        (with its halo), as SAM's grid.
    method : {"samzoo", "micro-sam"}, optional
        ``"micro-sam"``: micro-sam 1.8.14's ``AutomaticMaskGenerator`` with its defaults, step by
        step (:mod:`samzoo.segmentation.amg_microsam`); of the parameters below it uses
        ``pred_iou_threshold``, ``stability_threshold``, ``nms_iou``, ``min_size`` (its
        ``min_mask_region_area``) and ``batch_size``. ``"samzoo"``: samzoo's own AMG, described
        here. Default: ``"micro-sam"`` for SAM-family models (``model.config.sam_input``: the
        published models, SAM and micro-sam files), ``"samzoo"`` for samzoo's own.
    foreground_threshold : float or None
        Skip grid points where the AIS foreground is below it; ``None`` (or a model without
        an AIS decoder) decodes every grid point, as SAM's original AMG does.
    pred_iou_threshold, stability_threshold : float, optional
        Keep masks whose predicted IoU and stability score reach these values. Default
        (``"samzoo"``): calibrated on each image (:func:`calibrated_thresholds`), at most 0.7
        and 0.85; micro-sam's fixed 0.88 and 0.95 (``"micro-sam"``).
    nms_iou : float
        Masks whose boxes overlap more than this with a better mask are dropped.
    min_size : int, optional
        Smaller masks, regions and holes are removed. Default: 25 (``"samzoo"``), micro-sam's 0
        (``"micro-sam"``).
    batch_size : int
        At most this many prompts per decoder call.
    skip_covered : bool
        Drop grid points inside masks accepted earlier. (With AIS components, each decoder call
        takes at most one point per component either way.)
    max_rejected : int or None
        Stop prompting an AIS foreground component after this many rejected masks (``None``: never).
    give_up_margin : float or None
        Stop at once after a rejected mask whose predicted IoU or stability lies more than this
        below its threshold (``None``: count it as one rejection like any other). Such a mask
        says SAM sees no object there: on held-out data, later points of those components gave
        no accepted mask.
    window : int or None
        Decode each prompt on this many pixels of embedding around it
        (:func:`decode_points`); ``None``: on the whole tile.
    bfloat16 : bool or None
        Decode the windows with a bfloat16 copy of the mask decoder (:func:`bfloat16_decoder`).
        ``None``: where the model's device computes bfloat16 natively (:func:`native_bfloat16`).
        The exact path (``window=None``) always decodes in float32.
    refine : bool, optional
        Let the AIS decoder's foreground decide the border of each accepted mask
        (:func:`samzoo.segmentation.refine.snap_to_foreground`). By default for models that can.
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
    method = method or ("micro-sam" if model.config.sam_input else "samzoo")
    if method not in AMG_METHODS:
        raise InputError(f"unknown AMG method {method!r}; known: {', '.join(AMG_METHODS)}")
    _check_max_rejected(max_rejected)  # before the embeddings: a bad call fails at once
    embeddings = embeddings or compute_embeddings(model, image)
    if method == "micro-sam":
        return segment_amg_microsam(
            model, embeddings, points_per_side=points_per_side, nms_iou=nms_iou, batch_size=batch_size,
            pred_iou_threshold=PRED_IOU_THRESHOLD if pred_iou_threshold is None else pred_iou_threshold,
            stability_threshold=STABILITY_THRESHOLD if stability_threshold is None else stability_threshold,
            min_size=0 if min_size is None else min_size, progress=progress)
    min_size = 25 if min_size is None else min_size
    masks = amg_masks(model, embeddings, points_per_side=points_per_side, foreground_threshold=foreground_threshold,
                      pred_iou_threshold=pred_iou_threshold, stability_threshold=stability_threshold,
                      min_size=min_size, batch_size=batch_size, skip_covered=skip_covered, max_rejected=max_rejected,
                      give_up_margin=give_up_margin, window=window, bfloat16=bfloat16, refine=refine,
                      progress=progress)
    return paint_masks(masks, embeddings.shape, nms_iou=nms_iou, min_size=min_size)


def amg_masks(model: SamzooModel, embeddings: ImageEmbeddings, *, points_per_side: int = 32,
              foreground_threshold: float | None = 0.3, pred_iou_threshold: float | None = None,
              stability_threshold: float | None = None, min_size: int = 25, batch_size: int = 64,
              skip_covered: bool = True, max_rejected: int | None = 2, give_up_margin: float | None = 0.15,
              window: int | None = 64, bfloat16: bool | None = None, refine: bool | None = None,
              progress: bool = False) -> list[AMGMask]:
    """The masks samzoo's AMG accepts, before they are de-duplicated and painted (:func:`paint_masks`).

    The parameters are :func:`segment_amg`'s (``method="samzoo"``). For scripts that filter or
    score the masks themselves: ``segment_amg(...)`` is
    ``paint_masks(amg_masks(...), embeddings.shape, nms_iou=..., min_size=...)``.

    Returns
    -------
    list of AMGMask
        In the order they were accepted.
    """
    _check_max_rejected(max_rejected)
    if bfloat16 is None:
        bfloat16 = native_bfloat16(next(model.parameters()).device)
    decoder = bfloat16_decoder(model) if bfloat16 and window is not None else None
    refine = resolve_refine(model, refine)
    # the AIS pass that places the points keeps its foreground for the refinement: no second decoder run
    points, component = amg_prompts(model, embeddings, points_per_side, foreground_threshold, keep_foreground=refine)
    ys, xs = points[:, 0].astype(int), points[:, 1].astype(int)
    if skip_covered and len(np.unique(component)) == len(component):
        # no AIS components: all points come in one round, and calls no larger than predict's
        # own let points covered by an earlier call be dropped sooner, at no cost
        batch_size = min(batch_size, prompts_per_call(model))
    covered = np.zeros(embeddings.shape, dtype=bool)
    rejected = np.zeros(component.max(initial=0) + 1, dtype=int)
    pending = np.ones(len(points), dtype=bool)
    candidates: list[AMGMask] = []

    def accepted(r: ObjectMask) -> bool:
        return r.score >= pred_iou_threshold and r.stability >= stability_threshold and r.area >= min_size

    def keep(i: int, r: ObjectMask) -> None:
        if accepted(r):
            if refine:
                r.mask = snap_to_foreground(r.mask, tile_foreground(model, embeddings, r.tile))
            candidates.append(AMGMask.of(r))
            covered[r.tile.outer_slice] |= r.mask
        elif max_rejected is not None and give_up_margin is not None and (
                r.score < pred_iou_threshold - give_up_margin or r.stability < stability_threshold - give_up_margin):
            rejected[component[i]] = max_rejected  # far from acceptable: no later point will do
        else:
            rejected[component[i]] += 1

    # thresholds left None are calibrated on the first masks of AIS components; without those (no
    # AIS decoder, or every grid point decoded) they are the fixed ceilings, as before calibration
    sampled: dict[int, ObjectMask] = {}  # point -> its mask, decoded to calibrate; reused in its round
    ais_components = foreground_threshold is not None and model.ais_decoder is not None
    if (pred_iou_threshold is None or stability_threshold is None) and ais_components and len(points):
        # the first point of evenly spaced components (one object or clump each), a bounded number:
        # the masks are tile-sized
        _, first = np.unique(component, return_index=True)
        sample = first[np.unique(np.linspace(0, len(first) - 1, min(len(first), CALIBRATION_SAMPLE)).astype(int))]
        sampled = dict(zip(sample.tolist(), decode_points(model, embeddings, points[sample], window=window,
                                                          decoder=decoder)))
    pred_iou_threshold, stability_threshold = calibrated_thresholds(list(sampled.values()), pred_iou_threshold,
                                                                    stability_threshold)

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
            fresh = [i for i in batch if i not in sampled]
            decoded = dict(zip(fresh, decode_points(model, embeddings, points[fresh], window=window, accept=accepted,
                                                    decoder=decoder)))
            for i in batch:
                keep(i, sampled.pop(i) if i in sampled else decoded[i])
    bar.close()
    return candidates


def _check_max_rejected(max_rejected: int | None) -> None:
    if max_rejected is not None and max_rejected < 1:
        raise InputError(f"max_rejected must be at least 1 (or None), got {max_rejected}")


def segment_apg(model: SamzooModel, image: np.ndarray, *, embeddings: ImageEmbeddings | None = None,
                nms_iou: float = 0.7, min_size: int = 25, **ais_kwargs) -> np.ndarray:
    """Prompts from AIS: each AIS instance prompts SAM with a point and with a box.

    Per instance, a positive point at its innermost pixel and its bounding box are decoded;
    the result with the higher predicted IoU is kept; overlaps are resolved by NMS and painting
    largest first. ``ais_kwargs`` go to the watershed
    (:func:`samzoo.segmentation.watershed.watershed_from_maps`).
    """
    embeddings = embeddings or compute_embeddings(model, image)
    # the foreground kept for predict's refinement of the prompts' masks below: no second decoder run
    maps = ais_maps(model, embeddings, keep_foreground=resolve_refine(model, None))
    instances = watershed_from_maps(maps, min_size=min_size, **ais_kwargs)
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
    best, keys = [], list(point_prompts)
    for start in range(0, len(keys), APG_CHUNK):  # a tile-sized mask per prompt: a bounded number at a time
        part = keys[start:start + APG_CHUNK]
        # the points come from AIS instances: picking those instances back would be no prompt at all
        by_point = predict(model, embeddings, {k: point_prompts[k] for k in part}, multimask=True, pick_instance=False)
        # an AIS instance may be a piece of its object: its box must not bound SAM's mask
        by_box = predict(model, embeddings, {k: box_prompts[k] for k in part}, clip_to_box=False)
        best += [AMGMask.of(max(by_point[k], by_box[k], key=lambda r: r.score)) for k in part]
    return paint_masks(best, embeddings.shape, nms_iou=nms_iou, min_size=min_size)
