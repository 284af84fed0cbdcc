"""The lineage graph: one node per object per frame, edges parent -> child in time.

Every tracking result in samzoo is a pair ``(graph, masks)``:

- ``masks`` : ndarray ``(T, [Z,] Y, X)`` of integer labels;
- ``graph`` : :class:`networkx.DiGraph` whose nodes are integers with the attributes
  ``t`` (frame), ``label`` (the object's value in ``masks[t]``), ``centroid`` (tuple of floats,
  ``(y, x)`` or ``(z, y, x)``), ``area`` (pixels) and ``bbox`` (tuple, skimage order). An edge
  ``u -> v`` says that ``v`` (in a later frame) continues ``u``; a node with two successors is a
  division.

The invariant "``label`` is the node's value in ``masks[t]``" holds for every function here, so
metrics and exports can read pixels and graph together. :func:`relabel_tracks` turns any such
pair into CTC-style track labels (one label per track segment, constant over time).

``masks`` may also be a lazy array-like (a Zarr array, see :mod:`samzoo.tracking.frames`): the
functions here then read it one frame at a time and never hold the whole movie.
"""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx
import numpy as np
from skimage.measure import regionprops

from samzoo.errors import InputError
from samzoo.tracking.frames import RelabelledMasks, is_lazy, read_frame, relabel_frame


def check_masks(masks: np.ndarray) -> np.ndarray:
    """``masks`` as an integer array ``(T, [Z,] Y, X)``; raises InputError otherwise.

    A lazy array-like (:func:`samzoo.tracking.frames.is_lazy`, e.g. a Zarr array) is checked
    frame by frame and returned as it is, not converted to numpy.
    """
    lazy = is_lazy(masks)
    masks = masks if lazy else np.asarray(masks)
    if masks.ndim not in (3, 4):
        raise InputError(f"tracking needs label images of shape (T, Y, X) or (T, Z, Y, X); got shape {masks.shape}")
    if not np.issubdtype(masks.dtype, np.integer):
        raise InputError(f"label images must be integers, got dtype {masks.dtype}")
    if lazy:
        # unsigned labels cannot be negative; signed ones cost one pass over the frames
        if np.issubdtype(masks.dtype, np.signedinteger) and any(
                read_frame(masks, t).min(initial=0) < 0 for t in range(masks.shape[0])):
            raise InputError("label images must not contain negative labels")
        return masks
    if masks.size and masks.min() < 0:
        raise InputError("label images must not contain negative labels")
    return masks


def detections(masks: np.ndarray) -> nx.DiGraph:
    """A graph with one node per object per frame and no edges.

    Parameters
    ----------
    masks : ndarray (T, [Z,] Y, X) int, or a lazy array-like read frame by frame

    Returns
    -------
    networkx.DiGraph; nodes are numbered ``0..N-1`` in frame then label order.
    """
    masks = check_masks(masks)
    graph = nx.DiGraph()
    node = 0
    for t in range(masks.shape[0]):
        for region in regionprops(read_frame(masks, t)):
            graph.add_node(node, t=t, label=int(region.label), centroid=tuple(float(c) for c in region.centroid),
                           area=int(region.area), bbox=tuple(int(b) for b in region.bbox))
            node += 1
    return graph


def nodes_by_frame(graph: nx.DiGraph) -> dict[int, list[int]]:
    """Frame -> node ids of that frame (sorted by label)."""
    frames: dict[int, list[int]] = {}
    for n, data in sorted(graph.nodes(data=True), key=lambda item: (item[1]["t"], item[1]["label"])):
        frames.setdefault(data["t"], []).append(n)
    return frames


def node_index(graph: nx.DiGraph) -> dict[tuple[int, int], int]:
    """``(t, label) -> node`` for looking nodes up from pixels."""
    return {(d["t"], d["label"]): n for n, d in graph.nodes(data=True)}


def tracklets(graph: nx.DiGraph) -> list[list[int]]:
    """Track segments: maximal chains of nodes without divisions, merges or gaps, in time order.

    A chain starts at a node whose predecessor is missing, is not unique, has more than one
    successor (the node is a daughter) or lies more than one frame back (a gap), and continues
    while the link is one-to-one to the next frame.

    Returns
    -------
    list of lists of node ids, sorted by first frame then first label.
    """
    def continues(u, v) -> bool:
        # a one-to-one link to the very next frame; a link over a gap starts a new segment, as
        # CTC requires every label to be present in all frames from B to E
        return (graph.out_degree(u) == 1 and graph.in_degree(v) == 1
                and graph.nodes[v]["t"] == graph.nodes[u]["t"] + 1)

    chains = []
    for n in graph.nodes:
        preds = list(graph.predecessors(n))
        if len(preds) == 1 and continues(preds[0], n):
            continue
        chain = [n]
        while graph.out_degree(chain[-1]) == 1:
            nxt = next(iter(graph.successors(chain[-1])))
            if not continues(chain[-1], nxt):
                break
            chain.append(nxt)
        chains.append(chain)
    return sorted(chains, key=lambda c: (graph.nodes[c[0]]["t"], graph.nodes[c[0]]["label"]))


def divisions(graph: nx.DiGraph) -> list[tuple[int, list[int]]]:
    """``(mother node, [daughter nodes])`` for every node with two or more successors, in time order."""
    found = [(n, sorted(graph.successors(n))) for n in graph.nodes if graph.out_degree(n) >= 2]
    return sorted(found, key=lambda item: graph.nodes[item[0]]["t"])


