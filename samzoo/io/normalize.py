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


def compress_intensities(image: np.ndarray, gamma: float) -> np.ndarray:
    """``image`` percentile-normalised to 0..1 (:func:`percentile_normalize`) and raised to ``gamma``.

    A ``gamma`` below 1 lifts dim objects towards bright ones: live-cell movies show nuclei of
    very different brightness, and after a linear normalisation the dim ones are nearly black
    (GOWT1: nuclei at 3-7 % of the bright ones' intensity). Measured with samzoo's default model
    on the CTC movies, ``samzoo track`` with gamma 0.5 against 1: GOWT1 01 TRA 0.973 -> 0.985,
    SEG 0.831 -> 0.875; SIM+ 01 TRA 0.940 -> 0.970, SEG 0.809 -> 0.854 (``docs/tracking.md``).
    It hurts images whose objects are evenly bright (DSB2018 fluorescence: AIS mSA 0.48 -> 0.34),
    so it is not the default for images; ``track`` chooses per movie between 1 and 0.5
    (:mod:`samzoo.tracking.gamma`).

    Parameters
    ----------
    image : ndarray, any real dtype
    gamma : float
        Greater than 0; 1 returns ``image`` unchanged.

    Returns
    -------
    ndarray float32 in 0..1 (or ``image`` itself for gamma 1)

    Examples
    --------
    >>> image = np.zeros((100, 100)); image[:10] = 100; image[10:20] = 25  # a bright and a dim object
    >>> float(compress_intensities(image, 0.5)[15, 0])
    0.5
    """
    gamma = check_gamma(gamma)
    if gamma == 1:
        return image
    return percentile_normalize(image) ** np.float32(gamma)


def check_gamma(gamma) -> float:
    """``gamma`` as a float, checked: a finite number from 0.1 to 10, else an InputError."""
    try:
        value = float(gamma)
    except (TypeError, ValueError):
        raise InputError(f"gamma must be a number, got {gamma!r}") from None
    if not 0.1 <= value <= 10:
        raise InputError(f"gamma must be from 0.1 to 10 (1: intensities as they are), got {gamma}")
    return value


def check_movie_gamma(gamma) -> float | str | None:
    """A movie's ``gamma`` (:func:`samzoo.tracking.track`): None (the default), ``"auto"`` or a
    number checked by :func:`check_gamma`, else an InputError."""
    if gamma is None:
        return None
    if isinstance(gamma, str) and gamma.strip().lower() == "auto":
        return "auto"
    return check_gamma(gamma)


def channels_last(image: np.ndarray) -> np.ndarray:
    """A 2D plane as ``(H, W, C)``, C in 1..3, checked: what every model input starts from.

    Raises :class:`InputError` for other shapes (more than 3 channels must be selected first) and
    for non-numeric or complex dtypes.
    """
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[-1] > 3:
        raise InputError(f"expected (y, x) or (y, x, c) with at most 3 channels, got shape {image.shape}; "
                         "select the channels to segment first")
    if not np.issubdtype(image.dtype, np.number) or np.iscomplexobj(image):
        raise InputError(f"cannot segment an image of dtype {image.dtype}")
    return image


LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601 luma weights


def colour_to_grey(image: np.ndarray) -> np.ndarray:
    """One channel from a colour image ``(H, W, 3|4)``, objects brighter than the background.

    The luma of the RGB channels (alpha dropped), inverted when the background is bright, i.e.
    when the median pixel lies in the upper half of the 1st-99.8th percentile range: stained
    brightfield images (H&E, DAB, Giemsa) show dark nuclei on a bright background, fluorescence
    composites bright objects on a dark one. samzoo's own models are trained on such grey
    images; this conversion was chosen by measurement on DSB2018 H&E-like tissue with the
    model shipped until 2026-12 (one point per nucleus, mean IoU): RGB as it is 0.06, luma
    0.24, inverted luma 0.42, haematoxylin channel of a colour deconvolution 0.42 (equal, and
    specific to H&E).

    Parameters
    ----------
    image : ndarray (H, W, 3) or (H, W, 4), any real dtype

    Returns
    -------
    ndarray (H, W) float32 (not normalised)

    Examples
    --------
    >>> bright = np.full((4, 4, 3), 200, np.uint8); bright[1:3, 1:3] = 20  # a dark nucleus
    >>> grey = colour_to_grey(bright)
    >>> bool(grey[1, 1] > grey[0, 0])
    True
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] not in (3, 4):
        raise InputError(f"expected a colour image (y, x, 3) or (y, x, 4), got shape {image.shape}")
    grey = image[..., :3].astype(np.float32) @ LUMA
    if np.median(percentile_normalize(grey)) > 0.5:
        grey = grey.max() - grey
    return grey


def to_model_input(image: np.ndarray, *, lower: float = 1.0, upper: float = 99.8,
                   grey: bool = False) -> np.ndarray:
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
    grey : bool
        Turn a colour image into one channel first (:func:`colour_to_grey`): what samzoo's own
        models, trained on grey images, need. SAM-family models keep RGB (``False``).

    Returns
    -------
    ndarray (3, H, W) float32

    Examples
    --------
    >>> to_model_input(np.arange(12, dtype=np.uint16).reshape(3, 4)).shape
    (3, 3, 4)
    """
    image = channels_last(image)
    if grey and image.shape[-1] == 3:
        image = colour_to_grey(image)[..., None]
    if image.shape[-1] == 3 and image.dtype == np.uint8:
        scaled = image.astype(np.float32)
    else:
        scaled = percentile_normalize(image, lower, upper) * 255.0
    if scaled.shape[-1] == 1:
        scaled = np.repeat(scaled, 3, axis=-1)
    elif scaled.shape[-1] == 2:
        scaled = np.concatenate([scaled, np.zeros_like(scaled[..., :1])], axis=-1)
    return np.ascontiguousarray(np.moveaxis(scaled, -1, 0), dtype=np.float32)
