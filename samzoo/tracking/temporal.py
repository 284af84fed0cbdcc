"""Temporal repair of merged objects: cut an object that covers two objects of a neighbouring frame.

Automatic segmentation often returns two touching nuclei as one object: two neighbours that
bump into each other, or the two daughters of a division that still touch. In a single frame
such an object is hard to tell from one irregular nucleus (cutting every pinched object hurts
segmentation quality on real images), but the movie tells: the frame before or after shows
two objects where this frame has one.

:func:`split_by_neighbours` uses that context before linking. An object of frame ``t`` is cut
when at least two objects of a neighbouring frame each lie mostly (``min_cover``) inside it
(after removing the global drift between the frames), and the cut between them is a neck: the
watershed of the object's distance transform, seeded by the two neighbours, separates it along
a line where the object is thinner than ``max_neck`` times the thinner part
(:func:`cut_by_markers`). A compact nucleus, cut through its middle, has no neck (ratio 1), so
the mother of a division (one compact object before two daughters) is left whole.

A forward pass (frame ``t - 1`` explains ``t``) repairs two objects that merge for a while; a
backward pass (``t + 1`` explains ``t``) repairs daughters that come apart a few frames after
their division, back to the frame after the division. Each pass uses the frames it has already
repaired, so a cut carries on through a merge of any length.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from samzoo.tracking.frames import editable, read_frame, relabel_frame
from samzoo.tracking.geometry import estimate_drift, overlaps, shift_labels
from samzoo.tracking.lineage import check_masks


def cut_by_markers(mask: np.ndarray, markers: np.ndarray) -> tuple[np.ndarray, float]:
    """Cut one object in two along the watershed of its distance transform between two markers.

    Parameters
    ----------
    mask : ndarray bool (2D or 3D)
        The object.
    markers : ndarray int, same shape
        1 and 2 where the two parts are known to lie (0 elsewhere); only pixels inside ``mask``
        are used.

    Returns
    -------
    parts : ndarray int, same shape
        1 and 2 for the two parts, 0 outside ``mask``.
    neck : float
        How thick the object is where it is cut, relative to the thinner part: the largest
        distance-transform value on the cut divided by the smaller of the two parts' maxima.
        About 1 for a compact object cut through its middle, well below 1 for two blobs joined
        by a waist, 0 when the two parts do not touch; ``inf`` if a marker is missing in ``mask``.
    """
    from skimage.segmentation import watershed

    mask = np.asarray(mask, dtype=bool)
    markers = np.where(mask, markers, 0).astype(np.int32)
    if not ((markers == 1).any() and (markers == 2).any()):
        return np.zeros(mask.shape, dtype=np.int32), float("inf")
    distance = ndi.distance_transform_edt(np.pad(mask, 1))[(slice(1, -1),) * mask.ndim]
    parts = watershed(-distance, markers, mask=mask)
    # the cut: pairs of face neighbours in different parts; its thickness is the deepest such pixel
    saddle = 0.0
    for axis in range(mask.ndim):
        a, b = np.moveaxis(parts, axis, 0), np.moveaxis(distance, axis, 0)
        across = (a[:-1] * a[1:] == 2)  # one pixel in part 1, its neighbour in part 2
        if across.any():
            saddle = max(saddle, float(np.minimum(b[:-1], b[1:])[across].max()))
    # no common border: the object is in pieces already (one label on two blobs), the best neck
    return parts, saddle / float(min(ndi.maximum(distance, parts, index=[1, 2])))


def split_by_neighbours(masks: np.ndarray, *, max_neck: float = 0.9, min_cover: float = 0.5,
                        min_fraction: float = 0.2, correct_drift: bool = True,
                        in_place: bool = False) -> np.ndarray:
    """Cut objects that cover two objects of the previous or next frame (see the module docstring).

    Parameters
    ----------
    masks : ndarray (T, [Z,] Y, X) int, or a writable lazy array-like (a Zarr array)
        Instance labels per frame (labels need not agree between frames). Not modified unless
        ``in_place``; lazy masks are read and written one frame at a time.
    max_neck : float
        Cut only where the object is thinner than this fraction of its thinner part
        (see :func:`cut_by_markers`); 1 would cut compact objects too.
    min_cover : float
        A neighbouring object counts when at least this fraction of it lies inside the object.
    min_fraction : float
        Each part must keep at least this fraction of the object's pixels.
    correct_drift : bool
        Remove the global shift between frames before comparing them
        (:func:`samzoo.tracking.geometry.estimate_drift`).
    in_place : bool
        Write the cuts into ``masks`` itself; required for lazy masks.

    Returns
    -------
    ndarray (or the given lazy array with ``in_place``): the masks with cut objects, each new
    part under a new label of its frame.
    """
    masks = editable(check_masks(masks), in_place, "split_by_neighbours")
    n_frames = masks.shape[0]
    # cuts change labels, not the foreground: the drift from t to t + 1 found in the forward
    # pass serves the backward pass too (reversed)
    drifts: dict[int, np.ndarray] = {}
    for order in (range(1, n_frames), range(n_frames - 2, -1, -1)):  # forward, then backward
        step = order.step
        reference = None
        for t in order:
            reference = read_frame(masks, t - step) if reference is None else reference
            frame = read_frame(masks, t)
            if step == 1:
                drifts[t - 1] = (estimate_drift(reference, frame) if correct_drift else np.zeros(frame.ndim))
            drift = drifts[t - 1] if step == 1 else -drifts[t]
            cut = _split_frame(frame, reference, drift, max_neck=max_neck, min_cover=min_cover,
                               min_fraction=min_fraction)
            if cut is not None:
                masks[t] = cut
                frame = cut
            reference = frame  # the next frame is explained by this one, as repaired
    return masks


def _split_frame(frame: np.ndarray, reference: np.ndarray, drift: np.ndarray, *, max_neck: float,
                 min_cover: float, min_fraction: float) -> np.ndarray | None:
    """``frame`` with its objects that cover two objects of ``reference`` (moved by ``drift``) cut, or None."""
    labels = np.flatnonzero(np.bincount(frame.ravel()))
    labels = labels[labels > 0]
    ref_area = np.bincount(reference.ravel())
    ref_labels = np.flatnonzero(ref_area)
    ref_labels = ref_labels[ref_labels > 0]
    if len(labels) == 0 or len(ref_labels) < 2:
        return None
    moved = shift_labels(reference, drift)
    ref_area = ref_area[ref_labels]
    inter = overlaps(moved, frame, ref_labels, labels)  # (reference object, object of this frame)
    cover = inter / np.maximum(ref_area, 1)[:, None]
    candidates = np.flatnonzero((cover >= min_cover).sum(0) >= 2)
    if len(candidates) == 0:
        return None
    boxes = ndi.find_objects(frame.astype(np.int64, copy=False))  # one pass for every object's box
    out, top = None, int(labels[-1])
    for j in candidates:
        covered = np.flatnonzero(cover[:, j] >= min_cover)
        # the two neighbours filling most of the object
        first, second = covered[np.argsort(inter[covered, j])[::-1][:2]]
        box = boxes[labels[j] - 1]
        mask = frame[box] == labels[j]
        markers = np.where(moved[box] == ref_labels[first], 1, 0) + np.where(moved[box] == ref_labels[second], 2, 0)
        parts, neck = cut_by_markers(mask, markers)
        sizes = np.bincount(parts.ravel(), minlength=3)[1:]
        if neck >= max_neck or sizes.min() < min_fraction * mask.sum() or top + 1 > np.iinfo(frame.dtype).max:
            continue  # no neck, a sliver, or no label left in the masks' integer type
        out = frame.copy() if out is None else out
        top += 1
        out[box][parts == 2] = top
    return out


def add_border_objects(masks, candidates, *, min_cover: float = 0.5, in_place: bool = False):
    """Add the regions of ``candidates`` that continue an object of the frame before or after.

    ``candidates`` are per frame regions where an object may be that the segmentation left
    out, such as the parts of objects entering or leaving the field of view that the AIS
    watershed gives no seed (:func:`samzoo.segmentation.watershed.border_regions`). A region is
    added as a new object of its frame when one object of the previous frame (forward pass) or
    of the next frame (backward pass) covers at least ``min_cover`` of its pixels: a nucleus
    leaving the image a little more in every frame, or entering it. Each pass uses the objects
    it has added, so an object is followed through the frames in which only a sliver shows.
    A region seen in one frame only, like most fragments, is not added.

    Parameters
    ----------
    masks : ndarray (T, H, W) int or lazy array
        The segmentation; changed only with ``in_place`` (the only way for lazy masks).
    candidates : ndarray (T, H, W) int or lazy array
        The candidate regions of each frame, labelled per frame; they must lie where ``masks``
        is 0.
    min_cover : float

    Returns
    -------
    The masks with the regions added (new labels above each frame's largest).
    """
    masks = editable(check_masks(masks), in_place, "add_border_objects")
    if candidates.shape != masks.shape:
        raise ValueError(f"candidates {candidates.shape} and masks {masks.shape} differ in shape")
    n_frames = masks.shape[0]
    for order in (range(1, n_frames), range(n_frames - 2, -1, -1)):  # forward, then backward
        for t in order:
            regions = read_frame(candidates, t)
            if not regions.any():
                continue
            frame, reference = read_frame(masks, t), read_frame(masks, t - order.step)
            region_ids = np.flatnonzero(np.bincount(regions.ravel()))[1:]
            free = regions * (frame == 0)  # a region added by the other pass is there already
            ref_ids = np.flatnonzero(np.bincount(reference.ravel()))[1:]
            if not len(ref_ids):
                continue
            inter = overlaps(free, reference, region_ids, ref_ids)  # (region, reference object)
            area = np.bincount(free.ravel(), minlength=int(region_ids.max()) + 1)[region_ids]
            supported = region_ids[(area > 0) & (inter.max(1) >= min_cover * np.maximum(area, 1))]
            if not len(supported):
                continue
            top = int(frame.max(initial=0))
            if top + len(supported) > np.iinfo(frame.dtype).max:
                continue  # no label left in the masks' integer type
            added = relabel_frame(free, dict(zip(supported.tolist(), range(top + 1, top + 1 + len(supported)))))
            masks[t] = np.where(added > 0, added, frame).astype(frame.dtype, copy=False)
    return masks