def lineage_trees(graph: nx.DiGraph) -> list[nx.DiGraph]:
    """One subgraph per lineage (weakly connected component), largest first."""
    components = sorted(nx.weakly_connected_components(graph), key=lambda c: (-len(c), min(c)))
    return [graph.subgraph(c).copy() for c in components]


def track_table(graph: nx.DiGraph, chains: list[list[int]] | None = None) -> np.ndarray:
    """CTC ``L B E P`` rows for the tracklets of ``graph``, labelled ``1..N`` in tracklet order.

    Returns
    -------
    ndarray (N, 4) int64: label, first frame, last frame, parent label (0 if none).
    """
    chains = tracklets(graph) if chains is None else chains
    owner = {n: i + 1 for i, chain in enumerate(chains) for n in chain}
    rows = []
    for i, chain in enumerate(chains):
        preds = list(graph.predecessors(chain[0]))
        # a merge (two predecessors) has no single parent in CTC terms
        parent = owner[preds[0]] if len(preds) == 1 else 0
        rows.append((i + 1, graph.nodes[chain[0]]["t"], graph.nodes[chain[-1]]["t"], parent))
    return np.array(rows, dtype=np.int64).reshape(-1, 4)


def track_ids(graph: nx.DiGraph) -> tuple[nx.DiGraph, np.ndarray, dict[int, dict[int, int]]]:
    """Number the track segments of ``graph`` ``1..N`` (CTC convention), without touching pixels.

    Returns
    -------
    graph : networkx.DiGraph
        A copy whose ``label`` is the track ID, with ``track_id`` equal to it.
    tracks : ndarray (N, 4) int64
        ``L B E P`` rows (see :func:`track_table`).
    mapping : dict
        ``t -> {old label: track ID}``, to relabel the masks.
    """
    chains = tracklets(graph)
    tracks = track_table(graph, chains)
    out = graph.copy()
    mapping: dict[int, dict[int, int]] = {}
    for i, chain in enumerate(chains):
        for n in chain:
            data = out.nodes[n]
            mapping.setdefault(data["t"], {})[data["label"]] = i + 1
            data["label"] = data["track_id"] = i + 1
    return out, tracks, mapping


def relabel_tracks(graph: nx.DiGraph, masks: np.ndarray) -> tuple[nx.DiGraph, np.ndarray, np.ndarray]:
    """Give every track segment one label over time (CTC convention).

    Parameters
    ----------
    graph : networkx.DiGraph
        Lineage graph of ``masks`` (see the module docstring).
    masks : ndarray (T, [Z,] Y, X) int, or a lazy array-like

    Returns
    -------
    graph : networkx.DiGraph
        A copy whose ``label`` is the new label, with ``track_id`` equal to it.
    masks : ndarray, same shape, uint32
        Objects not in the graph become background. For lazy ``masks``: a
        :class:`~samzoo.tracking.frames.RelabelledMasks` view that relabels each frame on reading.
    tracks : ndarray (N, 4) int64
        ``L B E P`` rows (see :func:`track_table`).
    """
    masks = check_masks(masks)
    out, tracks, mapping = track_ids(graph)
    if is_lazy(masks):  # a movie on disk: relabel each frame when it is read, keep no copy
        return out, RelabelledMasks(masks, mapping), tracks
    relabelled = np.zeros(masks.shape, dtype=np.uint32)
    for t, frame in enumerate(masks):
        relabelled[t] = relabel_frame(frame, mapping.get(t))
    return out, relabelled, tracks


def graph_from_tracks(masks: np.ndarray, tracks: np.ndarray) -> nx.DiGraph:
    """The lineage graph of CTC-labelled masks and their ``L B E P`` table.

    Consecutive appearances of a label are linked (a gap of missing frames is bridged), and
    each track's first node is linked to its parent's last node.

    Raises
    ------
    InputError
        When a parent label has no row in ``tracks``.
    """
    graph = detections(masks)
    tracks = np.asarray(tracks, dtype=np.int64).reshape(-1, 4)
    by_label: dict[int, list[int]] = {}
    for n, d in sorted(graph.nodes(data=True), key=lambda item: item[1]["t"]):
        by_label.setdefault(d["label"], []).append(n)
    for nodes in by_label.values():
        graph.add_edges_from(zip(nodes[:-1], nodes[1:]))
    known = set(tracks[:, 0].tolist())
    for label, _, _, parent in tracks.tolist():
        if parent == 0:
            continue
        if parent not in known:
            raise InputError(f"track {label} has parent {parent}, which is not in the track table")
        if parent in by_label and label in by_label:
            graph.add_edge(by_label[parent][-1], by_label[label][0])
    return graph


def add_edges(graph: nx.DiGraph, edges: Iterable[tuple[int, int]]) -> nx.DiGraph:
    """Add ``parent -> child`` edges, checking that each goes forward in time."""
    for u, v in edges:
        if graph.nodes[v]["t"] <= graph.nodes[u]["t"]:
            raise InputError(f"edge {u} -> {v} goes from frame {graph.nodes[u]['t']} to {graph.nodes[v]['t']}")
        graph.add_edge(u, v)
    return graph
