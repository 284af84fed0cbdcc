"""Interactive tracking: follow objects given in one frame through the movie with SAM prompts.

For each frame ``t + 1`` every object still tracked is prompted with what it was at ``t``,
moved by its last displacement (a constant-velocity motion model): the shifted mask (as
low-resolution mask logits), its bounding box and its innermost point (as in
:func:`samzoo.segmentation.volume.propagate_through_z`). Then:

- the object **stops** when its shifted mask leaves the image, when the decoder's predicted IoU
  falls below ``min_score``, or when its area jumps by more than ``max_area_change``;
- it **divides** when the predicted mask falls into two separated parts of comparable size (or
  two blobs joined by a thin neck, :func:`split_parts`), or
  when the mask collapses (area below ``collapse_fraction`` of the previous one) and a second
  prompt at the mirror position across the mother's centre finds a similar, separate object
  inside the mother's former outline. Each daughter continues as a new track.

Objects are painted largest first and only onto background, so no pixel has two owners.
Labels in the returned masks are track IDs in the CTC convention (one per track segment).
"""

from __future__ import annotations

from collections.abc import Mapping

import networkx as nx
import numpy as np
from scipy import ndimage as ndi
from skimage.measure import label as connected_components

from samzoo.errors import InputError
from samzoo.models.model import SamzooModel
from samzoo.segmentation.embeddings import compute_embeddings
from samzoo.segmentation.predictor import Prompt, predict
from samzoo.segmentation.volume import _prompt_from_mask
from samzoo.tracking.lineage import graph_from_tracks
from samzoo.tracking.geometry import shift_labels


def split_parts(mask: np.ndarray, *, min_fraction: float, min_area: int, neck_ratio: float = 0.6) -> list[np.ndarray]:
    """The two daughters in a mask, if it holds two: separated parts, or two blobs joined by a neck.

    SAM often returns both daughters of a fresh division as one mask when they touch. Such a
    mask has two maxima of its distance transform with a saddle between them lower than
    ``neck_ratio`` times the smaller maximum; it is cut there (watershed). A single elongated or
    bean-shaped nucleus has no such saddle.

    Returns
    -------
    list of two boolean masks (largest first), or [] when ``mask`` is one object.
    """
    parts, n = connected_components(mask, return_num=True, connectivity=1)
    if n < 2:
        parts = _neck_split(mask, neck_ratio)
        n = int(parts.max())
    if n < 2:
        return []
    sizes = np.bincount(parts.ravel())[1:]
    order = np.argsort(sizes)[::-1][:2]
    if sizes[order[1]] < max(min_fraction * mask.sum(), min_area):
        return []
    return [parts == i + 1 for i in order]


def _neck_split(mask: np.ndarray, neck_ratio: float) -> np.ndarray:
    """Labels 1 and 2 for the two halves of a mask pinched in the middle; all zeros otherwise."""
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    empty = np.zeros(mask.shape, dtype=np.int32)
    distance = ndi.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    if distance.max() < 2:
        return empty
    peaks = peak_local_max(distance, min_distance=max(int(distance.max() * 0.8), 2), num_peaks=2,
                           exclude_border=False, labels=mask.astype(np.int32))
    if len(peaks) < 2:
        return empty
    (y0, x0), (y1, x1) = peaks
    steps = int(max(abs(y1 - y0), abs(x1 - x0))) + 1
    line = distance[np.linspace(y0, y1, steps).round().astype(int), np.linspace(x0, x1, steps).round().astype(int)]
    if line.min() >= neck_ratio * min(distance[y0, x0], distance[y1, x1]):
        return empty
    markers = np.zeros(mask.shape, dtype=np.int32)
    markers[y0, x0], markers[y1, x1] = 1, 2
    return watershed(-distance, markers, mask=mask).astype(np.int32)


