"""Tracking results in and out: Cell Tracking Challenge folders, napari tracks, geff.

- CTC: ``mask000.tif, mask001.tif, ...`` (one uint16 label image per frame, one label per
  track segment) and ``res_track.txt`` with one ``L B E P`` line per label (label, first
  frame, last frame, parent label or 0). Ground truth uses ``man_track000.tif`` and
  ``man_track.txt``; :func:`read_ctc` reads both.
- napari: the ``(N, 4)`` (or ``(N, 5)`` in 3D) array ``track_id, t, [z,] y, x`` and the
  ``{track_id: [parent_track_id]}`` dict that ``viewer.add_tracks(data, graph=...)`` takes.
- geff: the graph exchange format (a Zarr group), written by the ``geff`` package, with
  ``t``, ``[z,] y, x``, ``label``, ``area`` and ``track_id`` per node.
"""

from __future__ import annotations

import re
from pathlib import Path

import networkx as nx
import numpy as np

from samzoo.errors import InputError, OutputError
from samzoo.io.write import atomic_path
from samzoo.tracking.frames import is_lazy, read_frame
from samzoo.tracking.lineage import check_masks, graph_from_tracks, relabel_tracks, track_ids


def write_ctc(folder: str | Path, masks: np.ndarray, tracks: np.ndarray, *, mask_pattern: str | None = None,
              track_file: str = "res_track.txt", first_frame: int = 0) -> Path:
    """Write CTC-labelled masks and their track table into ``folder`` (each file atomically).

    What the CTC evaluation tools read: one uint16 TIFF per frame, the size of the input,
    numbered like the input frames with 3 digits (4 when the sequence has more than 999
    frames), and the track table with those frame numbers.

    Parameters
    ----------
    folder : path
        Created if needed; files of an earlier, longer result are removed.
    masks : ndarray (T, [Z,] Y, X) int
        One label per track segment (see :func:`samzoo.tracking.lineage.relabel_tracks`). A lazy
        array-like (e.g. :class:`~samzoo.tracking.frames.RelabelledMasks`) is written frame by frame.
    tracks : ndarray (N, 4) int
        ``L B E P`` rows.
    mask_pattern : str, optional
        File name of a frame, formatted with its number; default ``mask{:03d}.tif`` (or
        ``mask{:04d}.tif``); ``man_track{:03d}.tif`` for ground truth.
    track_file : str
        ``res_track.txt``, or ``man_track.txt`` for ground truth.
    first_frame : int
        Number of the first frame (e.g. 10 for a movie read from ``t010.tif`` on).

    Returns
    -------
    Path of ``folder``.
    """
    import tifffile

    masks = check_masks(masks)
    limit = np.iinfo(np.uint16).max
    tracks = np.asarray(tracks, dtype=np.int64).reshape(-1, 4)
    # a lazy movie is checked by its track table up front and by each frame as it is written
    top = tracks[:, 0].max(initial=0) if is_lazy(masks) else masks.max(initial=0)
    if top > limit:
        raise OutputError(f"{top} tracks do not fit the CTC format's uint16 masks")
    if first_frame < 0:
        raise InputError(f"first_frame must be 0 or more, got {first_frame}")
    folder = Path(folder)
    n = masks.shape[0]
    pattern = mask_pattern or ("mask{:04d}.tif" if first_frame + n > 999 else "mask{:03d}.tif")
    written = set()
    for t in range(n):
        frame = read_frame(masks, t)
        if frame.max(initial=0) > limit:
            raise OutputError(f"{frame.max()} tracks do not fit the CTC format's uint16 masks")
        name = pattern.format(first_frame + t)
        # LZW, as the CTC distributes its data: every TIFF reader of the CTC tools decodes it
        with atomic_path(folder / name) as tmp:
            tifffile.imwrite(tmp, frame.astype(np.uint16), compression="lzw")
        written.add(name)
    # frames of an earlier, other result (longer, or numbered otherwise) would be read with this one
    prefix, _, rest = pattern.partition("{")
    stale = re.compile(re.escape(prefix) + r"\d+" + re.escape(rest.partition("}")[2]) + "$")
    for path in folder.iterdir():
        if stale.match(path.name) and path.name not in written:
            path.unlink()
    tracks = tracks.copy()
    tracks[:, 1:3] += first_frame
    lines = "".join(f"{l} {b} {e} {p}\n" for l, b, e, p in tracks)
    with atomic_path(folder / track_file) as tmp:
        tmp.write_text(lines)
    return folder


def to_ctc(graph: nx.DiGraph, masks: np.ndarray, folder: str | Path, *, first_frame: int = 0) -> Path:
    """Relabel a tracking result to track segments and write it as a CTC result folder.

    Lazy ``masks`` (a Zarr array) are relabelled and written one frame at a time. ``first_frame``
    numbers the files like the input's frames (see :func:`write_ctc`).
    """
    _, relabelled, tracks = relabel_tracks(graph, masks)
    return write_ctc(folder, relabelled, tracks, first_frame=first_frame)


def mask_files(folder: str | Path) -> list[tuple[int, Path]]:
    """``(frame number, path)`` of the numbered mask TIFFs of a CTC folder, in frame order.

    Raises
    ------
    InputError
        No mask TIFFs, or numbers that are not consecutive.
    """
    folder = Path(folder)
    numbered = sorted((int(m.group(1)), p) for p in folder.glob("*.tif*")
                      if (m := re.search(r"(\d+)\.tiff?$", p.name)))
    if not numbered:
        raise InputError(f"{folder} holds no mask TIFFs (mask000.tif or man_track000.tif ...)")
    first, last = numbered[0][0], numbered[-1][0]
    if [n for n, _ in numbered] != list(range(first, first + len(numbered))):
        raise InputError(f"{folder}: the mask files are not numbered consecutively ({first} to {last}, "
                         f"{len(numbered)} files)")
    return numbered


