"""Linking segmented objects over time into a lineage graph.

Two linkers:

- :func:`link_overlap` (the default; needs no pretrained model): for every pair of consecutive
  frames, a linear assignment problem (``scipy.optimize.linear_sum_assignment``, :func:`assign`)
  over link, division, appearance and disappearance options. The cost of linking object ``i``
  at ``t`` to ``j`` at ``t + 1`` adds a distance term, ``(d / max_distance)**2`` with ``d`` the
  distance from ``j``'s centroid to where ``i`` is predicted to be (centroid + global drift of
  the field + its own last displacement), and an overlap term, ``1 - |i & j| / min(|i|, |j|)``
  (overlap of the smaller object, which stays high while a cell grows, shrinks or divides).
  A second child of ``i`` costs the link cost plus ``division_cost`` and must be smaller than
  ``i``. Then divisions whose daughters lie clear of the mother are added
  (:func:`division_rescue`), and objects missing from a single frame are bridged
  (:func:`gap_links`).
- :func:`link_trackastra`: trackastra's transformer predicts association scores, its greedy (or
  ILP) solver links. It needs a trackastra model, fetched by name through samzoo's model
  mirror and cache (see :func:`fetch_trackastra_model`) or given as a local folder.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
from scipy.optimize import linear_sum_assignment

from samzoo.errors import InputError
from samzoo.tracking.geometry import estimate_drift, overlaps, shift_labels
from samzoo.tracking.frames import read_frame
from samzoo.tracking.lineage import check_masks, detections, nodes_by_frame
# trackastra's linker lives in its own module; importable from here as documented
from samzoo.tracking.trackastra_link import TRACKASTRA_MODELS, fetch_trackastra_model, link_trackastra

__all__ = ["assign", "link_costs", "link_overlap", "division_rescue", "gap_links", "default_max_distance",
           "link_trackastra", "fetch_trackastra_model", "TRACKASTRA_MODELS"]


def assign(link_cost: np.ndarray, division_cost: np.ndarray, appearance_cost: float,
           disappearance_cost: float) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Solve one frame pair: which object of frame ``t`` continues as which of ``t + 1``.

    The block matrix has rows ``[first child of i | second child of i | birth of j]`` and
    columns ``[child j | death of i | no division of i]``; infeasible options are ``inf``.
    The lower-right block is zero, so every assignment is completable.

    Parameters
    ----------
    link_cost : ndarray (n, m)
        Cost of ``i -> j`` (``inf``: not allowed).
    division_cost : ndarray (n, m)
        Cost of ``i -> j`` as ``i``'s second child (``inf``: not allowed).
    appearance_cost, disappearance_cost : float

    Returns
    -------
    links : list of (i, j)
        Every parent -> child edge, divisions included.
    divisions : list of (i, j)
        The second-child edges among ``links``.
    """
    n, m = link_cost.shape
    if n == 0 or m == 0:
        return [], []
    size = 2 * n + m
    cost = np.full((size, size), np.inf)
    cost[:n, :m] = link_cost
    cost[n:2 * n, :m] = division_cost
    cost[np.arange(n), m + np.arange(n)] = disappearance_cost
    cost[n + np.arange(n), m + n + np.arange(n)] = 0.0
    cost[2 * n + np.arange(m), np.arange(m)] = appearance_cost
    cost[2 * n:, m:] = 0.0
    rows, cols = linear_sum_assignment(cost)
    first = {r: c for r, c in zip(rows, cols) if r < n and c < m}
    second = {r - n: c for r, c in zip(rows, cols) if n <= r < 2 * n and c < m}
    links = sorted(first.items()) + sorted(second.items())
    # a second child without a first one is just a (more expensive) plain link
    return links, sorted((i, j) for i, j in second.items() if i in first)


