"""From AIS decoder maps to instances: a seeded watershed (scikit-image).

The AIS decoder predicts foreground, the per-object normalised distance to the object centre
(0 at the centre) and to the object boundary (1 deep inside); see
:mod:`samzoo.models.ais_decoder`. Seeds are the pixels that are both near a centre and far
from a boundary; they grow over the inverted boundary distance within the foreground.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import remove_small_objects
from skimage.segmentation import relabel_sequential, watershed


def watershed_from_maps(maps: np.ndarray, *, foreground_threshold: float = 0.5,
                        center_threshold: float = 0.5, boundary_threshold: float = 0.5,
                        min_size: int = 25) -> np.ndarray:
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
    if not foreground.any():
        return np.zeros(maps.shape[1:], dtype=np.int32)
    seeds_mask = foreground & (maps[1] < center_threshold) & (maps[2] > boundary_threshold)
    seeds, _ = ndi.label(seeds_mask)
    del seeds_mask
    # in place where possible: on large images (8192^2) every full-size copy is 0.25-0.5 GB
    remove_small_objects(seeds, max_size=max(min_size // 4, 1) - 1, out=seeds)
    labels = watershed(-maps[2], markers=seeds, mask=foreground)
    del seeds
    remove_small_objects(labels, max_size=min_size - 1, out=labels)
    labels, _, _ = relabel_sequential(labels)
    return labels.astype(np.int32, copy=False)

