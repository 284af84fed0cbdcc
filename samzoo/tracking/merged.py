"""Late divisions: daughters that the segmentation merged into one object for a few frames.

Automatic segmentation (AIS, and often watershed methods) returns the two daughters of a
fresh division as one object while they still touch; they come apart a few frames later. A
linker then sees a "mother" that lives on for those frames and a division where the daughters
separate, one or more frames late, and the true division is lost (the CTC division metrics
match divisions frame by frame).

:func:`split_late_divisions` repairs this after linking: from every division it walks back
along the mother's track and, while the object there is pinched into two lobes (a neck, see
:func:`neck_split`) that lie the way its two successors lie, cuts it at the neck into two
objects and moves the division one frame back. A single nucleus without a neck stops the walk,
so well-segmented divisions (daughters separate from the first frame) are left as they are.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
from scipy import ndimage as ndi

from samzoo.tracking.frames import editable, read_frame
from samzoo.tracking.lineage import check_masks


def neck_split(mask: np.ndarray, *, neck_ratio: float = 0.9, min_fraction: float = 0.25) -> list[np.ndarray]:
    """The two lobes of a mask pinched in the middle, or [] for one compact object.

    A mask of two touching blobs has two maxima of its distance transform with a saddle between
    them. The mask is cut (watershed of the distance transform from the two maxima) when the
    distance along the straight line between the maxima falls below ``neck_ratio`` times the
    smaller maximum, and the smaller part holds at least ``min_fraction`` of the pixels.

    Parameters
    ----------
    mask : ndarray bool, 2D or 3D
    neck_ratio : float
        How narrow the waist must be relative to the thinner lobe (1: any dip).
    min_fraction : float

    Returns
    -------
    list of two boolean masks (largest first), or [].
    """
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    mask = np.asarray(mask, dtype=bool)
    parts, n = ndi.label(mask)
    if n >= 2:  # already in pieces: the two largest
        sizes = np.bincount(parts.ravel())[1:]
        order = np.argsort(sizes)[::-1][:2]
        if sizes[order[1]] < min_fraction * mask.sum():
            return []
        return [parts == i + 1 for i in order]
    distance = ndi.distance_transform_edt(np.pad(mask, 1))[(slice(1, -1),) * mask.ndim]
    if distance.max() < 2:
        return []
    peaks = peak_local_max(distance, min_distance=2, num_peaks=6, exclude_border=False,
                           labels=mask.astype(np.int32))
    best = None  # the pair of maxima with the deepest saddle between them
    for k, a in enumerate(peaks):
        for b in peaks[k + 1:]:
            steps = int(np.abs(b - a).max()) + 1
            if steps < 4:  # two maxima on one plateau, not two lobes
                continue
            line = tuple(np.linspace(a[d], b[d], steps).round().astype(int) for d in range(mask.ndim))
            ratio = distance[line].min() / min(distance[tuple(a)], distance[tuple(b)])
            if ratio < neck_ratio and (best is None or ratio < best[0]):
                best = (ratio, a, b)
    if best is None:
        return []
    markers = np.zeros(mask.shape, dtype=np.int32)
    markers[tuple(best[1])], markers[tuple(best[2])] = 1, 2
    parts = watershed(-distance, markers, mask=mask)
    lobes = sorted((parts == 1, parts == 2), key=lambda m: -m.sum())
    if lobes[1].sum() < min_fraction * mask.sum():
        return []
    return lobes


def split_late_divisions(graph: nx.DiGraph, masks: np.ndarray, *, neck_ratio: float = 0.9,
                         min_fraction: float = 0.25, min_alignment: float = 0.5,
                         in_place: bool = False) -> tuple[nx.DiGraph, np.ndarray]:
    """Move divisions back through frames where the segmentation merged the daughters.

    For every division ``m -> (a, b)``: if ``m`` splits at a neck (:func:`neck_split`) into two
    lobes whose axis is aligned with the axis ``a``-``b`` (cosine at least ``min_alignment``),
    ``m`` becomes the lobe towards its nearer daughter and a new object the other lobe; the
    division moves to ``m``'s predecessor, and the walk goes on from there. It stops at a lobe
    test that fails, and before a track start, a gap or a predecessor that has other children
    (there is no mother to move the division to).

    Meant for masks from automatic segmentation: in curated masks a mother with a constriction
    (e.g. a bacterium forming its septum) is one object and must not be cut.

    Parameters
    ----------
    graph : networkx.DiGraph
        A lineage graph of ``masks`` (see :mod:`samzoo.tracking.lineage`); not modified.
    masks : ndarray (T, [Z,] Y, X) int, or a writable lazy array-like (a Zarr array)
        Not modified unless ``in_place``. Only the crops around mothers are read and written
        (and each touched frame's largest label), so a lazy movie is never loaded whole.
    neck_ratio, min_fraction : float
        See :func:`neck_split`.
    min_alignment : float
        The cut must separate the two objects the way their successors are separated.
    in_place : bool
        Cut the objects in ``masks`` itself instead of a copy; required for lazy masks (a
        copy of a movie on disk is the caller's to make).

    Returns
    -------
    graph, masks : the repaired copies (new objects get new labels and node ids); ``masks`` is
    the given array itself with ``in_place``.
    """
    masks = editable(check_masks(masks), in_place, "split_late_divisions")
    graph = graph.copy()
    next_node = max(graph.nodes, default=-1) + 1
    top: dict[int, int] = {}  # largest label of each frame touched so far: the next new label is one more
    for mother in [n for n in graph.nodes if graph.out_degree(n) == 2]:
        node = mother
        while True:
            children = sorted(graph.successors(node))
            found = _aligned_lobes(graph, masks, node, children, neck_ratio, min_fraction, min_alignment)
            if not found:
                break
            box, lobes = found
            t = graph.nodes[node]["t"]
            preds = list(graph.predecessors(node))
            if len(preds) != 1 or graph.out_degree(preds[0]) != 1 or graph.nodes[preds[0]]["t"] != t - 1:
                break  # no single mother in the frame before to give the division to: leave it
            (keep, _), (other, other_child) = lobes
            if t not in top:
                top[t] = int(read_frame(masks, t).max())
            top[t] += 1
            label = top[t]
            crop = np.array(masks[(t, *box)])  # read, paint and write back only the mother's box
            crop[other] = label
            masks[(t, *box)] = crop
            origin = [b.start for b in box]
            graph.nodes[node].update(_region(keep, origin))
            graph.add_node(next_node, t=t, label=label, **_region(other, origin))
            graph.remove_edge(node, other_child)
            graph.add_edge(next_node, other_child)
            graph.add_edge(preds[0], next_node)
            next_node += 1
            node = preds[0]
    return graph, masks


def _aligned_lobes(graph: nx.DiGraph, masks: np.ndarray, node: int, children: list[int], neck_ratio: float,
                   min_fraction: float, min_alignment: float):
    """``(box, [(lobe, child), (lobe, child)])`` if ``node`` is two merged objects continued by ``children``.

    ``box`` is the node's bounding box (slices) and each lobe a boolean mask of that crop.
    """
    if len(children) != 2:
        return None
    data = graph.nodes[node]
    box = tuple(slice(lo, hi) for lo, hi in zip(data["bbox"][:len(data["bbox"]) // 2],
                                                    data["bbox"][len(data["bbox"]) // 2:]))
    crop = np.asarray(masks[(data["t"], *box)]) == data["label"]
    lobes = neck_split(crop, neck_ratio=neck_ratio, min_fraction=min_fraction)
    if not lobes:
        return None
    origin = np.array([b.start for b in box], dtype=float)
    centers = [origin + np.array(ndi.center_of_mass(lobe)) for lobe in lobes]
    targets = [np.asarray(graph.nodes[c]["centroid"], dtype=float) for c in children]
    lobe_axis, child_axis = centers[0] - centers[1], targets[0] - targets[1]
    cosine = lobe_axis @ child_axis / max(np.linalg.norm(lobe_axis) * np.linalg.norm(child_axis), 1e-9)
    if abs(cosine) < min_alignment:
        return None
    if cosine < 0:  # lobe 0 lies towards child 1
        children = children[::-1]
    return box, list(zip(lobes, children))


def _region(mask: np.ndarray, origin: list[int]) -> dict:
    """The node attributes (centroid, area, bbox) of one object's mask in a crop starting at ``origin``."""
    # integer frame coordinates first, then the mean: exactly the centroid of the uncropped mask
    coords = [c + o for c, o in zip(np.nonzero(mask), origin)]
    return {"centroid": tuple(float(c.mean()) for c in coords), "area": int(mask.sum()),
            "bbox": tuple(int(c.min()) for c in coords) + tuple(int(c.max()) + 1 for c in coords)}
