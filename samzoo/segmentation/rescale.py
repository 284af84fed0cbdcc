"""Segment at another scale: objects far smaller or larger than what a model learned.

A model sees objects best at the sizes it was trained on (samzoo's own model: nuclei and cells
about 20-60 pixels across). Tiny nuclei in a low-magnification image merge or vanish; huge cells
are cut into pieces. :func:`segment_rescaled` resizes the image by ``scale`` before segmenting
and brings the labels back to the original pixel grid, as cellpose's ``diameter`` does.
(Measured on the held-out 3D-nuclei slices, ~11 px across, with the shipped model: AIS mSA 0.10
at scale 1, 0.13 at scale 2.)
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Mapping

import numpy as np
from skimage.measure import regionprops
from skimage.transform import resize

from samzoo.errors import InputError
from samzoo.segmentation.predictor import Prompt

# scales that scale="auto" (and diameter-normalised training) may choose: beyond them a tiled
# image grows 16x in area or objects shrink below a few pixels
AUTO_SCALE_RANGE = (0.25, 4.0)


def object_diameter(labels: np.ndarray, min_area: int = 10) -> float:
    """Median equivalent diameter (pixels) of the objects of ``labels``; NaN if there are none.

    The equivalent diameter is that of a disk of the object's area, as cellpose's ``diameter``.
    Objects under ``min_area`` pixels (specks, slivers at a crop's edge) are left out.

    Examples
    --------
    >>> labels = np.zeros((50, 50), int); labels[5:15, 5:15] = 1; labels[30:40, 30:40] = 2
    >>> round(object_diameter(labels), 1)
    11.3
    """
    sizes = [r.equivalent_diameter_area for r in regionprops(np.asarray(labels, dtype=np.int32))
             if r.area >= min_area]
    return float(np.median(sizes)) if sizes else float("nan")


def rescale_image(image: np.ndarray, scale: float) -> np.ndarray:
    """``image`` ``(H, W)`` or ``(H, W, C)`` resized by ``scale`` in y and x (float32, linear).

    Shrinking smooths first (anti-aliasing), so small bright objects do not flicker away.
    """
    if scale <= 0 or not np.isfinite(scale):
        raise InputError(f"scale must be a positive number, got {scale}")
    shape = tuple(max(1, int(round(n * scale))) for n in image.shape[:2]) + image.shape[2:]
    return resize(image.astype(np.float32, copy=False), shape, order=1, anti_aliasing=scale < 1,
                  preserve_range=True).astype(np.float32)


def labels_to_shape(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Labels resized to ``shape`` by nearest neighbour (ids kept, never blended)."""
    if labels.shape == tuple(shape):
        return labels
    return resize(labels, shape, order=0, preserve_range=True, anti_aliasing=False).astype(labels.dtype)


def rescale_prompts(prompts: Mapping[int, Prompt], scale: float) -> dict[int, Prompt]:
    """Prompts moved onto an image resized by ``scale``.

    A point stays on the centre of its pixel; a box (inclusive pixel corners) keeps covering the
    same pixels: its first row/column becomes the first of the enlarged block, its last the last.
    """
    scaled = {}
    for object_id, p in prompts.items():
        if p.mask is not None:
            raise InputError(f"object {object_id}: mask prompts cannot be rescaled; use points or boxes")
        box = None if p.box is None else np.concatenate([p.box[:2] * scale, (p.box[2:] + 1) * scale - 1])
        scaled[object_id] = replace(p, points=(p.points + 0.5) * scale - 0.5, box=box)
    return scaled


def segment_rescaled(segment_fn: Callable[..., np.ndarray], image: np.ndarray, scale: float, *,
                     prompts: Mapping[int, Prompt] | None = None) -> np.ndarray:
    """Labels ``(H, W)`` of ``image`` segmented by ``segment_fn`` at ``scale`` times its size.

    Parameters
    ----------
    segment_fn : callable
        ``segment_fn(image)`` or, with prompts, ``segment_fn(image, prompts)`` -> labels of the
        image it was given.
    image : ndarray (H, W) or (H, W, C)
    scale : float
        > 1 enlarges (small objects), < 1 shrinks (large objects); 1 segments as is.
    prompts : mapping of object id -> Prompt, optional
        In ``image``'s pixels; they are moved along.

    Examples
    --------
    >>> from scipy import ndimage as ndi
    >>> image = np.zeros((40, 40)); image[10:14, 10:14] = image[25:29, 20:24] = 1
    >>> labels = segment_rescaled(lambda im: ndi.label(im > 0.5)[0], image, 2.0)
    >>> labels.shape, int(labels.max())
    ((40, 40), 2)
    """
    if scale == 1:
        return segment_fn(image) if prompts is None else segment_fn(image, prompts)
    resized = rescale_image(image, scale)
    if prompts is None:
        labels = segment_fn(resized)
    else:
        # rounding the shape can push a point just past the last pixel: keep it inside
        limit = np.array(resized.shape[:2]) - 1
        clipped = {i: replace(p, points=np.clip(p.points, 0, limit),
                              box=None if p.box is None else np.clip(p.box, 0, np.tile(limit, 2)))
                   for i, p in rescale_prompts(prompts, scale).items()}
        labels = segment_fn(resized, clipped)
    return labels_to_shape(np.asarray(labels), image.shape[:2])
