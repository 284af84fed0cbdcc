"""3D volumes: 2D segmentation per z-slice, joined into 3D objects.

- :func:`merge_slices` links objects of neighbouring slices (matched one-to-one by IoU) into one
  3D object when their IoU is high enough *or* most of the smaller one lies in the larger one:
  objects shrink towards their top and bottom slices, where IoU alone would cut them.
  (Measured on the annotated 3D nuclei, relabelled slice by slice: SA50 0.81 with both rules,
  0.55 with IoU alone.) Objects spanning fewer than ``min_z_extent`` slices are dropped.
- :func:`propagate_through_z` follows one object from a prompt in one slice: each next slice is
  prompted with the box and innermost point of the mask found in the current one, until the
  object ends (empty mask, low predicted IoU, or a sudden jump in area).
"""

from __future__ import annotations

from functools import partial

import numpy as np
from scipy import ndimage as ndi
from scipy.optimize import linear_sum_assignment

from samzoo.evaluation.instance_metrics import iou_matrix
from samzoo.models.model import SamzooModel
from samzoo.segmentation.embeddings import compute_embeddings
from samzoo.segmentation.predictor import Prompt, predict


def find_root(parent: dict, node):
    """The root of ``node`` in a union-find forest ``parent`` (child -> parent; roots absent or self).

    Path halving on the way keeps later lookups short. To join two sets, set
    ``parent[find_root(parent, a)] = find_root(parent, b)``.
    """
    while parent.setdefault(node, node) != node:
        parent[node] = parent[parent[node]]
        node = parent[node]
    return node


def merge_slices(slices, *, iou_threshold: float = 0.4, overlap_threshold: float = 0.8,
                 min_z_extent: int = 2, out=None):
    """Join per-slice instance labels ``(Z, H, W)`` into 3D instances.

    The slices are read one or two at a time, so a volume larger than memory (a Zarr array) can
    be merged into another one with ``out``; the result does not depend on which is used.

    Parameters
    ----------
    slices : array-like (Z, H, W)
        Per-slice labels: a numpy array, or anything whose ``len()`` is Z and whose ``[z]`` gives
        one 2D slice (a Zarr array, a lazy xarray/dask array).
    iou_threshold, overlap_threshold : float
        Objects of neighbouring slices are linked when their IoU reaches ``iou_threshold`` or when
        their intersection covers ``overlap_threshold`` of the smaller one.
    min_z_extent : int
        Objects spanning fewer slices are dropped.
    out : array-like (Z, H, W), optional
        Where to write the result slice by slice (``out[z] = ...``), e.g. a Zarr array; its
        dtype must hold the number of objects.

    Returns
    -------
    ndarray (Z, H, W) int32, 3D objects numbered from 1 in order of first appearance; or
    ``out`` when given.

    Examples
    --------
    >>> a = np.zeros((3, 8, 8), dtype=np.int32)
    >>> a[0, 2:6, 2:6] = 1; a[1, 2:6, 2:7] = 5; a[2, 0:2, 0:2] = 3
    >>> merged = merge_slices(a)
    >>> [np.unique(s).tolist() for s in merged]
    [[0, 1], [0, 1], [0]]
    """
    parent: dict[tuple[int, int], tuple[int, int]] = {}

    find = partial(find_root, parent)

    depth = slices.shape[0] if hasattr(slices, "shape") else len(slices)  # zarr arrays have no len()
    below = np.asarray(slices[0]) if depth else None
    for z in range(depth - 1):
        above = np.asarray(slices[z + 1])
        iou, overlap, ids_a, ids_b = _overlaps(below, above)
        if iou.size:
            linkable = (iou >= iou_threshold) | (overlap >= overlap_threshold)
            rows, cols = linear_sum_assignment(-np.where(linkable, 1 + iou, 0))
            for r, c in zip(rows, cols):
                if linkable[r, c]:
                    parent[find((z + 1, int(ids_b[c])))] = find((z, int(ids_a[r])))
        below = above
    # 3D ids by first appearance, counting only objects that span enough slices
    labels_per_slice = [np.unique(np.asarray(slices[z]))[1:].tolist() for z in range(depth)]
    extent: dict[tuple[int, int], int] = {}
    for z, labels in enumerate(labels_per_slice):
        for label in labels:
            root = find((z, label))
            extent[root] = extent.get(root, 0) + 1
    ids: dict[tuple[int, int], int] = {}
    for z, labels in enumerate(labels_per_slice):
        for label in labels:
            root = find((z, label))
            if extent[root] >= min_z_extent:
                ids.setdefault(root, len(ids) + 1)
    if out is None:
        out = np.zeros((depth,) + np.shape(slices[0])[-2:] if depth else (0, 0, 0), dtype=np.int32)
    for z, labels in enumerate(labels_per_slice):
        plane = np.asarray(slices[z])
        lut = np.zeros(max(labels, default=0) + 1, dtype=np.int64)
        for label in labels:
            lut[label] = ids.get(find((z, label)), 0)
        out[z] = lut[plane]
    return out


def _overlaps(a: np.ndarray, b: np.ndarray):
    """IoU and intersection / smaller area of every object pair of two label images."""
    iou, ids_a, ids_b = iou_matrix(a, b)
    area_a = ndi.sum_labels(np.ones(a.shape), a, ids_a)[:, None]
    area_b = ndi.sum_labels(np.ones(b.shape), b, ids_b)[None, :]
    # IoU = I / (A + B - I)  =>  I = IoU * (A + B) / (1 + IoU)
    intersection = iou * (area_a + area_b) / (1 + iou)
    return iou, intersection / np.maximum(np.minimum(area_a, area_b), 1), ids_a, ids_b


def propagate_through_z(model: SamzooModel, volume: np.ndarray, z: int, prompt: Prompt, *,
                        min_score: float = 0.5, max_area_change: float = 3.0) -> np.ndarray:
    """Segment one object through a volume, starting from a prompt in slice ``z``.

    Parameters
    ----------
    model : SamzooModel
    volume : ndarray (Z, H, W)
    z : int
        The slice the prompt is in.
    prompt : Prompt
        Points and/or box of the object in slice ``z`` (image pixels).
    min_score : float
        Stop when the decoder's predicted IoU falls below this.
    max_area_change : float
        Stop when the area grows or shrinks by more than this factor from one slice to the next
        (the object ended and the prompt caught a neighbour).

    Returns
    -------
    ndarray (Z, H, W) bool, the object's mask.
    """
    masks = np.zeros(volume.shape, dtype=bool)
    first = predict(model, compute_embeddings(model, volume[z]), {1: prompt})[1]
    masks[z] = first.full_mask(volume.shape[1:])
    for step in (1, -1):
        current, area = masks[z], masks[z].sum()
        for k in range(z + step, len(volume) if step > 0 else -1, step):
            if not current.any():
                break
            # the box is the last slice's: the object may grow beyond it in this one
            result = predict(model, compute_embeddings(model, volume[k]), {1: _prompt_from_mask(current)},
                             clip_to_box=False)[1]
            mask = result.full_mask(volume.shape[1:])
            new_area = mask.sum()
            if result.score < min_score or new_area == 0 or not (area / max_area_change <= new_area <= area * max_area_change):
                break
            masks[k], current, area = mask, mask, new_area
    return masks


def _prompt_from_mask(mask: np.ndarray) -> Prompt:
    """A box around the mask and a positive point at its innermost pixel."""
    ys, xs = np.nonzero(mask)
    inner = ndi.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(inner)), mask.shape)
    return Prompt(points=[[y, x]], point_labels=[1], box=[ys.min(), xs.min(), ys.max(), xs.max()])
