"""micro-sam's AIS post-processing, for micro-sam's UNETR decoders (:mod:`samzoo.models.unetr`).

``micro_sam.instance_segmentation.InstanceSegmentationWithDecoder.generate`` with its defaults
(micro-sam 1.8.14), which calls ``torch_em.util.segmentation.watershed_from_center_and_boundary_distances``:

1. the foreground is smoothed (Gaussian, sigma 1.0), the centre and boundary distances too (sigma 1.6);
2. seeds: pixels with centre distance < 0.5 *and* boundary distance < 0.5 inside the foreground
   (> 0.5), labelled with 8-connectivity;
3. a seeded watershed on the boundary distance within the foreground (4-connectivity);
4. objects smaller than ``min_size`` (default 0: none) are removed.

micro-sam runs these with bioimage-cpp; samzoo with scipy and scikit-image: the Gaussian is the
same filter (bioimage-cpp's kernel reaches 3 sigma and mirrors at the border: scipy's
``mode="mirror", truncate=3``, equal to 1e-7). The watersheds differ only in the order in which
pixels of equal height are flooded (bioimage-cpp quantises heights to 65536 levels), i.e. along
the borders between touching objects.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import watershed

from samzoo.segmentation.watershed import _drop_small

CENTER_DISTANCE_THRESHOLD = 0.5
BOUNDARY_DISTANCE_THRESHOLD = 0.5
FOREGROUND_THRESHOLD = 0.5
FOREGROUND_SMOOTHING = 1.0
DISTANCE_SMOOTHING = 1.6
MIN_SIZE = 0


def _smooth(image: np.ndarray, sigma: float) -> np.ndarray:
    """bioimage-cpp's (and vigra's) Gaussian smoothing: kernel radius 3 sigma, mirrored border."""
    return ndi.gaussian_filter(image.astype(np.float32), sigma, mode="mirror", truncate=3.0) if sigma > 0 else image


def unetr_watershed(maps: np.ndarray, *, center_distance_threshold: float = CENTER_DISTANCE_THRESHOLD,
                    boundary_distance_threshold: float = BOUNDARY_DISTANCE_THRESHOLD,
                    foreground_threshold: float = FOREGROUND_THRESHOLD,
                    foreground_smoothing: float = FOREGROUND_SMOOTHING,
                    distance_smoothing: float = DISTANCE_SMOOTHING, min_size: int = MIN_SIZE) -> np.ndarray:
    """Instance labels from the maps of a micro-sam UNETR decoder, as micro-sam makes them.

    Parameters
    ----------
    maps : ndarray (3, H, W) float
        Foreground, centre distance, and boundary distance in samzoo's convention (1 deep inside:
        :func:`samzoo.segmentation.ais.ais_maps` turns micro-sam's round); micro-sam's own boundary
        distance is ``1 - maps[2]``.
    center_distance_threshold, boundary_distance_threshold, foreground_threshold : float
        micro-sam's ``generate`` parameters (seeds below the distance thresholds, foreground above).
    foreground_smoothing, distance_smoothing : float
        Gaussian sigmas.
    min_size : int
        Smaller objects are removed (micro-sam's default 0 keeps every object).

    Returns
    -------
    ndarray (H, W) int32, labels 1..N in the order of their seeds (row-major first pixel).

    Examples
    --------
    >>> maps = np.zeros((3, 40, 40), np.float32)
    >>> maps[0, 10:30, 10:30] = 1; maps[2, 14:26, 14:26] = 1
    >>> int(unetr_watershed(maps).max())
    1
    """
    foreground = _smooth(maps[0], foreground_smoothing) > foreground_threshold
    center = _smooth(maps[1], distance_smoothing)
    boundary = _smooth(1 - maps[2], distance_smoothing)
    seeds, _ = ndi.label((center < center_distance_threshold) & (boundary < boundary_distance_threshold)
                         & foreground, structure=np.ones((3, 3), bool))
    labels = watershed(boundary, markers=seeds, mask=foreground).astype(np.int32, copy=False)
    if min_size > 0:
        _drop_small(labels, min_size, relabel=True)
    return labels