def read_ctc(folder: str | Path) -> tuple[nx.DiGraph, np.ndarray, np.ndarray]:
    """Read a CTC result or ground-truth folder (``mask*.tif``/``man_track*.tif`` + ``*_track.txt``).

    Returns
    -------
    graph : networkx.DiGraph
        Lineage graph (see :mod:`samzoo.tracking.lineage`).
    masks : ndarray (T, [Z,] Y, X)
    tracks : ndarray (N, 4) int64, the ``L B E P`` rows, frames counted from the first file (index into ``masks``).

    Raises
    ------
    InputError
        Missing or ambiguous files, or labels in the masks without a row in the track file.
    """
    import tifffile

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder (a CTC result needs mask000.tif... and res_track.txt)")
    track_files = sorted(folder.glob("*_track.txt"))
    if len(track_files) != 1:
        found = ", ".join(p.name for p in track_files) or "none"
        raise InputError(f"{folder} must hold exactly one *_track.txt file (found {found})")
    numbered = mask_files(folder)
    first = numbered[0][0]
    masks = np.stack([tifffile.imread(p) for _, p in numbered])
    try:  # an empty file is a valid result without objects
        text = track_files[0].read_text().strip()
        tracks = np.loadtxt(track_files[0], dtype=np.int64, ndmin=2) if text else np.zeros((0, 4), dtype=np.int64)
    except ValueError as err:
        raise InputError(f"{track_files[0]}: not a CTC track file of 'L B E P' integer lines ({err})") from None
    tracks = tracks.reshape(-1, 4) if tracks.size else np.zeros((0, 4), dtype=np.int64)
    tracks[:, 1:3] -= first  # frame numbers -> positions in ``masks``
    missing = np.setdiff1d(np.unique(masks), np.r_[0, tracks[:, 0]])
    if len(missing):
        raise InputError(f"{folder}: labels {missing[:10].tolist()} appear in the masks "
                         f"but not in {track_files[0].name}")
    return graph_from_tracks(masks, tracks), masks, tracks


def to_napari(graph: nx.DiGraph, masks: np.ndarray | None = None) -> tuple[np.ndarray, dict[int, list[int]]]:
    """napari tracks: ``(data, graph)`` for ``viewer.add_tracks``.

    Parameters
    ----------
    graph : networkx.DiGraph
        Lineage graph; node centroids give positions.
    masks : ndarray, optional
        Only used to check that graph and masks belong together (same number of frames).
        Track IDs are those :func:`to_ctc` writes.

    Returns
    -------
    data : ndarray (N, 4) or (N, 5) float
        ``track_id, t, [z,] y, x`` per node, sorted by track then time.
    parents : dict of track_id -> [parent track_id]
        Only tracks with a parent.
    """
    if masks is not None and graph.number_of_nodes() and max(d["t"] for _, d in graph.nodes(data=True)) >= len(masks):
        raise InputError("the graph has frames beyond the masks; pass the masks it was built from")
    relabelled, tracks, _ = track_ids(graph)
    rows = [(d["track_id"], d["t"], *d["centroid"]) for _, d in relabelled.nodes(data=True)]
    data = np.array(sorted(rows), dtype=float) if rows else np.zeros((0, 4))
    parents = {int(l): [int(p)] for l, _, _, p in tracks if p > 0}
    return data, parents


def to_geff(graph: nx.DiGraph, path: str | Path, *, masks: np.ndarray | None = None) -> Path:
    """Write the lineage graph in the geff format (a Zarr group at ``path``), atomically.

    Node properties: ``t``, ``[z,] y, x`` (the centroid), ``label``, ``area`` and ``track_id``;
    edges are parent -> child. ``label`` is the track ID, i.e. the label that :func:`to_ctc`
    writes, so geff and CTC outputs of one run agree; ``masks`` (optional) are only checked.
    """
    import geff

    if masks is not None and graph.number_of_nodes() and max(d["t"] for _, d in graph.nodes(data=True)) >= len(masks):
        raise InputError("the graph has frames beyond the masks; pass the masks it was built from")
    relabelled, _, _ = track_ids(graph)
    ndim = len(next(iter(relabelled.nodes.values()))["centroid"]) if relabelled.number_of_nodes() else 2
    spatial = ["z", "y", "x"][-ndim:]
    out = nx.DiGraph()
    for n, d in relabelled.nodes(data=True):
        out.add_node(int(n), t=int(d["t"]), **{a: float(c) for a, c in zip(spatial, d["centroid"])},
                     label=int(d["label"]), area=int(d["area"]), track_id=int(d["track_id"]))
    out.add_edges_from((int(u), int(v)) for u, v in relabelled.edges)
    path = Path(path)
    with atomic_path(path, directory=True) as tmp:
        geff.write(out, str(tmp), axis_names=["t", *spatial], axis_types=["time"] + ["space"] * ndim,
                   axis_units=["frame"] + ["pixel"] * ndim)
    return path


def read_geff(path: str | Path) -> nx.DiGraph:
    """Read a geff graph written by :func:`to_geff` back into a lineage graph (no bbox)."""
    import geff

    graph, _ = geff.read(str(path))
    out = nx.DiGraph()
    for n, d in graph.nodes(data=True):
        centroid = tuple(float(d[a]) for a in ("z", "y", "x") if a in d)
        out.add_node(int(n), t=int(d["t"]), label=int(d["label"]), centroid=centroid, area=int(d["area"]),
                     track_id=int(d["track_id"]))
    out.add_edges_from((int(u), int(v)) for u, v in graph.edges)
    return out
