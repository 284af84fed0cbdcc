"""`track`: one entry point for automatic tracking (segment, then link) and propagation.

Which linker runs (``linker=``):

- ``"overlap"``: samzoo's overlap/distance assignment linker (:func:`link_overlap`); offline,
  no model.
- ``"trackastra"``: trackastra with ``trackastra_model`` (a name fetched through samzoo's mirror
  and cache, or a local folder); fails with :class:`DownloadError` when it cannot be had.
- ``"auto"`` (default): trackastra when its model is at hand without a download from the
  internet (a local folder, already in samzoo's cache, or a mirror is configured) and images
  are given; otherwise the overlap linker. ``TrackingResult.linker`` says which one ran.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np

from samzoo.errors import DownloadError, InputError
from samzoo.tracking.lineage import check_masks, relabel_tracks
from samzoo.tracking.linking import link_overlap
from samzoo.tracking.merged import split_late_divisions
from samzoo.tracking.trackastra_link import TRACKASTRA_MODELS, link_trackastra


@dataclass
class TrackingResult:
    """A tracking result.

    Attributes
    ----------
    graph : networkx.DiGraph
        Lineage graph whose ``label`` attributes are the labels of ``masks``.
    masks : ndarray (T, [Z,] Y, X) uint32
        One label per track segment (CTC convention).
    tracks : ndarray (N, 4) int64
        CTC ``L B E P`` rows.
    linker : str
        What linked the objects: ``"overlap"``, ``"trackastra:<model>"`` or ``"propagate"``.
    """

    graph: nx.DiGraph
    masks: np.ndarray
    tracks: np.ndarray
    linker: str


def segment_movie(images: np.ndarray, *, model=None, segmenter: str = "ais", zstack: bool = False,
                  scale: float = 1.0) -> np.ndarray:
    """Instance labels for every frame of a movie ``(T, H, W[, C])``, or ``(T, Z, H, W)`` with ``zstack``.

    ``segmenter`` is ``"ais"`` (samzoo model, :func:`samzoo.segmentation.ais.segment_ais`) or
    ``"classical"`` (:func:`samzoo.segmentation.classical.classical_baseline`, no model). With
    ``zstack``, each frame's slices are segmented and joined into 3D objects
    (:func:`samzoo.segmentation.volume.merge_slices`), as ``samzoo segment`` does. ``scale``
    resizes each plane before segmenting (:func:`samzoo.segmentation.rescale.segment_rescaled`).
    """
    from samzoo.segmentation.rescale import segment_rescaled

    images = np.asarray(images)
    if segmenter not in ("ais", "classical"):
        raise InputError(f"unknown segmenter {segmenter!r}; use 'ais' or 'classical'")
    if segmenter == "classical":
        segment = classical
    else:
        from samzoo.models.load import load_model
        from samzoo.segmentation.ais import segment_ais

        model = load_model() if model is None else model

        def segment(plane):
            return segment_ais(model, plane)

    def segment_scaled(plane):
        return segment_rescaled(segment, plane, scale)

    if not zstack:
        return np.stack([segment_scaled(frame) for frame in images])
    from samzoo.segmentation.volume import merge_slices

    return np.stack([merge_slices(np.stack([segment_scaled(plane) for plane in volume])) for volume in images])


def classical(frame: np.ndarray) -> np.ndarray:
    from samzoo.segmentation.classical import classical_baseline

    return classical_baseline(frame)


def _trackastra_at_hand(name: str | Path) -> bool:
    """Whether a trackastra model can be had without downloading from the internet."""
    from samzoo.zoo.fetch import MIRROR_ENV, cache_dir

    if Path(name).is_dir():
        return True
    return str(name) in TRACKASTRA_MODELS and (
        (cache_dir() / "trackastra" / str(name) / "model.pt").is_file() or bool(os.environ.get(MIRROR_ENV)))


def track(images: np.ndarray | None = None, masks: np.ndarray | None = None, *, mode: str = "auto",
          model=None, start: np.ndarray | Mapping | None = None, start_frame: int = 0, linker: str = "auto",
          trackastra_model: str | Path = "general_2d", segmenter: str = "ais", zstack: bool = False,
          split_merged: bool | None = None, scale: float = 1.0, **link_options) -> TrackingResult:
    """Track objects in a movie.

    Parameters
    ----------
    images : ndarray (T, [Z,] H, W), optional
        Needed unless ``masks`` are given with the overlap linker.
    masks : ndarray (T, [Z,] H, W) int, optional
        ``mode="auto"``: given segmentations to link (no segmentation is run).
    mode : {"auto", "propagate"}
        ``auto``: segment every frame (unless ``masks``) and link; ``propagate``: follow the
        objects in ``start`` with SAM prompts (:func:`samzoo.tracking.propagate.propagate`).
    model : SamzooModel, optional
        For segmentation and propagation; default :func:`samzoo.load_model`.
    start : ndarray (H, W) or mapping of id -> Prompt
        ``mode="propagate"``: the objects in ``start_frame``.
    linker : {"auto", "overlap", "trackastra"}
        See the module docstring.
    trackastra_model : str or Path
    segmenter : {"ais", "classical"}
    zstack : bool
        ``images`` are ``(T, Z, H, W)`` volumes (for segmentation; given masks say it themselves).
    split_merged : bool, optional
        With the overlap linker: move divisions back through frames where the segmentation
        merged the two daughters, cutting the merged object at its neck
        (:func:`samzoo.tracking.merged.split_late_divisions`). Default: only when ``track``
        segments the movie itself (given masks are taken as they are).
    scale : float
        ``mode="auto"`` without masks: segment every plane resized by this factor (see
        :func:`segment_movie`).
    **link_options
        Passed to :func:`samzoo.tracking.linking.link_overlap` (e.g. ``max_distance``).

    Returns
    -------
    TrackingResult
    """
    if mode == "propagate":
        from samzoo.models.load import load_model
        from samzoo.tracking.propagate import propagate

        if images is None or start is None:
            raise InputError("mode='propagate' needs the images and the objects to start from (labels or prompts)")
        if scale != 1:
            raise InputError("scale applies to automatic segmentation (mode='auto'), not to propagation")
        if zstack:
            raise InputError("mode='propagate' follows objects in 2D movies (t, y, x); use mode='auto' for 3D + time")
        graph, labels = propagate(load_model() if model is None else model, images, start, start_frame=start_frame)
        return _result(graph, labels, "propagate")
    if mode != "auto":
        raise InputError(f"unknown tracking mode {mode!r}; use 'auto' or 'propagate'")
    if split_merged is None:
        split_merged = masks is None
    if masks is None:
        if images is None:
            raise InputError("automatic tracking needs images or masks")
        masks = segment_movie(images, model=model, segmenter=segmenter, zstack=zstack, scale=scale)
    masks = check_masks(masks)
    if images is not None and np.asarray(images).shape[:masks.ndim] != masks.shape:
        raise InputError(f"images {np.asarray(images).shape} and masks {masks.shape} do not match")
    if linker not in ("auto", "overlap", "trackastra"):
        raise InputError(f"unknown linker {linker!r}; use 'auto', 'overlap' or 'trackastra'")
    use_trackastra = linker == "trackastra" or (linker == "auto" and images is not None
                                                 and _trackastra_at_hand(trackastra_model))
    if use_trackastra:
        if images is None:
            raise InputError("the trackastra linker needs the images too")
        try:
            graph = link_trackastra(images, masks, model=trackastra_model)
            return _result(graph, masks, f"trackastra:{Path(str(trackastra_model)).name}")
        except DownloadError:
            if linker == "trackastra":
                raise
    graph = link_overlap(masks, **link_options)
    if split_merged:
        graph, masks = split_late_divisions(graph, masks)
    return _result(graph, masks, "overlap")


def _result(graph: nx.DiGraph, masks: np.ndarray, linker: str) -> TrackingResult:
    relabelled_graph, relabelled, tracks = relabel_tracks(graph, masks)
    return TrackingResult(relabelled_graph, relabelled, tracks, linker)
