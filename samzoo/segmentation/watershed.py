"""From AIS decoder maps to instances: a seeded watershed (scikit-image).

The AIS decoder predicts foreground, the per-object normalised distance to the object centre
(0 at the centre) and to the object boundary (1 deep inside); see
:mod:`samzoo.models.ais_decoder`. Seeds are the pixels that are both near a centre and far
from a boundary; they grow over the inverted boundary distance within the foreground.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import clear_border, watershed

# Default thresholds, chosen for samzoo's own AIS decoder on its *training* planes (frames 0, 5,
# 10, 15 of the HeLa, bacteria and CHO movies, 5 slices of the 3D nuclei; never the held-out
# ones) as the grid point that raised both the pooled mSA (0.616 -> 0.654) and the mean over the
# four data sets (0.421 -> 0.431) over 0.5 / 0.5 / 0.5. The decoder's foreground is a little too
# wide and its seeds merge touching nuclei at 0.5: a stricter foreground and deeper seeds fix
# both. Checked afterwards on the held-out planes: mSA 0.599 -> 0.633 (scripts/bench_quality.py).
# The slim decoder shipped since 2026-12 was distilled from that one (its maps as targets, so
# these thresholds carry over): on the same training-plane grid, 0.7 / 0.4 / 0.6 is again its best
# pooled mSA (0.642 at training step 12000; held out 0.661 with the shipped step 20500).
FOREGROUND_THRESHOLD = 0.7
CENTER_THRESHOLD = 0.4
BOUNDARY_THRESHOLD = 0.6
MIN_SIZE = 25


def watershed_from_maps(maps: np.ndarray, *, foreground_threshold: float = FOREGROUND_THRESHOLD,
                        center_threshold: float = CENTER_THRESHOLD, boundary_threshold: float = BOUNDARY_THRESHOLD,
                        min_size: int = MIN_SIZE) -> np.ndarray:
    """Instance labels from AIS maps.

    Parameters
    ----------
    maps : ndarray (3, H, W) float
        Foreground probability, centre distance and boundary distance, all in [0, 1].
    foreground_threshold : float
        Pixels above it belong to some object.
    center_threshold : float
        Seeds need a centre distance *below* this value.
    boundary_threshold : float
        Seeds need a boundary distance *above* this value.
    min_size : int
        Objects (and seeds) with fewer pixels are dropped.

    Returns
    -------
    ndarray (H, W) int32
        Instance labels, 0 = background, consecutive from 1.

    Examples
    --------
    >>> maps = np.zeros((3, 32, 32), np.float32)
    >>> maps[0, 8:24, 8:24] = 1; maps[2, 12:20, 12:20] = 1
    >>> int(watershed_from_maps(maps, min_size=4).max())
    1
    """
    foreground = maps[0] > foreground_threshold
    box = bounding_box(foreground)
    if box is None:
        return np.zeros(maps.shape[1:], dtype=np.int32)
    # everything below happens inside the foreground's bounding box: the watershed floods only
    # the foreground, so the result is the same, and on sparse images the box is much smaller
    foreground, center, boundary = foreground[box], maps[1][box], maps[2][box]
    seeds, _ = ndi.label(foreground & (center < center_threshold) & (boundary > boundary_threshold))
    _drop_small(seeds, max(min_size // 4, 1))
    labels = watershed(-boundary, markers=seeds, mask=foreground)
    del seeds
    _drop_small(labels, min_size, relabel=True)
    labels = labels.astype(np.int32, copy=False)
    if labels.shape == maps.shape[1:]:
        return labels
    out = np.zeros(maps.shape[1:], dtype=np.int32)
    out[box] = labels
    return out


def border_regions(maps: np.ndarray, labels: np.ndarray, *, foreground_threshold: float = FOREGROUND_THRESHOLD,
                   min_size: int = MIN_SIZE) -> np.ndarray:
    """Foreground regions at the image edge that no object of ``labels`` covers: objects cut by the field of view.

    An object entering or leaving the image shows only a part, whose centre (per the AIS
    decoder) lies outside: it gets no seed, and :func:`watershed_from_maps` leaves it out. Kept
    as objects, such regions cost quality on still images (held-out mSA 0.661 -> 0.636 with the
    shipped model: most are fragments at the edge), but a movie tells the real ones, which
    continue an object of the frame before or after
    (:func:`samzoo.tracking.temporal.add_border_objects`).

    Parameters
    ----------
    maps : ndarray (3, H, W)
        AIS maps, as for :func:`watershed_from_maps`.
    labels : ndarray (H, W) int
        The objects found in them.
    foreground_threshold, min_size
        As for :func:`watershed_from_maps`.

    Returns
    -------
    ndarray (H, W) int32
        The regions, labelled 1, 2, ... (0 elsewhere).

    Examples
    --------
    >>> maps = np.zeros((3, 32, 32), np.float32)
    >>> maps[0, :6, 10:20] = 1  # foreground at the top edge, no seed
    >>> int(border_regions(maps, np.zeros((32, 32), int), min_size=4).max())
    1
    """
    rest, _ = ndi.label((maps[0] > foreground_threshold) & (labels == 0))
    rest[clear_border(rest) > 0] = 0  # keep the regions that touch the image edge
    _drop_small(rest, min_size, relabel=True)
    return rest.astype(np.int32, copy=False)


def bounding_box(mask: np.ndarray) -> tuple[slice, slice] | None:
    """The smallest ``(rows, cols)`` slices holding every True pixel of ``mask``; None if there is none."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if not len(rows):
        return None
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def _drop_small(labels: np.ndarray, min_size: int, *, relabel: bool = False) -> None:
    """In place: set labels with fewer than ``min_size`` pixels to 0; with ``relabel``, renumber the rest 1, 2, ...

    One pixel count and one lookup table: the same as scikit-image's ``remove_small_objects``
    followed by ``relabel_sequential`` (labels keep their order), without a full-size copy
    (at 8192 x 8192 each copy is 0.25-0.5 GB).
    """
    counts = np.bincount(labels.ravel())
    keep = counts >= min_size
    keep[0] = False
    lut = np.where(keep, np.cumsum(keep) if relabel else np.arange(len(keep)), 0).astype(labels.dtype)
    np.take(lut, labels, out=labels, mode="clip")  # "clip": no hidden buffer the size of labels
