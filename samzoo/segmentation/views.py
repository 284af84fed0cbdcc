"""Test-time augmentation: the AIS decoder's maps combined over turned and mirrored views.

The AIS decoder's foreground and distance maps are scalar fields: turning the image turns them
with it. A model's errors are not so well-behaved (an object's boundary half-seen at a tile's
edge, a textured nucleus split one way in one view and another way in the next), so the maps of
a few views, each turned back, are combined before the watershed, which runs once
(:func:`samzoo.segmentation.ais.multi_view_maps`): the foreground is the largest of the views'
(an object one view sees is kept), the centre and boundary distances are their mean (seeds and
borders where the views agree). Each view costs one more pass of the image encoder and decoder.

Measured on the held-out planes of every source of samzoo's default model (8 planes per source,
11 sources, ``scale="auto"``, shipped weights), mean AIS mSA: 0.443 with the image alone, 0.458
with 2 views (identity and a quarter turn), 0.459 with 4 (identity, both mirrors, half turn),
0.464 with all 8. The mean of all three maps instead scored about the same on these single
images (0.456, 0.461, 0.466) but lost objects in movies, where every missed nucleus costs
(CTC SIM+ TRA 0.934 against 0.956 with the larger foreground; one view: 0.940).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from samzoo.errors import InputError, option
from samzoo.segmentation.refine import can_refine

# each view: (image (H, W[, C]) -> view, maps (K, h, w) of the view -> maps on the image's grid)
_TRANSFORMS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]] = {
    "identity": (lambda a: a, lambda m: m),
    "rot90": (lambda a: np.rot90(a), lambda m: np.rot90(m, -1, axes=(1, 2))),
    "flip_y": (lambda a: a[::-1], lambda m: m[:, ::-1]),
    "flip_x": (lambda a: a[:, ::-1], lambda m: m[:, :, ::-1]),
    "rot180": (lambda a: a[::-1, ::-1], lambda m: m[:, ::-1, ::-1]),
    "transpose": (lambda a: np.swapaxes(a, 0, 1), lambda m: np.swapaxes(m, 1, 2)),
    "rot270": (lambda a: np.rot90(a, -1), lambda m: np.rot90(m, 1, axes=(1, 2))),
    "antitranspose": (lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1], lambda m: np.swapaxes(m[:, ::-1, ::-1], 1, 2)),
}
# the views of each allowed count; for 2 the quarter turn, the half turn and the anti-transpose
# scored alike (mean of the maps: 0.456, 0.455, 0.456), the sets as measured in the module docstring
VIEWS: dict[int, tuple[str, ...]] = {
    1: ("identity",),
    2: ("identity", "rot90"),
    4: ("identity", "flip_y", "flip_x", "rot180"),
    8: tuple(_TRANSFORMS),
}
DEFAULT_VIEWS = 2  # for samzoo's own models (resolve_views)


def check_views(views) -> int:
    """``views`` as an int from :data:`VIEWS`, or an InputError naming the allowed counts."""
    try:
        number = int(views)
    except (TypeError, ValueError):
        number = None
    # True is an int in Python, not a number of views; 2.5 is not 2
    if isinstance(views, bool) or number != views or number not in VIEWS:
        raise InputError(f"{option('views')} must be one of {', '.join(map(str, VIEWS))}, got {views!r}")
    return number


def view_image(image: np.ndarray, name: str) -> np.ndarray:
    """``image`` ``(H, W)`` or ``(H, W, C)`` seen in view ``name`` (contiguous, channels kept last).

    Examples
    --------
    >>> image = np.arange(6).reshape(2, 3)
    >>> view_image(image, "rot90").shape
    (3, 2)
    """
    return np.ascontiguousarray(_TRANSFORMS[name][0](image))


def maps_from_view(maps: np.ndarray, name: str) -> np.ndarray:
    """Maps ``(K, h, w)`` computed on view ``name`` of an image, turned back onto the image's grid.

    Examples
    --------
    >>> image = np.arange(12.0).reshape(3, 4)
    >>> maps = view_image(image, "rot90")[None]  # a "model" whose map is its input
    >>> np.array_equal(maps_from_view(maps, "rot90")[0], image)
    True
    """
    return np.ascontiguousarray(_TRANSFORMS[name][1](maps))


def resolve_views(model, views: int | None, mode: str = "ais") -> int:
    """``views`` as a number: None means 2 for AIS with samzoo's own decoder, else 1.

    samzoo's own models are small, so a second view costs little next to what it gains (module
    docstring; about 2x the AIS time); SAM-family encoders (vit_b and up) cost seconds per view,
    so they get one unless asked. More than one view where the mode is not AIS is an
    InputError: AMG, APG and prompts decode their masks on one set of embeddings.
    """
    if views is None:
        return DEFAULT_VIEWS if mode == "ais" and model is not None and can_refine(model) else 1
    views = check_views(views)
    if views > 1 and mode != "ais":
        raise InputError(f"{option('views')} {views} applies to AIS only, not to {mode!r}; leave it at 1")
    return views
