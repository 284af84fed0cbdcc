"""``scale="auto"``: find the scale that brings an image's objects to the size a model knows.

A small model segments objects of one size range well (samzoo's own: about 30-45 pixels across;
measured on held-out planes of every training source, the shipped model's one-point IoU and AIS
mSA peak there and fall off on either side). Nuclei of 10 px in a low-magnification image, or
cells of 100 px, are segmented far better after resizing, as cellpose's ``diameter`` does.

How the size is found, without a separate size model:

- with box prompts, from the boxes (their median side);
- otherwise AIS probes the image at 0.5, 1 and 2 times its size (and at 4 times where those find
  objects under about 24 px), on one window of at most ``PROBE_SIDE`` pixels (the one with the
  most structure), and measures the median object diameter each probe finds, brought back to the
  image's pixels. Where the model sees the objects whole, two neighbouring probes agree on that
  size; where it does not, they disagree, because a model finds objects of about its own size in
  whatever it is shown: a probe far too fine cuts large objects into model-sized pieces (GOWT1's
  60 px nuclei at 2x come out as "36 px objects", 18 px in the image's pixels), one far too
  coarse merges small neighbours into model-sized clumps. So the pair of neighbouring probes
  that agree best gives the size, a pair whose probes saw objects near the model's own size
  winning near-ties (``NEAR_MODEL_SIZE``); of the pair, the coarser probe's size, as a finer
  probe that nearly agrees has more often cut some objects than the coarser one has merged some.
  Measured against the ground truth's diameter on three held-out images of each of 11 sources,
  the scale's mean error fell from 0.40 to 0.36 octaves against the earlier rule (coarsest probe
  seeing objects whole, unless the next one showed it merged): tissue 0.79 -> 0.42, mixed
  fluorescence 0.55 -> 0.29, bacteria 0.59 -> 0.49, and as before on the CTC movies (0.01-0.02).
  The pair's geometric mean erred less on average (0.32) but three times more on the movies.

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
# small objects: where the probes above put the scale at FINE_PROBE_FROM or more (objects under
# ~24 px), one more probe at FINE_PROBE sees them near the model's size. Not for every image: on
# large textured nuclei (H&E tissue) the 2x and 4x probes can agree on pieces of the same size
# and would pull the scale up fourfold
FINE_PROBE, FINE_PROBE_FROM = 4.0, 1.5
PROBE_SIDE = 512  # pixels of a probe window after rescaling: a few tiles of AIS per probe
MIN_OBJECTS = 3  # a probe finding fewer objects does not count
# weight of the probes' distance from the model's size (log ratio) against their disagreement
# (log ratio): breaks near-ties in favour of the pair the model sees best
NEAR_MODEL_SIZE = 0.3


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

    def probe(scale: float) -> None:
        window = _busiest_window(image, int(PROBE_SIDE / scale))
        crop = image[window]
        crop = rescale_image(crop, scale) if scale != 1 else crop
        # probes are throw-away: kept out of the embedding cache
        labels = segment_ais(model, crop, embeddings=compute_embeddings(model, crop, cache=False))
        if len(np.unique(labels)) - 1 >= MIN_OBJECTS:
            seen[scale] = object_diameter(labels)

    seen: dict[float, float] = {}  # probe scale -> median diameter of its objects, in the probe's pixels
    for scale in PROBE_SCALES:
        probe(scale)
    diameter = diameter_from_probes(seen, target)
    if diameter is not None and target / diameter >= FINE_PROBE_FROM:
        probe(FINE_PROBE)
        diameter = diameter_from_probes(seen, target)
    return 1.0 if diameter is None else _snap(target / diameter)


def diameter_from_probes(seen: Mapping[float, float], target: float) -> float | None:
    """The objects' diameter in the image's pixels, from what AIS probes found.

    Parameters
    ----------
    seen : mapping of probe scale -> median object diameter found there (the probe's pixels)
    target : float
        The diameter the model segments best.

    Returns
    -------
    float or None
        The coarser of the two neighbouring probes that agree best (see the module docstring);
        the one probe when only one found objects; None when none did.

    Examples
    --------
    >>> # large nuclei: whole at 0.5x and 1x (60 px), cut into model-sized pieces at 2x
    >>> round(diameter_from_probes({0.5: 30.0, 1.0: 58.0, 2.0: 36.0}, 36.0))
    60
    """
    scales = sorted(seen)
    if not scales:
        return None
    if len(scales) == 1:
        return seen[scales[0]] / scales[0]
    best_cost, best = np.inf, None
    for coarse, fine in zip(scales, scales[1:]):
        a, b = seen[coarse] / coarse, seen[fine] / fine
        cost = abs(np.log(a / b)) + NEAR_MODEL_SIZE * abs(np.log(np.sqrt(seen[coarse] * seen[fine]) / target))
        if cost < best_cost:
            best_cost, best = cost, float(a)
    return best


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
