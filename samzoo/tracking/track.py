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
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np

from samzoo.errors import DownloadError, InputError
from samzoo.io.normalize import check_gamma, check_movie_gamma, compress_intensities
from samzoo.tracking.gamma import most_consistent, resolve_gamma
from samzoo.tracking.frames import read_frame
from samzoo.tracking.lineage import check_masks, relabel_tracks
from samzoo.tracking.linking import link_overlap
from samzoo.tracking.fragments import join_fragments
from samzoo.tracking.merged import split_late_divisions
from samzoo.tracking.temporal import add_border_objects, split_by_neighbours
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
    gamma : float or None
        The intensity gamma the frames were segmented at (chosen by ``gamma="auto"``, or as
        given); None where ``track`` did not segment (given masks, propagation).
    """

    graph: nx.DiGraph
    masks: np.ndarray
    tracks: np.ndarray
    linker: str
    gamma: float | None = None


def segment_movie(images: np.ndarray, *, model=None, segmenter: str = "ais", zstack: bool = False,
                  scale: float = 1.0, border_objects: bool = False, gamma: float = 1.0,
                  views: int | None = None) -> np.ndarray:
    """Instance labels for every frame of a movie ``(T, H, W[, C])``, or ``(T, Z, H, W)`` with ``zstack``.

    ``segmenter`` is ``"ais"`` (samzoo model, :func:`samzoo.segmentation.ais.segment_ais`) or
    ``"classical"`` (:func:`samzoo.segmentation.classical.classical_baseline`, no model). With
    ``zstack``, each frame's slices are segmented and joined into 3D objects
    (:func:`samzoo.segmentation.volume.merge_slices`), as ``samzoo segment`` does. ``scale``
    resizes each plane before segmenting (:func:`samzoo.segmentation.rescale.segment_rescaled`).
    ``border_objects`` (AIS, 2D movies; :func:`track` turns it on) also keeps the objects
    entering or leaving the field of view that the AIS watershed leaves out: the regions of
    :func:`samzoo.segmentation.watershed.border_regions` that continue an object of the frame
    before or after (:func:`samzoo.tracking.temporal.add_border_objects`). ``gamma`` compresses
    each frame's intensities first (:func:`samzoo.io.normalize.compress_intensities`; 1: as they are).
    ``views``: AIS maps combined over this many turned and mirrored views of each plane
    (:func:`samzoo.segmentation.ais.multi_view_maps`; 1: the frame alone; None: the model's
    default, :func:`samzoo.segmentation.views.resolve_views`). For movies larger than memory see
    :func:`segment_to_zarr`.
    """
    segment = frame_segmenter(model=model, segmenter=segmenter, zstack=zstack, scale=scale,
                              border_objects=border_objects, gamma=gamma, views=views)
    frames = [segment(frame) for frame in np.asarray(images)]
    if not border_objects:
        return np.stack(frames)
    masks, candidates = (np.stack(part) for part in zip(*frames))
    return add_border_objects(masks, candidates, in_place=True)


def frame_segmenter(*, model=None, segmenter: str = "ais", zstack: bool = False, scale: float = 1.0,
                    border_objects: bool = False, gamma: float = 1.0,
                    views: int | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """The function that segments one frame (``(H, W[, C])``, or ``(Z, H, W)`` with ``zstack``); see
    :func:`segment_movie` for the options. With ``border_objects`` it returns the labels and the
    frame's :func:`~samzoo.segmentation.watershed.border_regions`."""
    segment = _frame_segmenter(model=model, segmenter=segmenter, zstack=zstack, scale=scale,
                               border_objects=border_objects, views=views)
    if check_gamma(gamma) == 1:
        return segment
    return lambda frame: segment(compress_intensities(frame, gamma))


def _frame_segmenter(*, model, segmenter: str, zstack: bool, scale: float,
                     border_objects: bool, views: int | None = None) -> Callable[[np.ndarray], np.ndarray]:
    from samzoo.segmentation.rescale import segment_rescaled
    from samzoo.segmentation.views import resolve_views

    if segmenter not in ("ais", "classical"):
        raise InputError(f"unknown segmenter {segmenter!r}; use 'ais' or 'classical'")
    if border_objects and (segmenter != "ais" or zstack):
        raise InputError("border_objects needs the AIS segmenter on 2D frames (it reads the AIS maps)")
    if segmenter == "classical":
        resolve_views(None, views, "classical")  # more than one view is refused
        segment = classical
    else:
        from samzoo.models.load import load_model
        from samzoo.segmentation.ais import segment_ais

        model = load_model() if model is None else model
        views = resolve_views(model, views)
        if border_objects:
            return _ais_with_border_regions(model, scale, views)

        def segment(plane):
            return segment_ais(model, plane, views=views)

    def segment_scaled(plane):
        return segment_rescaled(segment, plane, scale)

    if not zstack:
        return segment_scaled
    from samzoo.segmentation.volume import merge_slices

    def segment_volume(volume):
        return merge_slices(np.stack([segment_scaled(plane) for plane in volume]))

    return segment_volume


