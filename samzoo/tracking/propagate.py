"""Interactive tracking: follow objects given in one frame through the movie with SAM prompts.

For each frame ``t + 1`` every object still tracked is prompted with what it was at ``t``,
moved by its last displacement (a constant-velocity motion model): the shifted mask (as
low-resolution mask logits), its bounding box and its innermost point (as in
:func:`samzoo.segmentation.volume.propagate_through_z`), all objects of the frame in one batched
decoder call. Then:

- a mask more than ``max_area_change`` times larger than the object was caught neighbours or
  background too; only its part near the object's expected place is kept;
- the object **stops** when its shifted mask leaves the image, when the decoder's predicted IoU
  falls below ``min_score`` (off by default), or when its area still jumps by more than
  ``max_area_change``;
- it **divides** when the predicted mask falls into two separated parts of comparable size (or
  two blobs joined by a thin neck, :func:`split_parts`), each lying mainly where the mother was
  expected, or when the mask collapses (area below ``collapse_fraction`` of the previous one)
  and a second prompt at the mirror position across the mother's centre finds a similar,
  separate object inside the mother's former outline. Each daughter continues as a new track.

Objects are painted largest first and only onto background, so no pixel has two owners.
Labels in the returned masks are track IDs in the CTC convention (one per track segment).
"""

from __future__ import annotations

from collections.abc import Mapping

import networkx as nx
import numpy as np
from scipy import ndimage as ndi

from samzoo.errors import InputError
from samzoo.models.model import SamzooModel
from samzoo.segmentation.embeddings import compute_embeddings
from samzoo.segmentation.predictor import Prompt, predict
from samzoo.tracking.lineage import graph_from_tracks
from samzoo.tracking.geometry import shift_labels
from samzoo.tracking.merged import neck_split


def split_parts(mask: np.ndarray, *, min_fraction: float, min_area: int, neck_ratio: float = 0.6) -> list[np.ndarray]:
    """The two daughters in a mask, if it holds two: separated parts, or two blobs joined by a neck.

    SAM often returns both daughters of a fresh division as one mask when they touch. Such a
    mask has two maxima of its distance transform with a saddle between them lower than
    ``neck_ratio`` times the smaller maximum; it is cut there (:func:`samzoo.tracking.merged.neck_split`,
    run on the mask's bounding box). A single elongated or bean-shaped nucleus has no such saddle.

    Returns
    -------
    list of two boolean masks (largest first), or [] when ``mask`` is one object.
    """
    if not mask.any():
        return []
    box = _bbox(mask, pad=1)
    parts = neck_split(mask[box], neck_ratio=neck_ratio, min_fraction=min_fraction)
    if not parts or parts[1].sum() < min_area:
        return []
    out = []
    for part in parts:
        full = np.zeros(mask.shape, dtype=bool)
        full[box] = part
        out.append(full)
    return out


def propagate(model: SamzooModel, images: np.ndarray, start: np.ndarray | Mapping[int, Prompt], *,
              start_frame: int = 0, min_score: float = 0.0, max_area_change: float = 2.5, min_area: int = 10,
              split_min_fraction: float = 0.2, min_daughter_overlap: float = 0.3, collapse_fraction: float = 0.65,
              cache: bool = False) -> tuple[nx.DiGraph, np.ndarray]:
    """Track objects from one frame to the end of a 2D movie by prompting SAM frame by frame.

    Each frame costs one image-encoder pass and one batched mask-decoder call for all live
    objects (plus one more batched call in frames where masks collapse, for the sisters).

    Parameters
    ----------
    model : SamzooModel
    images : ndarray (T, H, W) or (T, H, W, C)
    start : ndarray (H, W) int or mapping of object id -> Prompt
        The objects in ``start_frame``: a label image, or prompts (segmented first).
    start_frame : int
    min_score : float
        Stop an object when the decoder's predicted IoU falls below this. Off by default: the
        predicted IoU of small or finetuned models is often not calibrated (correct masks of the
        shipped model score 0.3-0.7), and the area checks below catch lost objects.
    max_area_change : float
        Stop an object whose area grows or shrinks by more than this factor in one frame (the
        prompt caught something else, or nothing).
    min_area : int
        Smaller masks (or daughters) count as vanished.
    split_min_fraction : float
        A split mask is a division when its second-largest part is at least this fraction of it.
    min_daughter_overlap : float
        A part of a split mask is a daughter only if at least this fraction of it lies where its
        mother was expected (its shifted mask), and more than where other objects were expected.
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
        # one decoder batch for every live object of the frame; the boxes are last frame's, which
        # a moving or growing object leaves: they must not bound its new mask
        results = predict(model, embeddings, prompts, clip_to_box=False) if prompts else {}
        outcomes: list[tuple[int, int, np.ndarray]] = []  # (track id, parent, mask)
        collapsed: dict[int, np.ndarray] = {}
        for i, result in results.items():
            mask = result.full_mask(shape)
            area, before = mask.sum(), state[i]["mask"].sum()
            if area > before * max_area_change:
                # the prompt caught neighbours or background too: keep what lies near the object's
                # expected place (within half its radius)
                mask = mask & _grow(shifted[i], max(2.0, 0.5 * np.sqrt(before / np.pi)))
                area = mask.sum()
            jumped = not before / max_area_change <= area <= before * max_area_change
            if result.score < min_score or area < min_area or jumped:
                continue  # vanished, or the prompt caught something else
            daughters = split_parts(mask, min_fraction=split_min_fraction, min_area=min_area)
            if daughters:
                # a daughter lies largely where its mother is expected; a part lying mostly where
                # another tracked object is expected, or outside any, is a neighbour (or a piece of
                # an untracked one) caught by this prompt
                own = [d for d in daughters if _own_part(d, claimed, i, min_daughter_overlap)]
                if len(own) < 2:
                    mask, daughters = (own[0] if own else mask), []
            if daughters:
                outcomes.extend((-1, i, d) for d in daughters)
            elif mask.sum() < collapse_fraction * before:
                collapsed[i] = mask
            else:
                outcomes.append((i, 0, mask))
        sisters = _find_sisters(model, embeddings, collapsed, shifted, min_area=min_area)
        for i, mask in collapsed.items():
            if i in sisters:
                outcomes.extend((-1, i, d) for d in sisters[i])
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


def _own_part(part: np.ndarray, claimed: np.ndarray, i: int, min_fraction: float) -> bool:
    """Whether ``part`` lies mainly in object ``i``'s expected place (``claimed`` is the map of them)."""
    where = claimed[part]
    own = (where == i).sum()
    return own >= min_fraction * len(where) and own >= ((where > 0) & (where != i)).sum()


