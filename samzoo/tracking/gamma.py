"""``gamma="auto"``: segment a movie at two intensity gammas and keep the steadier segmentation.

Live-cell movies often hold nuclei of very different brightness; after a linear normalisation the
dim ones are nearly black and the model misses them or cuts them short. Compressing the
intensities (gamma 0.5, :func:`samzoo.io.normalize.compress_intensities`) lifts them, but it
merges or widens evenly bright nuclei, and no statistic of one image found so far tells the two
cases apart (``model_cards/samzoo_tiny_lm.md``). A movie can tell: an object the model sees only
in some frames, or whose mask jumps from whole to half, breaks the match between consecutive
frames, and so does a merge that comes and goes. So ``track`` segments the whole movie at each
gamma of :data:`AUTO_GAMMAS` and keeps the segmentation whose objects match best from frame to
frame (:func:`temporal_consistency`), with no threshold of its own.

Measured with samzoo's default model (2 views, ``scale="auto"``, overlap linker; ``docs/tracking.md``):
the choice fell on gamma 0.5 for both shared CTC sequences (consistency SIM+ 0.925 -> 0.959,
GOWT1 0.978 -> 0.985; TRA 0.956 -> 0.982 and 0.975 -> 0.987) and on the better gamma of two
more real movies (HeLa 0.5, bacteria 1, by held-out mSA), and on gamma 1 for seven of eight
simulated movies of evenly bright nuclei; on the eighth gamma 0.5 was a little steadier (0.927
-> 0.939) and a little worse (TRA 0.984 -> 0.976).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from samzoo.errors import InputError
from samzoo.evaluation.instance_metrics import match_counts
from samzoo.io.normalize import check_movie_gamma
from samzoo.tracking.frames import read_frame

AUTO_GAMMAS = (1.0, 0.5)  # tried in this order; a tie keeps the first (intensities as they are)


def resolve_gamma(gamma: float | str | None, model, segmenter: str, *, zstack: bool, on_disk: bool) -> float | str:
    """The gamma ``track`` segments a movie at: a number, or ``"auto"`` (see the module docstring).

    ``None`` means ``"auto"`` where it was measured to help: samzoo's own models (not SAM-family
    models, ``model.config.sam_input``) with AIS on 2D movies held in memory; 1 elsewhere.
    ``"auto"`` segments the movie twice, so it is refused for movies tracked frame by frame
    from disk (``on_disk``).
    """
    gamma = check_movie_gamma(gamma)
    if gamma == "auto" and on_disk:
        raise InputError("gamma='auto' segments the movie twice in memory; a movie tracked frame by frame "
                         "(workdir) takes a number, e.g. 1 or 0.5")
    if gamma is not None:
        return gamma
    own_model = model is None or not getattr(model.config, "sam_input", False)
    return "auto" if segmenter == "ais" and own_model and not zstack and not on_disk else 1.0


def temporal_consistency(masks) -> float:
    """How well a movie's objects match from each frame to the next: the mean F1 of matches at IoU >= 0.5.

    Parameters
    ----------
    masks : array (T, [Z,] H, W) int
        Instance labels per frame (numpy, or lazy: read one frame at a time).

    Returns
    -------
    float
        From 0 to 1; 1 when every object has a partner overlapping it by IoU >= 0.5 in the next
        frame and no object is new. NaN for a movie of one frame. Two empty frames agree (1).

    Examples
    --------
    >>> still = np.zeros((3, 8, 8), int); still[:, 2:6, 2:6] = 1
    >>> temporal_consistency(still)
    1.0
    >>> flicker = still.copy(); flicker[1] = 0  # the object is missed in the middle frame
    >>> temporal_consistency(flicker)
    0.0
    """
    n_frames = masks.shape[0]  # Zarr arrays have no len()
    if n_frames < 2:
        return float("nan")
    scores = []
    previous = read_frame(masks, 0)
    for t in range(1, n_frames):
        current = read_frame(masks, t)
        tp, fp, fn = match_counts(current, previous, thresholds=(0.5,))[0]
        scores.append(1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn))
        previous = current
    return float(np.mean(scores))


def most_consistent(segment_at: Callable[[float], np.ndarray],
                    gammas: tuple[float, ...] = AUTO_GAMMAS) -> tuple[np.ndarray, float, dict[float, float]]:
    """The segmentation, of those ``segment_at(gamma)`` gives, whose objects match best from frame to frame.

    Returns
    -------
    masks : ndarray
        The chosen segmentation.
    gamma : float
        The gamma that gave it (the first of ``gammas`` on a tie).
    consistency : dict of gamma -> float
        :func:`temporal_consistency` of each.
    """
    best, best_gamma, consistency = None, gammas[0], {}
    for gamma in gammas:
        masks = segment_at(gamma)
        consistency[gamma] = temporal_consistency(masks)
        if best is None or consistency[gamma] > consistency[best_gamma]:
            best, best_gamma = masks, gamma
        del masks  # only the better segmentation is held
    return best, best_gamma, consistency
