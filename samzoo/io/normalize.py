"""Intensity normalisation: what the model expects from any microscopy dtype."""

from __future__ import annotations

import numpy as np

from samzoo.errors import InputError


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
    image = np.asarray(image)
    # float64 and 64-bit integers keep their precision: in float32, values beyond 3.4e38 would
    # become inf (and count as missing), and large integers would lose their low bits
    work = np.float64 if image.dtype.itemsize > 4 or image.dtype.kind not in "uif" else np.float32
    image = image.astype(work, copy=False)
    finite = np.isfinite(image)
    if not finite.any():
        return np.zeros(image.shape, dtype=np.float32)
    values = image[finite]
    with np.errstate(over="ignore"):
        # near the dtype's limits, differences overflow (inside np.percentile too): then work in
        # float64 on values scaled into [-1, 1]
        scale = 1.0 if np.isfinite(values.max() - values.min()) else float(np.abs(values).max())
    if scale != 1.0:
        image, values = image.astype(np.float64) / scale, values.astype(np.float64) / scale
    lo, hi = np.percentile(values, [lower, upper])
    if not hi > lo:
        return np.zeros(image.shape, dtype=np.float32)
    out = (np.where(finite, image, lo) - lo) / (hi - lo)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def to_model_input(image: np.ndarray, *, lower: float = 1.0, upper: float = 99.8) -> np.ndarray:
    """Turn a 2D image into what SAM expects: ``(3, H, W)`` float32 in 0..255.

    SAM normalises with its pixel mean and std inside the model, so this only brings every
    dtype to a common 0..255 range.

    Parameters
    ----------
    image : ndarray (H, W) or (H, W, C), C in 1..3
        One channel: percentile-normalised (see :func:`percentile_normalize`) and repeated
        three times. Three channels: uint8 is taken as RGB as it is; other dtypes are
        percentile-normalised jointly over all channels. Two channels get a zero third channel.
    lower, upper : float
        Percentiles for the normalisation.

    Returns
    -------
    ndarray (3, H, W) float32

    Examples
    --------
    >>> to_model_input(np.arange(12, dtype=np.uint16).reshape(3, 4)).shape
    (3, 3, 4)
    """
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[-1] > 3:
        raise InputError(f"expected (y, x) or (y, x, c) with at most 3 channels, got shape {image.shape}; "
                         "select the channels to segment first")
    if not np.issubdtype(image.dtype, np.number) or np.iscomplexobj(image):
        raise InputError(f"cannot segment an image of dtype {image.dtype}")
    if image.shape[-1] == 3 and image.dtype == np.uint8:
        scaled = image.astype(np.float32)
    else:
        scaled = percentile_normalize(image, lower, upper) * 255.0
    if scaled.shape[-1] == 1:
        scaled = np.repeat(scaled, 3, axis=-1)
    elif scaled.shape[-1] == 2:
        scaled = np.concatenate([scaled, np.zeros_like(scaled[..., :1])], axis=-1)
    return np.ascontiguousarray(np.moveaxis(scaled, -1, 0), dtype=np.float32)
