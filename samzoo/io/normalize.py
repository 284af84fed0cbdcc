"""Intensity normalisation: what the model expects from any microscopy dtype."""

from __future__ import annotations

import numpy as np


def percentile_normalize(image: np.ndarray, lower: float = 1.0, upper: float = 99.8) -> np.ndarray:
    """Map the ``lower``..``upper`` percentile range of ``image`` to [0, 1], clipping outside it.

    Percentiles rather than min/max make the result robust to hot pixels and saturated spots.
    Only finite values count; NaN and inf become 0. A constant image becomes all zeros.

    Parameters
    ----------
    image : ndarray of any real dtype
    lower, upper : float
        Percentiles (0..100) mapped to 0 and 1.

    Returns
    -------
    ndarray, float32, same shape, values in [0, 1].

    Examples
    --------
    >>> percentile_normalize(np.array([0, 5, 10]), 0, 100).tolist()
    [0.0, 0.5, 1.0]
    """
    image = np.asarray(image, dtype=np.float32)
    finite = np.isfinite(image)
    if not finite.any():
        return np.zeros(image.shape, dtype=np.float32)
    lo, hi = np.percentile(image[finite], [lower, upper])
    if hi <= lo:
        return np.zeros(image.shape, dtype=np.float32)
    out = (np.where(finite, image, lo) - lo) / (hi - lo)
    return np.clip(out, 0.0, 1.0).astype(np.float32)
