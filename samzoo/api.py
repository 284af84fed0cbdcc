"""The high-level entry points for scripts: whole images and movies in, labels (and lineages) out.

``segment`` and ``track`` take numpy arrays, dask arrays or ``xarray.DataArray``s with named
dims (``t``, ``z``, ``c``, ``y``, ``x``); given a DataArray they return labels as a DataArray
with the same dims (less ``c``), coords and attributes (pixel sizes and the like travel with
them), given an array they return an array. The command line does the same per file.

Examples
--------
>>> import numpy as np, xarray as xr
>>> image = xr.DataArray(np.zeros((2, 64, 64), np.uint16), dims=("t", "y", "x"),
...                      coords={"t": [0.0, 30.0]}, attrs={"pixel_size_um": 0.65})
>>> labels = segment(image, mode="classical")
>>> labels.dims, labels.coords["t"].values.tolist(), labels.attrs["pixel_size_um"]
(('t', 'y', 'x'), [0.0, 30.0], 0.65)
"""

from __future__ import annotations

from typing import Mapping

import networkx as nx
import numpy as np
import xarray as xr

from samzoo.errors import InputError
from samzoo.io.image import as_dataarray
from samzoo.io.normalize import to_model_input

MODES = ("ais", "amg", "apg", "classical")
CLASSICAL_NAME = "classical baseline (no model)"  # what labels made without a model name as their model


def _model_of(model):
    from samzoo.models.load import load_model

    return model if hasattr(model, "sam") else load_model(model)


def segment_plane(model, plane: np.ndarray, *, mode: str = "ais", prompts: Mapping | None = None,
                  tile_size: int | None = None, halo: int | None = None, cache=True,
                  progress: bool = False, views: int = 1) -> np.ndarray:
    """Labels ``(H, W)`` of one 2D plane ``(H, W)`` or ``(H, W, C)``, at its native size.

    Parameters
    ----------
    model : SamzooModel or None
        Not needed (``None``) for ``mode="classical"`` without prompts.
    plane : ndarray (H, W) or (H, W, C)
    mode : {"ais", "amg", "apg", "classical"}
        Automatic method, used when no ``prompts`` are given.
    prompts : mapping of object id -> Prompt, optional
        Prompted objects instead of automatic segmentation.
    tile_size, halo, cache, progress
        See :func:`samzoo.segmentation.embeddings.compute_embeddings`.
    views : {1, 2, 4, 8}
        AIS only: decoder maps combined over this many views (:func:`samzoo.segment_ais`).
    """
    if mode not in MODES:
        raise InputError(f"unknown mode {mode!r}; known: {', '.join(MODES)}")
    if prompts is None and not to_model_input(plane).any():
        # a constant plane (after ignoring NaN/inf) holds no objects; an automatic method, above
        # all a young model, could still hallucinate some from the blank input
        return np.zeros(plane.shape[:2], dtype=np.int32)
    if mode == "classical" and prompts is None:
        from samzoo.segmentation.classical import classical_baseline

        gray = plane.astype(np.float32).mean(-1) if plane.ndim == 3 else plane
        return classical_baseline(gray)
    from samzoo.segmentation.ais import segment_ais
    from samzoo.segmentation.automatic import segment_amg, segment_apg
    from samzoo.segmentation.embeddings import compute_embeddings
    from samzoo.segmentation.predictor import paint_labels, predict

    tile = tile_size or model.input_size
    if halo is not None and 2 * halo >= min(tile, model.input_size):
        raise InputError(f"halo {halo} is too large for tiles of {min(tile, model.input_size)} pixels "
                         "(it must be less than half the tile)")
    embeddings = compute_embeddings(model, plane, tile_size=tile_size, halo=halo, cache=cache, progress=progress)
    if prompts is not None:
        return paint_labels(predict(model, embeddings, prompts), embeddings.shape)
    if mode == "ais":
        return segment_ais(model, plane, embeddings=embeddings, tile_size=tile_size, halo=halo, views=views)
    return {"amg": segment_amg, "apg": segment_apg}[mode](model, plane, embeddings=embeddings)