def link_costs(graph: nx.DiGraph, nodes_a: list[int], nodes_b: list[int], intersections: np.ndarray, *,
               max_distance: float, division_cost: float, max_daughter_area: float,
               drift: np.ndarray | None = None, drift_before: np.ndarray | None = None,
               steps: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Link and second-child costs of every node pair (see the module docstring).

    ``intersections`` are those of the drift-corrected frame ``t`` with frame ``t + 1``;
    ``drift`` / ``drift_before`` are the global shifts of this and the previous frame step;
    ``steps`` is how many frames ahead ``nodes_b`` are (the own motion is applied that often).

    Returns
    -------
    link_cost, division_cost : ndarray (len(nodes_a), len(nodes_b)), ``inf`` where not allowed.
    """
    nodes = graph.nodes
    ndim = len(nodes[nodes_a[0]]["centroid"]) if nodes_a else 2
    drift = np.zeros(ndim) if drift is None else drift
    drift_before = np.zeros(ndim) if drift_before is None else drift_before
    predicted = np.array([_predicted_position(graph, n, drift, drift_before, steps) for n in nodes_a],
                         dtype=float).reshape(len(nodes_a), -1)
    centers_b = np.array([nodes[n]["centroid"] for n in nodes_b], dtype=float).reshape(len(nodes_b), -1)
    area_a = np.array([nodes[n]["area"] for n in nodes_a], dtype=float)
    area_b = np.array([nodes[n]["area"] for n in nodes_b], dtype=float)
    distance = np.linalg.norm(predicted[:, None] - centers_b[None], axis=-1)
    overlap = intersections / np.maximum(np.minimum(area_a[:, None], area_b[None]), 1)
    cost = (distance / max_distance) ** 2 + (1 - overlap)
    link = np.where((distance <= max_distance) | (intersections > 0), cost, np.inf)
    daughter_ok = (area_b[None] <= max_daughter_area * area_a[:, None]) & (intersections > 0)
    return link, np.where(daughter_ok & np.isfinite(link), link + division_cost, np.inf)


def _predicted_position(graph: nx.DiGraph, node: int, drift: np.ndarray, drift_before: np.ndarray,
                        steps: int = 1) -> np.ndarray:
    """Where ``node`` will be ``steps`` frames later: centroid + global drift + its own last motion.

    The own motion is the last displacement minus the drift of that step (none right after a
    division or at the start of a track).
    """
    here = np.asarray(graph.nodes[node]["centroid"], dtype=float)
    preds = list(graph.predecessors(node))
    if len(preds) != 1 or graph.out_degree(preds[0]) != 1:
        return here + drift
    step = graph.nodes[node]["t"] - graph.nodes[preds[0]]["t"]
    own = (here - np.asarray(graph.nodes[preds[0]]["centroid"], dtype=float) - drift_before) / step
    return here + drift + steps * own


def default_max_distance(graph: nx.DiGraph) -> float:
    """1.5 median object diameters (equivalent circle/sphere), at least 10 pixels."""
    areas = np.array([d["area"] for _, d in graph.nodes(data=True)], dtype=float)
    if areas.size == 0:
        return 10.0
    ndim = len(next(iter(graph.nodes.values()))["centroid"])
    area = float(np.median(areas))
    diameter = 2 * (area / np.pi) ** 0.5 if ndim == 2 else 2 * (3 * area / (4 * np.pi)) ** (1 / 3)
    return max(1.5 * float(diameter), 10.0)


def link_overlap(masks: np.ndarray, *, max_distance: float | None = None, appearance_cost: float = 0.75,
                 disappearance_cost: float = 0.75, division_cost: float = 0.25, max_daughter_area: float = 0.9,
                 rescue_divisions: bool = True, correct_drift: bool = True, close_gaps: bool = True,
                 graph: nx.DiGraph | None = None) -> nx.DiGraph:
    """Link the objects of a segmented movie frame by frame (no pretrained model needed).

    Parameters
    ----------
    masks : ndarray (T, [Z,] Y, X) int
        Instance labels per frame (labels need not agree between frames). A lazy array-like
        (a Zarr array, see :mod:`samzoo.tracking.frames`) is read one frame at a time.
    max_distance : float, optional
        Objects farther apart (after the motion model) link only if they overlap. Default:
        :func:`default_max_distance`.
    appearance_cost, disappearance_cost : float
        Cost of starting / ending a track; a link costs between 0 and 2.
    division_cost : float
        Extra cost of a second child (a division).
    max_daughter_area : float
        A daughter must be at most this fraction of its mother's area (overlapping daughters).
    rescue_divisions : bool
        Also look for divisions whose daughters do not overlap the mother
        (:func:`division_rescue`).
    correct_drift : bool
        Estimate and remove a global shift between frames (:func:`estimate_drift`).
    close_gaps : bool
        Bridge objects missing from one frame (:func:`gap_links`); CTC exports such a gap as
        a new track whose parent is the interrupted one.
    graph : networkx.DiGraph, optional
        Detections of ``masks`` (from :func:`samzoo.tracking.lineage.detections`), if at hand.

    Returns
    -------
    networkx.DiGraph, the lineage graph of ``masks``.
    """
    masks = check_masks(masks)
    graph = detections(masks) if graph is None else graph
    max_distance = default_max_distance(graph) if max_distance is None else float(max_distance)
    if max_distance <= 0:
        raise InputError(f"max_distance must be positive, got {max_distance}")
    frames = nodes_by_frame(graph)
    drift_before = np.zeros(masks.ndim - 1)
    drifts: dict[int, np.ndarray] = {}
    held = None  # (t + 1, frame t + 1) of the last step, its frame t in the next: each frame is read once
    for t in range(masks.shape[0] - 1):
        nodes_a, nodes_b = frames.get(t, []), frames.get(t + 1, [])
        if not nodes_a or not nodes_b:
            drift_before = np.zeros(masks.ndim - 1)
            continue
        frame_a = held[1] if held is not None and held[0] == t else read_frame(masks, t)
        frame_b = read_frame(masks, t + 1)
        held = (t + 1, frame_b)
        drift = estimate_drift(frame_a, frame_b) if correct_drift else np.zeros(masks.ndim - 1)
        drifts[t] = drift
        labels_a = np.array([graph.nodes[n]["label"] for n in nodes_a])
        labels_b = np.array([graph.nodes[n]["label"] for n in nodes_b])
        inter = overlaps(shift_labels(frame_a, drift), frame_b, labels_a, labels_b)
        link, div = link_costs(graph, nodes_a, nodes_b, inter, max_distance=max_distance,
                               division_cost=division_cost, max_daughter_area=max_daughter_area,
                               drift=drift, drift_before=drift_before)
        drift_before = drift
        edges, _ = assign(link, div, appearance_cost, disappearance_cost)
        graph.add_edges_from((nodes_a[i], nodes_b[j]) for i, j in edges)
        if rescue_divisions:
            graph.add_edges_from(division_rescue(graph, nodes_a, nodes_b, max_distance=max_distance, drift=drift))
    held = frame_a = frame_b = None  # not kept through the gap pass
    if close_gaps:
        for t in range(masks.shape[0] - 2):
            zero = np.zeros(masks.ndim - 1)
            for u, v in gap_links(graph, masks, frames.get(t, []), frames.get(t + 2, []),
                                  drifts.get(t, zero) + drifts.get(t + 1, zero), max_distance=max_distance,
                                  max_cost=appearance_cost + disappearance_cost, drift_before=drifts.get(t - 1, zero)):
                graph.remove_edges_from(list(graph.in_edges(v)))  # a daughter taken back from a false division
                graph.add_edge(u, v)
    return graph


def gap_links(graph: nx.DiGraph, masks: np.ndarray, nodes_a: list[int], nodes_c: list[int], drift: np.ndarray, *,
              max_distance: float, max_cost: float, daughter_cost: float = 0.5,
              drift_before: np.ndarray | None = None) -> list[tuple[int, int]]:
    """Bridge one missing frame: tracks ending at ``t`` continued by tracks starting at ``t + 2``.

    An object the segmentation misses (or merges with a neighbour) for one frame would
    otherwise end its track and come back as a new one. Ends and starts are matched by the link
    cost of :func:`link_costs` over two frames (two steps of the motion model and ``drift``, the
    summed global drift), one-to-one, keeping pairs cheaper than ``max_cost`` (ending one track
    and starting another).

    Returns
    -------
    list of (end node, start node) edges spanning two frames.
    """
    ends = [n for n in nodes_a if graph.out_degree(n) == 0]
    starts = [n for n in nodes_c if graph.in_degree(n) == 0]
    # daughters too: two objects merged by the segmentation for a frame come apart again like a
    # division; a close interrupted track explains the "second daughter" better
    daughters = [n for n in nodes_c if graph.in_degree(n) == 1
                 and graph.out_degree(next(iter(graph.predecessors(n)))) == 2]
    starts += daughters
    if not ends or not starts:
        return []
    t = graph.nodes[ends[0]]["t"]
    labels_a = np.array([graph.nodes[n]["label"] for n in ends])
    labels_c = np.array([graph.nodes[n]["label"] for n in starts])
    inter = overlaps(shift_labels(read_frame(masks, t), drift), read_frame(masks, t + 2), labels_a, labels_c)
    cost, _ = link_costs(graph, ends, starts, inter, max_distance=max_distance, division_cost=0.0,
                         max_daughter_area=0.0, drift=np.asarray(drift, float), drift_before=drift_before, steps=2)
    limit = np.where(np.isin(starts, daughters), daughter_cost, max_cost)[None]
    cost = np.where(cost < limit, cost, np.inf)
    rows, cols = linear_sum_assignment(np.where(np.isfinite(cost), cost, 1e9))
    return [(ends[r], starts[c]) for r, c in zip(rows, cols) if np.isfinite(cost[r, c])]


def division_rescue(graph: nx.DiGraph, nodes_a: list[int], nodes_b: list[int], *, max_distance: float,
                    drift: np.ndarray | None = None) -> list[tuple[int, int]]:
    """Divisions whose daughters do not overlap their mother, found after the assignment.

    In many movies (e.g. CTC HeLa) the daughters appear on opposite sides of the mother's
    position, clear of its outline, so the overlap-based second-child option cannot see them
    and one daughter would start a new track. Here a mother ``i`` at ``t`` with at most one child
    adopts newly appeared objects at ``t + 1`` when ``i``'s child(ren) ``a, b`` satisfy: both
    within ``max_distance`` of ``i``; ``i`` between them (the midpoint of ``a`` and ``b`` is
    closer to ``i`` than half their distance); sizes alike (smaller / larger >= 0.5); together
    between half and 2.5 times the mother's area. Pairs are taken best-first (most central).
    The mother's position is moved by the global ``drift`` of this frame step.

    Returns
    -------
    list of (mother, daughter) edges to add.
    """
    nodes = graph.nodes
    born = [n for n in nodes_b if graph.in_degree(n) == 0]
    if not born:
        return []
    candidates = []
    for i in nodes_a:
        if graph.out_degree(i) > 1:
            continue
        center = np.asarray(nodes[i]["centroid"]) + (0 if drift is None else drift)
        near = [n for n in born + list(graph.successors(i))
                if np.linalg.norm(np.asarray(nodes[n]["centroid"]) - center) <= max_distance]
        for k, a in enumerate(near):
            for b in near[k + 1:]:
                if graph.in_degree(a) and graph.in_degree(b):
                    continue  # at least one must be unclaimed (the existing child may be one)
                ca, cb = np.asarray(nodes[a]["centroid"]), np.asarray(nodes[b]["centroid"])
                gap = np.linalg.norm(ca - cb)
                offset = np.linalg.norm((ca + cb) / 2 - center)
                area_a, area_b, area_i = nodes[a]["area"], nodes[b]["area"], nodes[i]["area"]
                if (gap > 0 and offset <= 0.5 * gap and min(area_a, area_b) >= 0.5 * max(area_a, area_b)
                        and 0.5 * area_i <= area_a + area_b <= 2.5 * area_i):
                    candidates.append((offset / gap, i, a, b))
    edges, used = [], set()
    for _, i, a, b in sorted(candidates):
        new = [n for n in (a, b) if graph.in_degree(n) == 0]
        if i in used or any(n in used for n in new) or graph.out_degree(i) + len(new) > 2:
            continue
        used.update([i, *new])
        edges.extend((i, n) for n in new)
    return edges