def _grow(mask: np.ndarray, radius: float) -> np.ndarray:
    """``mask`` dilated by a disk of ``radius`` pixels (computed on its bounding box)."""
    box = _bbox(mask, pad=int(np.ceil(radius)) + 1)
    out = np.zeros_like(mask)
    out[box] = ndi.distance_transform_edt(~mask[box]) <= radius
    return out


def _bbox(mask: np.ndarray, pad: int = 0) -> tuple[slice, ...]:
    """The bounding box of a non-empty mask, grown by ``pad`` pixels (clipped to the image)."""
    box = []
    for axis in range(mask.ndim):
        hits = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        box.append(slice(max(int(hits[0]) - pad, 0), min(int(hits[-1]) + 1 + pad, mask.shape[axis])))
    return tuple(box)


def _inner_distance(mask: np.ndarray, box: tuple[slice, ...]) -> np.ndarray:
    """Distance of each pixel of ``mask[box]`` to the background; the image border counts as background."""
    return ndi.distance_transform_edt(np.pad(mask[box], 1))[1:-1, 1:-1]


def _mask_prompt(mask: np.ndarray) -> Prompt:
    """Box, innermost point and the mask itself (as mask logits) of an object.

    The same prompt as :func:`samzoo.segmentation.volume._prompt_from_mask` plus the mask, with
    the distance transform computed on the object's bounding box only.
    """
    box = _bbox(mask)
    inner = _inner_distance(mask, box)
    y, x = np.unravel_index(int(np.argmax(inner)), inner.shape)
    y0, x0 = box[0].start, box[1].start
    return Prompt(points=[[y + y0, x + x0]], point_labels=[1],
                  box=[y0, x0, box[0].stop - 1, box[1].stop - 1], mask=mask)


def _centroid(mask: np.ndarray) -> np.ndarray:
    return np.array(ndi.center_of_mass(mask), dtype=float)


def _find_sisters(model: SamzooModel, embeddings, found: Mapping[int, np.ndarray], mothers: Mapping[int, np.ndarray],
                  *, min_area: int) -> dict[int, list[np.ndarray]]:
    """After a collapse: each found daughter and its sister at the mirror position, if there is one.

    A collapsed mask may be one daughter of a division SAM did not see as two. The mirror of its
    centre across the mother's centre is prompted (positive there, negative at the found
    daughter), all collapsed objects of the frame in one decoder batch; a separate object of
    similar size, mostly inside the mother's outline, is the sister.

    Returns
    -------
    dict of object id -> [daughter, sister], for the objects whose sister was found.
    """
    prompts = {}
    for i, mask in found.items():
        mirror = 2 * _centroid(mothers[i]) - _centroid(mask)
        h, w = mask.shape
        y, x = int(round(mirror[0])), int(round(mirror[1]))
        if not (0 <= y < h and 0 <= x < w) or not mothers[i][y, x] or mask[y, x]:
            continue
        box = _bbox(mask)
        inner = _inner_distance(mask, box)
        iy, ix = np.unravel_index(int(np.argmax(inner)), inner.shape)
        prompts[i] = Prompt(points=[[y, x], [iy + box[0].start, ix + box[1].start]], point_labels=[1, 0])
    if not prompts:
        return {}
    out = {}
    for i, result in predict(model, embeddings, prompts).items():
        mask, mother = found[i], mothers[i]
        sister = result.full_mask(mask.shape) & ~mask
        area, sister_area = mask.sum(), sister.sum()
        overlap_with_mother = (sister & mother).sum() / max(sister_area, 1)
        if sister_area >= min_area and 0.3 * area <= sister_area <= 3 * area and overlap_with_mother >= 0.3:
            out[i] = [mask, sister]
    return out
