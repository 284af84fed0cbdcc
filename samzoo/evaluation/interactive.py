"""Interactive evaluation: prompts derived from ground truth, then corrective clicks.

Per object: one positive point (at the pixel farthest from the object's boundary, where a
person would click) or the object's bounding box; then, for ``n_corrections`` rounds, one
click at the centre of the largest error (positive where the object was missed, negative
where too much was taken), with the previous logits as mask prompt. Reported: the mean IoU
over objects after each round.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.measure import regionprops

from samzoo.models.model import SamzooModel
from samzoo.segmentation.embeddings import ImageEmbeddings, compute_embeddings
from samzoo.segmentation.predictor import Prompt, predict


def _deepest_pixel(mask: np.ndarray) -> tuple[int, int]:
    """The pixel of ``mask`` farthest from its boundary (pad so the image edge counts as boundary)."""
    distance = ndi.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    return np.unravel_index(int(np.argmax(distance)), mask.shape)


def _correction(pred: np.ndarray, gt: np.ndarray) -> tuple[tuple[int, int], int]:
    missed, added = gt & ~pred, pred & ~gt
    region, positive = (missed, 1) if missed.sum() >= added.sum() else (added, 0)
    if not region.any():
        return _deepest_pixel(gt), 1
    components, _ = ndi.label(region)
    largest = components == (np.argmax(np.bincount(components.ravel())[1:]) + 1)
    return _deepest_pixel(largest), positive


def interactive_iou(model: SamzooModel, image: np.ndarray, labels: np.ndarray, *, start: str = "point",
                    n_corrections: int = 7, embeddings: ImageEmbeddings | None = None,
                    min_area: int = 10, refine: bool | None = None,
                    pick_instance: bool | None = None) -> np.ndarray:
    """Mean IoU over the objects of ``labels`` after the first prompt and each correction.

    Parameters
    ----------
    model : SamzooModel
    image : ndarray (H, W)
    labels : ndarray (H, W) int
        Ground-truth instances; objects smaller than ``min_area`` pixels are skipped.
    start : {"point", "box"}
    n_corrections : int
    embeddings : ImageEmbeddings, optional
    refine : bool, optional
        Passed to :func:`samzoo.segmentation.predictor.predict` (by default the AIS decoder's
        foreground decides the borders where the model can).
    pick_instance : bool, optional
        Passed to :func:`samzoo.segmentation.predictor.predict` (by default a single point gets
        the AIS instance under it where the model has one).

    Returns
    -------
    ndarray (n_corrections + 1,)
    """
    if start not in ("point", "box"):
        raise ValueError(f"start must be 'point' or 'box', got {start!r}")
    embeddings = embeddings or compute_embeddings(model, image)
    objects = [r for r in regionprops(labels) if r.area >= min_area]
    if not objects:
        return np.full(n_corrections + 1, np.nan)
    gts = {r.label: labels == r.label for r in objects}
    prompts = {}
    for r in objects:
        if start == "box":
            y0, x0, y1, x1 = r.bbox
            prompts[r.label] = Prompt(box=[y0, x0, y1 - 1, x1 - 1])
        else:
            prompts[r.label] = Prompt(points=[_deepest_pixel(gts[r.label])], point_labels=[1])
    results = predict(model, embeddings, prompts, refine=refine, pick_instance=pick_instance)
    ious = []
    for round_ in range(n_corrections + 1):
        masks = {k: v.full_mask(labels.shape) for k, v in results.items()}
        ious.append(np.mean([(masks[k] & gts[k]).sum() / (masks[k] | gts[k]).sum() for k in gts]))
        if round_ == n_corrections:
            break
        for k, p in prompts.items():
            (y, x), positive = _correction(masks[k], gts[k])
            prompts[k] = Prompt(points=np.vstack([p.points, [[y, x]]]), point_labels=np.append(p.point_labels, positive),
                                box=p.box)
        results = predict(model, embeddings, prompts, previous=results, refine=refine)
    return np.array(ious)
