"""Sanity checks on automatic results: an empty result for an image that clearly holds objects.

An automatic method that finds nothing in an image with strong structure is usually a model
that does not know the kind of image (a stain it never saw) or objects at a size it was not
trained for; saying so beats writing an empty label image in silence.
"""

from __future__ import annotations

import numpy as np
from skimage.filters import gaussian, threshold_otsu
from skimage.measure import label
from skimage.morphology import remove_small_objects

from samzoo.io.normalize import colour_to_grey, percentile_normalize

NO_OBJECTS_HINT = ("try --scale 2 for small objects or --scale 0.5 for large ones, or a model trained on "
                   "this kind of image ('samzoo models' lists them; 'samzoo finetune' teaches one)")


def shows_structure(image: np.ndarray, *, min_objects: int = 3, min_separation: float = 0.75,
                    min_size: int = 10) -> bool:
    """Whether a 2D image clearly holds objects: two well separated intensity classes, several blobs.

    After Gaussian smoothing (sigma 2), Otsu's threshold must explain at least
    ``min_separation`` of the intensity variance (Otsu's effectiveness: about 0.64 for a
    unimodal, noise-only image, above 0.8 for blobs on a background), and one of the two
    classes must form at least ``min_objects`` connected blobs of ``min_size`` pixels or more.

    Parameters
    ----------
    image : ndarray (H, W), or colour (H, W, 3|4)

    Returns
    -------
    bool

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> noise = rng.normal(size=(128, 128))
    >>> blobs = noise * 0.1
    >>> for y, x in [(20, 20), (60, 90), (100, 40), (100, 100)]:
    ...     blobs[y - 6:y + 6, x - 6:x + 6] += 3
    >>> shows_structure(noise), shows_structure(blobs)
    (False, True)
    """
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] in (3, 4):
        image = colour_to_grey(image)
    smooth = gaussian(percentile_normalize(image), sigma=2.0)
    total = smooth.var()
    if total < 1e-8:
        return False
    above = smooth > threshold_otsu(smooth)
    w1 = above.mean()
    if w1 in (0.0, 1.0):
        return False
    between = w1 * (1 - w1) * (smooth[above].mean() - smooth[~above].mean()) ** 2
    if between / total < min_separation:
        return False
    blobs = max(int(label(remove_small_objects(side, max_size=min_size - 1)).max()) for side in (above, ~above))
    return blobs >= min_objects