def segment_plane_at(model, plane: np.ndarray, scale: float = 1.0, *, prompts: Mapping | None = None,
                     gamma: float = 1.0, **options) -> np.ndarray:
    """Labels ``(H, W)`` of one 2D plane segmented at ``scale`` times its size, on its own grid.

    NaN and infinite pixels (in any channel) are background (label 0): no object claims a pixel
    that holds no measurement. ``gamma`` other than 1: the plane's intensities are compressed
    first (:func:`samzoo.io.compress_intensities`). ``options`` are those of :func:`segment_plane`.
    """
    from samzoo.io.normalize import compress_intensities
    from samzoo.segmentation.rescale import segment_rescaled

    def native(image: np.ndarray, given: Mapping | None = None) -> np.ndarray:
        return segment_plane(model, image, prompts=given, **options)

    labels = segment_rescaled(native, compress_intensities(plane, gamma), scale, prompts=prompts)
    if plane.dtype.kind == "f":
        missing = ~np.isfinite(plane)
        missing = missing.any(-1) if missing.ndim == 3 else missing
        if missing.any():
            labels = np.where(missing, 0, labels).astype(labels.dtype, copy=False)
    return labels


def planes_of(array: xr.DataArray) -> xr.DataArray:
    """The 2D planes of an image, one per ``t``/``z`` position, along a new ``plane`` dim (first)."""
    planes = [d for d in array.dims if d in ("t", "z")]
    return array.stack(plane=planes).transpose("plane", ...) if planes else array.expand_dims(plane=[0])


def plane_image(planes: xr.DataArray, i: int) -> np.ndarray:
    """Plane ``i`` of :func:`planes_of` as ``(H, W)`` or ``(H, W, C)``."""
    return np.asarray(planes.isel(plane=i).transpose("y", "x", ...).values)