def propagate(model: SamzooModel, images: np.ndarray, start: np.ndarray | Mapping[int, Prompt], *,
              start_frame: int = 0, min_score: float = 0.5, max_area_change: float = 2.5, min_area: int = 10,
              split_min_fraction: float = 0.2, collapse_fraction: float = 0.65,
              cache: bool = False) -> tuple[nx.DiGraph, np.ndarray]:
    """Track objects from one frame to the end of a 2D movie by prompting SAM frame by frame.

    Parameters
    ----------
    model : SamzooModel
    images : ndarray (T, H, W) or (T, H, W, C)
    start : ndarray (H, W) int or mapping of object id -> Prompt
        The objects in ``start_frame``: a label image, or prompts (segmented first).
    start_frame : int
    min_score : float
        Stop an object when the decoder's predicted IoU falls below this.
    max_area_change : float
        Stop an object whose area grows or shrinks by more than this factor in one frame.
    min_area : int
        Smaller masks (or daughters) count as vanished.
    split_min_fraction : float
        A split mask is a division when its second-largest part is at least this fraction of it.
    collapse_fraction : float
        Below this fraction of its previous area, a mask is checked for a missed sister.
    cache : bool
        Cache the embeddings (useful when the same movie is tracked again with other prompts).

    Returns
    -------
    graph : networkx.DiGraph
        Lineage graph (see :mod:`samzoo.tracking.lineage`).
    masks : ndarray (T, H, W) uint32
        Frames before ``start_frame`` are empty.
    """
    images = np.asarray(images)
    if images.ndim not in (3, 4) or not 0 <= start_frame < len(images):
        raise InputError(f"propagation needs a 2D movie (T, H, W[, C]) and 0 <= start_frame < T; "
                         f"got shape {images.shape}, start_frame={start_frame}")
    shape = images.shape[1:3]
    masks = np.zeros((len(images),) + shape, dtype=np.uint32)
    if isinstance(start, Mapping):
        if not start:
            raise InputError("no objects to propagate: the prompt mapping is empty")
        found = predict(model, compute_embeddings(model, images[start_frame], cache=cache), start)
        first = {i: r.full_mask(shape) for i, r in found.items()}
    else:
        start = np.asarray(start)
        if start.shape != shape:
            raise InputError(f"start labels {start.shape} differ from the frame shape {shape}")
        first = {int(i): start == i for i in np.unique(start) if i != 0}
        if not first:
            raise InputError("no objects to propagate: the start label image is empty")
    state: dict[int, dict] = {}
    rows: dict[int, list[int]] = {}  # track id -> [first frame, last frame, parent]
    next_id = 1
    for mask in sorted(first.values(), key=lambda m: -m.sum()):
        mask = mask & (masks[start_frame] == 0)
        if mask.sum() >= min_area:
            masks[start_frame][mask] = next_id
            state[next_id] = {"mask": mask, "velocity": np.zeros(2)}
            rows[next_id] = [start_frame, start_frame, 0]
            next_id += 1
    for t in range(start_frame + 1, len(images)):
        if not state:
            break
        embeddings = compute_embeddings(model, images[t], cache=cache)
        shifted = {i: shift_labels(s["mask"], s["velocity"]) for i, s in state.items()}
        shifted = {i: m for i, m in shifted.items() if m.sum() >= min_area}  # left the field
        claimed = np.zeros(shape, dtype=np.int64)  # where each object is expected (its prompt)
        for i, m in shifted.items():
            claimed[m] = i
        prompts = {i: _mask_prompt(m) for i, m in shifted.items()}
        results = predict(model, embeddings, prompts) if prompts else {}
        outcomes: list[tuple[int, int, np.ndarray]] = []  # (track id, parent, mask)
        for i, result in results.items():
            mask = result.full_mask(shape)
            area, before = mask.sum(), state[i]["mask"].sum()
            jumped = not before / max_area_change <= area <= before * max_area_change
            if result.score < min_score or area < min_area or jumped:
                continue  # vanished, or the prompt caught something else
            daughters = split_parts(mask, min_fraction=split_min_fraction, min_area=min_area)
            if daughters:
                # a part lying mostly where another tracked object is expected is that neighbour,
                # caught by this prompt, not a daughter
                own = [d for d in daughters if (claimed[d] == i).sum() >= ((claimed[d] > 0) & (claimed[d] != i)).sum()]
                if len(own) < 2:
                    mask, daughters = (own[0] if own else mask), []
            if not daughters and area < collapse_fraction * before:
                daughters = _find_sister(model, embeddings, mask, shifted[i], min_area=min_area)
            if daughters:
                outcomes.extend((-1, i, d) for d in daughters)
            else:
                outcomes.append((i, 0, mask))
        new_state = {}
        for track, parent, mask in sorted(outcomes, key=lambda o: -o[2].sum()):
            mask = mask & (masks[t] == 0)
            if mask.sum() < min_area:
                continue
            if track < 0:
                track, next_id = next_id, next_id + 1
                rows[track] = [t, t, parent]
                velocity = np.zeros(2)
            else:
                rows[track][1] = t
                velocity = _centroid(mask) - _centroid(state[track]["mask"])
            masks[t][mask] = track
            new_state[track] = {"mask": mask, "velocity": velocity}
        state = new_state
    tracks = np.array([(k, b, e, p) for k, (b, e, p) in sorted(rows.items())], dtype=np.int64).reshape(-1, 4)
    present = set(np.unique(masks).tolist())
    tracks = tracks[np.isin(tracks[:, 0], list(present))]
    tracks[~np.isin(tracks[:, 3], tracks[:, 0]), 3] = 0  # a mother painted over entirely has no frames
    return graph_from_tracks(masks, tracks), masks


def _mask_prompt(mask: np.ndarray) -> Prompt:
    """Box, innermost point and the mask itself (as mask logits) of an object."""
    prompt = _prompt_from_mask(mask)
    return Prompt(points=prompt.points, point_labels=prompt.point_labels, box=prompt.box, mask=mask)


def _centroid(mask: np.ndarray) -> np.ndarray:
    return np.array(ndi.center_of_mass(mask), dtype=float)


def _find_sister(model: SamzooModel, embeddings, mask: np.ndarray, mother: np.ndarray, *,
                 min_area: int) -> list[np.ndarray]:
    """After a collapse: the found daughter and its sister at the mirror position, if there is one."""
    mirror = 2 * _centroid(mother) - _centroid(mask)
    h, w = mask.shape
    y, x = int(round(mirror[0])), int(round(mirror[1]))
    if not (0 <= y < h and 0 <= x < w) or not mother[y, x] or mask[y, x]:
        return []
    inner = np.unravel_index(int(np.argmax(ndi.distance_transform_edt(mask))), mask.shape)
    sister = predict(model, embeddings, {0: Prompt(points=[[y, x], list(inner)], point_labels=[1, 0])})[0]
    sister = sister.full_mask(mask.shape) & ~mask
    area, sister_area = mask.sum(), sister.sum()
    overlap_with_mother = (sister & mother).sum() / max(sister_area, 1)
    if sister_area < min_area or not 0.3 * area <= sister_area <= 3 * area or overlap_with_mother < 0.3:
        return []
    return [mask, sister]
