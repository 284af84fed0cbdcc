"""``scale="auto"``: find the scale that brings an image's objects to the size a model knows.

A small model segments objects of one size range well (samzoo's own: about 30-45 pixels across;
measured on held-out planes of every training source, the shipped model's one-point IoU and AIS
mSA peak there and fall off on either side). Nuclei of 10 px in a low-magnification image, or
cells of 100 px, are segmented far better after resizing, as cellpose's ``diameter`` does.

How the size is found, without a separate size model:

- with box prompts, from the boxes (their median side);
- otherwise AIS probes the image at 0.5, 1 and 2 times its size, coarsest first, on one window
  of at most ``PROBE_SIDE`` pixels (the one with the most structure), and measures the median
  object diameter each probe finds. The coarsest probe whose objects are at least half the
  model's size, and which the next finer probe does not show to be merged neighbours (far
  smaller objects there), gives the scale. Coarse first because a model cuts objects much
  larger than it knows into pieces of about its own size (probing GOWT1's 60 px nuclei at 2x
  finds "36 px objects"), while at a coarse scale large objects come out whole; small ones
  come out too small to trust, or merged, which the rule skips.

The chosen scale is clipped to :data:`samzoo.segmentation.rescale.AUTO_SCALE_RANGE` and rounded
to a step of 2**(1/8), so that nearly equal images get the same scale.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from samzoo.errors import InputError
from samzoo.io.normalize import to_model_input
from samzoo.segmentation.rescale import AUTO_SCALE_RANGE, object_diameter, rescale_image

# the object size samzoo's models segment best when their config does not record one (models
# trained before diameter-normalised training); measured, see the module docstring
DEFAULT_OBJECT_DIAMETER = 36.0
PROBE_SCALES = (0.5, 1.0, 2.0)
PROBE_SIDE = 512  # pixels of a probe window after rescaling: a few tiles of AIS per probe
MIN_OBJECTS = 3  # a probe finding fewer objects does not count
MERGE_RATIO = 3.0  # objects this much smaller at the next finer probe: the coarse one merged them


def model_diameter(model) -> float:
    """The median object diameter (pixels) ``model`` segments best."""
    return float(getattr(model.config, "object_diameter", None) or DEFAULT_OBJECT_DIAMETER)


def parse_scale(value: str | float | None) -> str | float | None:
    """``"auto"``, a number from 0.125 to 8 (what ``--scale`` accepts) or None (the model's
    default, see :func:`resolve_scale`), else an InputError."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"scale must be 'auto' or a number, got {value!r}") from None
    if not 0.125 <= number <= 8:  # beyond that, resize the image instead: memory grows with scale**2
        raise InputError(f"scale must be 'auto' or from 0.125 to 8, got {value}")
    return number


def _busiest_window(image: np.ndarray, side: int) -> tuple[slice, slice]:
    """The ``side`` x ``side`` window (of a 3x3 grid of candidates) with the most intensity spread."""
    h, w = image.shape[:2]
    if h <= side and w <= side:
        return slice(0, h), slice(0, w)
    grey = to_model_input(image)[0]  # (H, W), 0..255
    best, best_spread = (slice(0, side), slice(0, side)), -1.0
    for y in np.linspace(0, max(h - side, 0), 3).astype(int):
        for x in np.linspace(0, max(w - side, 0), 3).astype(int):
            window = (slice(y, y + side), slice(x, x + side))
            spread = float(np.std(grey[window]))
            if spread > best_spread:
                best, best_spread = window, spread
    return best


def _snap(scale: float) -> float:
    low, high = AUTO_SCALE_RANGE
    steps = np.round(8 * np.log2(np.clip(scale, low, high)))
    return float(2 ** (steps / 8))


def estimate_scale(model, image: np.ndarray, *, prompts: Mapping | None = None) -> float:
    """The scale at which ``image``'s objects have ``model``'s preferred diameter.

    Parameters
    ----------
    model : SamzooModel
    image : ndarray (H, W) or (H, W, C)
    prompts : mapping of object id -> Prompt, optional
        With boxes, their sizes give the object size and no probe runs.

    Returns
    -------
    float
        1.0 for models used as SAM / micro-sam use them (``config.sam_input``: they resize every
        tile to their input size themselves) and when no probe finds objects.
    """
    if getattr(model.config, "sam_input", False):
        return 1.0
    target = model_diameter(model)
    boxes = [p.box for p in (prompts or {}).values() if getattr(p, "box", None) is not None]
    if boxes:
        sides = [np.sqrt((b[2] - b[0] + 1) * (b[3] - b[1] + 1)) for b in np.asarray(boxes, dtype=float)]
        # a box's side is its object's diameter (of a disk: equivalent diameter x 1.13)
        return _snap(target / (np.median(sides) / 1.13))
    if model.ais_decoder is None:
        return 1.0  # no way to see objects without prompts; SAM's own size handling applies
    from samzoo.segmentation.ais import segment_ais
    from samzoo.segmentation.embeddings import compute_embeddings

    seen = {}  # probe scale -> median diameter of its objects, in the probe's pixels
    for scale in PROBE_SCALES:
        window = _busiest_window(image, int(PROBE_SIDE / scale))
        crop = image[window]
        crop = rescale_image(crop, scale) if scale != 1 else crop
        # probes are throw-away: kept out of the embedding cache
        labels = segment_ais(model, crop, embeddings=compute_embeddings(model, crop, cache=False))
        if len(np.unique(labels)) - 1 >= MIN_OBJECTS:
            seen[scale] = object_diameter(labels)
    if not seen:
        return 1.0
    found = sorted(seen)  # coarsest first
    for coarse, fine in zip(found, found[1:] + [None]):
        whole = seen[coarse] >= target / 2  # large enough to be seen whole
        # the next finer probe finding far smaller objects (in the image's pixels) means this
        # one merged neighbours: trust the finer one
        merged = fine is not None and seen[fine] / fine < seen[coarse] / coarse / MERGE_RATIO
        if whole and not merged:
            return _snap(coarse * target / seen[coarse])
    return _snap(found[-1] * target / seen[found[-1]])


def resolve_scale(model, image: np.ndarray, scale: str | float | None, *,
                  prompts: Mapping | None = None) -> float:
    """``scale`` as a number: ``"auto"`` estimated on ``image`` (:func:`estimate_scale`).

    ``None`` means the model's default: ``"auto"`` for a model trained on objects brought to
    one size (its config records ``object_diameter``: it needs images brought to that size),
    1 for the others (trained on objects as they come, they know their training kinds at
    their native sizes).
    """
    scale = parse_scale(scale)
    if scale is None:
        scale = "auto" if model is not None and getattr(model.config, "object_diameter", None) else 1.0
    if scale != "auto":
        return float(scale)
    if model is None:  # the classical baseline has no preferred size
        return 1.0
    return estimate_scale(model, image, prompts=prompts)