def segment(image, model=None, *, mode: str = "ais", prompts: Mapping | None = None, axes: str | None = None,
            scale: float | str | None = None, merge_z: bool = True, min_z_extent: int = 1, tile_size: int | None = None,
            halo: int | None = None, cache=True, progress: bool = False,
            gamma: float = 1.0, views: int | None = None) -> np.ndarray | xr.DataArray:
    """Segment an image, a volume or a movie: every 2D plane, then 3D objects joined across z.

    Parameters
    ----------
    image : ndarray, dask array or xarray.DataArray
        Named dims (a DataArray's own, or ``axes``, or the rule of :func:`samzoo.read_image`).
    model : SamzooModel, str or path, optional
        Default: samzoo's own model (not loaded for ``mode="classical"``).
    mode : {"ais", "amg", "apg", "classical"}
    prompts : mapping of object id -> :class:`samzoo.Prompt`, optional
        For a 2D image only.
    axes : str, optional
        E.g. ``"tyx"`` for an array whose dims cannot be guessed.
    scale : float, "auto" or None
        Segment at this many times the size (small objects: 2), labels back on the input grid.
        None (default): the model's default, ``"auto"`` for models trained for it (the shipped
        model since 2026-12), else 1 (:func:`samzoo.segmentation.autoscale.resolve_scale`).
        ``"auto"``: the scale that brings the objects to the size the model knows, estimated
        once on the middle plane and used for all (:func:`samzoo.segmentation.autoscale.estimate_scale`);
        the chosen number is in the result's ``attrs["scale"]`` for a DataArray. At any scale,
        NaN and infinite pixels are background (label 0).
    merge_z : bool
        Join per-slice objects into 3D objects (:func:`samzoo.segmentation.volume.merge_slices`).
    min_z_extent : int
        With ``merge_z``: 3D objects on fewer slices are removed.
    tile_size, halo, cache
        See :func:`samzoo.segmentation.embeddings.compute_embeddings`.
    progress : bool
        A progress bar over planes (over tiles for a single plane).
    gamma : float
        Compress each plane's intensities before segmenting (:func:`samzoo.io.compress_intensities`;
        the scale is estimated on the compressed plane too), e.g. 0.5 where dim objects lie next
        to bright ones; 1 (default): as they are. From 0.1 to 10.
    views : {1, 2, 4, 8} or None
        AIS only: test-time augmentation, the decoder's maps combined over this many turned and
        mirrored views of each plane (:func:`samzoo.segmentation.ais.multi_view_maps`; each
        view is one more encoder pass). None (default): 2 for samzoo's own models, 1 for
        SAM-family models (:func:`samzoo.segmentation.views.resolve_views`).

    Returns
    -------
    ndarray or xarray.DataArray
        uint32 labels, the image's dims less ``c``; a DataArray (with the image's coords and
        attributes, plus ``attrs["model"]``) when ``image`` is one.
    """
    from tqdm import tqdm

    from samzoo.io.normalize import check_gamma, compress_intensities
    from samzoo.segmentation.autoscale import resolve_scale
    from samzoo.segmentation.views import resolve_views

    gamma = check_gamma(gamma)
    array = as_dataarray(image, axes)
    if prompts is not None and any(d in array.dims for d in ("t", "z")):
        raise InputError(f"prompts need a 2D image, but it has axes {''.join(array.dims)}; select one plane first")
    needs_model = mode != "classical" or prompts is not None
    model = _model_of(model) if needs_model else None
    views = resolve_views(model, views, mode if prompts is None else "prompts")
    dims = tuple(d for d in array.dims if d != "c")
    labels = np.zeros([array.sizes[d] for d in dims], dtype=np.uint32)
    flat = labels.reshape((-1,) + labels.shape[-2:])  # one 2D plane per t/z position (a view)
    planes = planes_of(array)
    one = len(flat) == 1

    # one scale for every plane: a movie's or a volume's objects keep their size from plane to plane
    middle = compress_intensities(plane_image(planes, len(flat) // 2), gamma)
    scale = resolve_scale(model, middle, scale, prompts=prompts)
    for i in tqdm(range(len(flat)), desc="planes", disable=not progress or one):
        flat[i] = segment_plane_at(model, plane_image(planes, i), scale, prompts=prompts, mode=mode, gamma=gamma,
                                   tile_size=tile_size, halo=halo, cache=cache, progress=progress and one,
                                   views=views)
    if "z" in dims and merge_z:
        from samzoo.segmentation.volume import merge_slices

        volumes = labels.reshape((-1,) + labels.shape[-3:])  # one (z, y, x) volume per time point
        for v in range(len(volumes)):
            volumes[v] = merge_slices(volumes[v], min_z_extent=min_z_extent)
    if not isinstance(image, xr.DataArray):
        return labels
    coords = {k: v for k, v in array.coords.items() if set(v.dims) <= set(dims)}
    name = model.name if model is not None else CLASSICAL_NAME
    return xr.DataArray(labels, dims=dims, coords=coords, attrs={**array.attrs, "model": name, "scale": scale})


def track(movie, model=None, *, masks=None, axes: str | None = None,
          **options) -> tuple[np.ndarray | xr.DataArray, nx.DiGraph]:
    """Segment (unless ``masks`` are given) and track a movie; labels and the lineage graph.

    Parameters
    ----------
    movie : ndarray, dask array or xarray.DataArray
        A movie ``t, [z,] y, x`` (a 3D array without named dims is read as ``t, y, x``).
    model : SamzooModel, str or path, optional
        Default: samzoo's own model (not loaded when ``masks`` are given).
    masks : ndarray or DataArray, optional
        Segmentations to link instead of segmenting.
    axes : str, optional
    **options
        Passed to :func:`samzoo.tracking.track` (``linker``, ``mode``, ``scale``, ...).

    Returns
    -------
    labels : ndarray or xarray.DataArray
        One label per track segment (the CTC convention), like ``movie`` (less ``c``).
    graph : networkx.DiGraph
        The lineage: nodes are objects per frame, edges links and divisions; see
        :func:`samzoo.tracking.track`.

    Examples
    --------
    >>> from samzoo import tracking
    >>> sim = tracking.simulate_movie(seed=0, n_frames=3)
    >>> labels, graph = track(xr.DataArray(sim.images, dims=("t", "y", "x")), masks=sim.masks)
    >>> labels.dims, graph.number_of_nodes() > 0
    (('t', 'y', 'x'), True)
    """
    from samzoo.tracking import track as track_arrays

    if axes is None and not isinstance(movie, xr.DataArray) and np.ndim(movie) == 3:
        axes = "tyx"  # for tracking, a 3D array is a movie
    array = as_dataarray(movie, axes)
    if "t" not in array.dims:
        raise InputError(f"tracking needs a movie with a t axis, got dims {''.join(array.dims)}")
    if "c" in array.dims:
        from samzoo.io.normalize import colour_to_grey

        # the tracker segments grey frames; colour is converted as samzoo's models see it
        grey = np.stack([colour_to_grey(np.asarray(frame.transpose(..., "c").values)) for frame in array.transpose("t", ...)])
        array = xr.DataArray(grey, dims=tuple(d for d in array.dims if d != "c"), attrs=array.attrs)
    if masks is not None:
        masks = np.asarray(masks.values if isinstance(masks, xr.DataArray) else masks)
    elif model is not None:
        model = _model_of(model)
    options.setdefault("scale", None)  # the model's default, as samzoo.segment
    result = track_arrays(np.asarray(array.values), masks, model=model, zstack="z" in array.dims, **options)
    labels = np.asarray(result.masks)
    if not isinstance(movie, xr.DataArray):
        return labels, result.graph
    coords = {k: v for k, v in array.coords.items() if set(v.dims) <= set(array.dims)}
    return xr.DataArray(labels, dims=array.dims, coords=coords, attrs=dict(array.attrs)), result.graph