def _ais_with_border_regions(model, scale: float,
                             views: int) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """One frame's AIS labels and border regions (both from the same AIS maps), at ``scale``."""
    from samzoo.segmentation.ais import multi_view_maps
    from samzoo.segmentation.rescale import labels_to_shape, rescale_image
    from samzoo.segmentation.watershed import MIN_SIZE, border_regions, watershed_from_maps

    def segment(plane):
        maps = multi_view_maps(model, plane if scale == 1 else rescale_image(plane, scale), views)
        labels = watershed_from_maps(maps)
        # slivers of a few pixels too: add_border_objects keeps out those that continue nothing
        border = border_regions(maps, labels, min_size=MIN_SIZE // 4)
        return labels_to_shape(labels, plane.shape[:2]), labels_to_shape(border, plane.shape[:2])

    return segment


def segment_to_zarr(images, path: str | Path, *, model=None, segmenter: str = "ais", zstack: bool = False,
                    scale: float = 1.0, border_objects: bool = False, gamma: float = 1.0,
                    views: int | None = None):
    """Segment a movie one frame at a time into a Zarr label array at ``path`` (a movie larger than memory).

    ``images`` may be lazy (a dask array or xarray of a Zarr movie): only ``images[t]`` is read,
    one frame after the other, and each frame's labels are written before the next is read.
    Each frame is segmented whole, exactly as :func:`segment_movie` does (same labels). With
    ``border_objects``, the border regions wait in a second store beside ``path`` (removed at
    the end) until the objects they continue are known.

    Returns
    -------
    zarr.Array (T, [Z,] H, W) uint32, opened for writing.
    """
    segment = frame_segmenter(model=model, segmenter=segmenter, zstack=zstack, scale=scale,
                              border_objects=border_objects, gamma=gamma, views=views)
    shape = tuple(int(n) for n in images.shape[:4 if zstack else 3])
    frames = (segment(np.asarray(images[t])) for t in range(shape[0]))
    if not border_objects:
        return _frames_to_zarr(path, shape, frames)
    border_path = Path(str(path) + ".border")
    border = _frames_to_zarr(border_path, shape, [])
    store = _frames_to_zarr(path, shape, (_keep_border(border, t, pair) for t, pair in enumerate(frames)))
    add_border_objects(store, border, in_place=True)
    shutil.rmtree(border_path)
    return store


def _keep_border(border, t: int, pair: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Write frame ``t``'s border regions into ``border``; return its labels."""
    border[t] = pair[1]
    return pair[0]


def _frames_to_zarr(path: str | Path, shape: tuple[int, ...], frames: Iterable[np.ndarray]):
    """A new uint32 Zarr array at ``path`` filled frame by frame from ``frames``."""
    import zarr

    # chunks of at most 4096 pixels per side keep a crop read (split_late_divisions) small
    chunks = (1, *(1 if i < len(shape) - 3 else min(n, 4096) for i, n in enumerate(shape[1:])))
    store = zarr.create_array(str(path), shape=shape, chunks=chunks, dtype=np.uint32, fill_value=0,
                              overwrite=True)
    for t, labels in enumerate(frames):
        if labels.size and labels.min() < 0:
            raise InputError(f"frame {t} has negative labels")
        store[t] = labels
    return store


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
          split_merged: bool | None = None, scale: float | str | None = 1.0, workdir: str | Path | None = None,
          gamma: float | str | None = None, views: int | None = None, **link_options) -> TrackingResult:
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
        With the overlap linker: repair objects that the segmentation merged. Before linking,
        cut an object that covers two objects of the previous or next frame where it has a
        neck (:func:`samzoo.tracking.temporal.split_by_neighbours`), and join touching pieces of
        an object that the next frame shows whole (:func:`samzoo.tracking.fragments.join_fragments`);
        after linking, move
        divisions back through frames where the two daughters are one pinched object
        (:func:`samzoo.tracking.merged.split_late_divisions`). Default: only when ``track``
        segments the movie itself (given masks are taken as they are).
    scale : float or "auto"
        ``mode="auto"`` without masks: segment every plane resized by this factor (see
        :func:`segment_movie`); ``"auto"``: estimated once on the middle frame
        (:func:`samzoo.segmentation.autoscale.estimate_scale`), the same for every frame;
        None: the model's default (:func:`samzoo.segmentation.autoscale.resolve_scale`).
    gamma : float, "auto" or None
        ``mode="auto"`` without masks: compress each frame's intensities before segmenting
        (:func:`samzoo.io.normalize.compress_intensities`). 0.5 lifts dim nuclei in movies whose
        nuclei differ much in brightness; 1 leaves them as they are. ``"auto"``: segment the movie
        at 1 and at 0.5 and keep the segmentation whose objects match best from frame to frame
        (:mod:`samzoo.tracking.gamma`; twice the segmentation time). None (default): ``"auto"``
        for samzoo's own models with AIS on 2D movies in memory, 1 otherwise
        (:func:`samzoo.tracking.gamma.resolve_gamma`). ``TrackingResult.gamma`` says which was
        used. The linkers see the images as given.
    views : {1, 2, 4, 8} or None
        ``mode="auto"`` with AIS, without masks: each plane's AIS maps combined over this many
        turned and mirrored views (see :func:`samzoo.segment`). None (default): 2 for samzoo's
        own models (CTC GOWT1 TRA 0.973 -> 0.975, SEG 0.831 -> 0.858; SIM+ TRA 0.940 -> 0.956,
        SEG 0.809 -> 0.831; simulated movies TRA 0.979 -> 0.984), 1 for SAM-family models.
    workdir : path, optional
        Track a movie larger than memory, frame by frame (``mode="auto"`` with the overlap
        linker only; see :func:`track_on_disk`): ``images`` and ``masks`` may then be lazy
        (dask, xarray, Zarr) and the labels are kept in a Zarr store in this folder, which must
        outlive the result (its ``masks`` read from there).
    **link_options
        Passed to :func:`samzoo.tracking.linking.link_overlap` (e.g. ``max_distance``).

    Returns
    -------
    TrackingResult
    """
    gamma = check_movie_gamma(gamma)
    if mode == "propagate" and workdir is not None:
        raise InputError("propagation needs the whole movie in memory; a movie tracked frame by frame (workdir) "
                         "takes mode='auto' with the overlap linker")
    if mode == "propagate":
        from samzoo.models.load import load_model
        from samzoo.tracking.propagate import propagate

        if images is None or start is None:
            raise InputError("mode='propagate' needs the images and the objects to start from (labels or prompts)")
        if scale not in (1, "auto", None):
            raise InputError("scale applies to automatic segmentation (mode='auto'), not to propagation")
        if gamma not in (None, 1) or views not in (None, 1):
            raise InputError(f"{'gamma' if gamma not in (None, 1) else 'views'} applies to automatic segmentation "
                             "(mode='auto'), not to propagation")
        if zstack:
            raise InputError("mode='propagate' follows objects in 2D movies (t, y, x); use mode='auto' for 3D + time")
        graph, labels = propagate(load_model() if model is None else model, images, start, start_frame=start_frame)
        return _result(graph, labels, "propagate")
    if mode != "auto":
        raise InputError(f"unknown tracking mode {mode!r}; use 'auto' or 'propagate'")
    if linker not in ("auto", "overlap", "trackastra"):  # before segmenting, which may take long
        raise InputError(f"unknown linker {linker!r}; use 'auto', 'overlap' or 'trackastra'")
    if masks is None and images is None:
        raise InputError("automatic tracking needs images or masks")
    segments = masks is None
    if split_merged is None:
        split_merged = segments
    gamma = resolve_gamma(gamma, model, segmenter, zstack=zstack, on_disk=workdir is not None) if segments else 1.0
    if gamma == "auto" and len(images) < 2:
        gamma = 1.0  # one frame: nothing to be consistent with
    if segments:
        model = _load_default(model, segmenter)

    def scale_at(value: float) -> float:
        # the number "auto" (or the model's default) means at this gamma, estimated on the middle frame
        return _auto_scale(images, model, segmenter, zstack, scale, value)[1] if scale in ("auto", None) else scale

    if workdir is not None:
        return track_on_disk(images, masks, workdir, model=model, linker=linker, segmenter=segmenter, zstack=zstack,
                             split_merged=split_merged, scale=scale_at(gamma) if segments else 1.0, gamma=gamma,
                             views=views, **link_options)
    used_gamma = None
    if segments:
        def segment_at(value: float) -> np.ndarray:
            return segment_movie(images, model=model, segmenter=segmenter, zstack=zstack, scale=scale_at(value),
                                 border_objects=segmenter == "ais" and not zstack, gamma=value, views=views)

        masks, used_gamma, _ = most_consistent(segment_at) if gamma == "auto" else (segment_at(gamma), gamma, None)
    masks = check_masks(np.asarray(masks))  # in memory: lazy masks are read whole (see workdir)
    _check_shapes(images, masks)
    use_trackastra = linker == "trackastra" or (linker == "auto" and images is not None
                                                 and _trackastra_at_hand(trackastra_model))
    if use_trackastra:
        if images is None:
            raise InputError("the trackastra linker needs the images too")
        try:
            graph = link_trackastra(images, masks, model=trackastra_model)
            return _result(graph, masks, f"trackastra:{Path(str(trackastra_model)).name}", used_gamma)
        except DownloadError:
            if linker == "trackastra":
                raise
    if split_merged:
        masks = join_fragments(split_by_neighbours(masks), in_place=True)
    graph = link_overlap(masks, **link_options)
    if split_merged:
        graph, masks = split_late_divisions(graph, masks)
    return _result(graph, masks, "overlap", used_gamma)


def _auto_scale(images, model, segmenter: str, zstack: bool, scale: str | None, gamma: float = 1.0):
    """The model (loaded if needed) and the number that ``scale`` ("auto" or None) means for this movie."""
    from samzoo.segmentation.autoscale import resolve_scale

    if segmenter != "ais":
        return model, 1.0  # the classical baseline has no preferred object size
    model = _load_default(model, segmenter)
    # one frame read, even from a lazy movie
    frame = compress_intensities(np.asarray(images[len(images) // 2]), gamma)
    return model, resolve_scale(model, frame[len(frame) // 2] if zstack else frame, scale)


def _load_default(model, segmenter: str):
    """``model``, or samzoo's default model where AIS needs one and none was given."""
    if model is None and segmenter == "ais":
        from samzoo.models.load import load_model

        model = load_model()
    return model


def _result(graph: nx.DiGraph, masks: np.ndarray, linker: str, gamma: float | None = None) -> TrackingResult:
    relabelled_graph, relabelled, tracks = relabel_tracks(graph, masks)
    return TrackingResult(relabelled_graph, relabelled, tracks, linker, gamma)


def _check_shapes(images, masks) -> None:
    shape = None if images is None else tuple(images.shape if hasattr(images, "shape") else np.shape(images))
    if shape is not None and shape[:masks.ndim] != tuple(masks.shape):
        raise InputError(f"images {shape} and masks {tuple(masks.shape)} do not match")


def track_on_disk(images, masks, workdir: str | Path, *, model=None, linker: str = "overlap", segmenter: str = "ais",
                  zstack: bool = False, split_merged: bool | None = None, scale: float = 1.0, gamma: float = 1.0,
                  views: int | None = None, **link_options) -> TrackingResult:
    """Automatic tracking of a movie larger than memory: segment, link and relabel frame by frame.

    The same steps and results as :func:`track` with ``mode="auto"`` and the overlap linker,
    but no step holds more than a few frames: every frame is read from ``images`` (lazy: a
    dask array or xarray of a Zarr movie) and segmented whole into the Zarr label store
    ``workdir/labels.zarr`` (:func:`segment_to_zarr`); given ``masks`` (numpy, Zarr or dask)
    are linked as they are, or copied there frame by frame when ``split_merged`` is to cut them.
    :func:`split_by_neighbours`, :func:`link_overlap` and :func:`split_late_divisions` read the
    store frame by frame (and write the cut objects back into it), and the result's ``masks`` is a
    :class:`~samzoo.tracking.frames.RelabelledMasks` view of the store, relabelled to track ids
    when a frame is read (e.g. by :func:`samzoo.tracking.to_ctc`). Keep ``workdir`` until the
    result is written.

    Raises
    ------
    InputError
        ``linker="trackastra"`` (it needs the whole movie in memory); ``"auto"`` means the
        overlap linker here.
    """
    if linker == "trackastra":
        raise InputError("the trackastra linker needs the whole movie in memory; a movie tracked frame by frame "
                         "uses the overlap linker")
    if linker not in ("auto", "overlap"):
        raise InputError(f"unknown linker {linker!r}; use 'auto', 'overlap' or 'trackastra'")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if split_merged is None:
        split_merged = masks is None
    used_gamma = check_gamma(gamma) if masks is None else None
    if masks is None:
        if images is None:
            raise InputError("automatic tracking needs images or masks")
        masks = segment_to_zarr(images, workdir / "labels.zarr", model=model, segmenter=segmenter, zstack=zstack,
                                scale=scale, border_objects=segmenter == "ais" and not zstack, gamma=gamma,
                                views=views)
    else:
        masks = check_masks(masks)
        if split_merged:  # the cuts go into a copy, never into the caller's masks
            masks = _frames_to_zarr(workdir / "labels.zarr", tuple(masks.shape),
                                    (read_frame(masks, t) for t in range(masks.shape[0])))
    masks = check_masks(masks)
    _check_shapes(images, masks)
    if split_merged:
        join_fragments(split_by_neighbours(masks, in_place=True), in_place=True)
    graph = link_overlap(masks, **link_options)
    if split_merged:
        graph, masks = split_late_divisions(graph, masks, in_place=True)
    return _result(graph, masks, "overlap", used_gamma)
