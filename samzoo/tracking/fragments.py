"""Temporal repair of fragments: join the pieces of an object that the next frame shows whole.

Automatic segmentation sometimes cuts one nucleus into two touching pieces, for a frame or a
few (textured or dim nuclei, nuclei in mitosis). To a linker the pieces look like the two
daughters of a division: on Fluo-N2DH-SIM+ 01 most of the false divisions of samzoo's tracking
were such pieces, both lying in one ground-truth nucleus.

The frame after tells them apart from daughters: a division does not undo itself, so two
objects of frame ``t`` that both lie mostly (``min_cover``) inside one object of frame ``t + 1``
were not daughters. They are joined when they touch and their union has no neck (the cut
between them is about as thick as the union, :func:`samzoo.tracking.temporal.cut_by_markers`):
two touching neighbours that the segmentation merges in the next frame form a waist and stay
apart. The pass runs backward, from the last frame to the first, each frame explained by the
next one as repaired, so pieces that last several frames are joined back to where they began.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from samzoo.tracking.frames import editable, read_frame
from samzoo.tracking.geometry import estimate_drift, overlaps, shift_labels
from samzoo.tracking.lineage import check_masks
from samzoo.tracking.temporal import cut_by_markers


def join_fragments(masks: np.ndarray, *, min_neck: float = 0.9, min_cover: float = 0.5, correct_drift: bool = True,
                   in_place: bool = False) -> np.ndarray:
    """Join touching objects that the next frame shows as one (see the module docstring).

    Parameters
    ----------
    masks : ndarray (T, [Z,] Y, X) int, or a writable lazy array-like
        As for :func:`samzoo.tracking.temporal.split_by_neighbours`.
    min_neck : float
        Join only where the union is at least this thick at the cut, relative to its thinner
        part (1: a compact object cut through its middle; two blobs joined by a waist are
        well below); :func:`samzoo.tracking.temporal.split_by_neighbours` cuts below the same value.
    min_cover : float
        An object counts as inside an object of the next frame when at least this fraction of
        it lies there.
    correct_drift : bool
        Remove the global shift between frames before comparing them.
    in_place : bool
        Write into ``masks`` itself; required for lazy masks.

    Returns
    -------
    ndarray (or the given lazy array with ``in_place``): the masks with joined pieces under the
    label of the larger piece.

    Examples
    --------
    >>> masks = np.zeros((2, 20, 20), int)
    >>> masks[0, 5:15, 5:10], masks[0, 5:15, 10:15] = 1, 2     # a square cut in two
    >>> masks[1, 5:15, 5:15] = 1                              # whole in the next frame
    >>> np.unique(join_fragments(masks)[0]).tolist()
    [0, 1]
    """
    masks = editable(check_masks(masks), in_place, "join_fragments")
    following = None
    for t in range(masks.shape[0] - 2, -1, -1):
        following = read_frame(masks, t + 1) if following is None else following
        frame = read_frame(masks, t)
        drift = estimate_drift(following, frame) if correct_drift else np.zeros(frame.ndim)
        joined = _join_frame(frame, shift_labels(following, drift), min_neck=min_neck, min_cover=min_cover)
        if joined is not None:
            masks[t] = joined
            frame = joined
        following = frame
    return masks


def _join_frame(frame: np.ndarray, following: np.ndarray, *, min_neck: float, min_cover: float) -> np.ndarray | None:
    """``frame`` with the pieces of each object of ``following`` (already aligned) joined, or None."""
    area = np.bincount(frame.ravel())
    labels = np.flatnonzero(area)
    labels = labels[labels > 0]
    next_labels = np.flatnonzero(np.bincount(following.ravel()))
    next_labels = next_labels[next_labels > 0]
    if len(labels) < 2 or len(next_labels) == 0:
        return None
    inter = overlaps(following, frame, next_labels, labels)  # (object of the next frame, object here)
    inside = inter / np.maximum(area[labels], 1)[None, :] >= min_cover
    out = None
    for i in np.flatnonzero(inside.sum(1) >= 2):
        pieces = labels[np.flatnonzero(inside[i])]
        pieces = pieces[np.argsort(-area[pieces])]  # the largest piece keeps its label
        current = frame if out is None else out
        keep = int(pieces[0])
        for piece in pieces[1:]:
            union = (current == keep) | (current == piece)
            box = ndi.find_objects(union.astype(np.uint8))[0]
            markers = np.where(current[box] == keep, 1, 0) + np.where(current[box] == piece, 2, 0)
            _, neck = cut_by_markers(union[box], markers)  # 0 when the pieces do not touch
            if min_neck <= neck < np.inf:
                out = current.copy() if out is None else out
                out[out == piece] = keep
                current = out
    return out
