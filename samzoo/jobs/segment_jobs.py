"""Segment image files: one image, the frame files of a movie, a batch of files, or an image larger than memory.

:func:`segment_files` chooses the way from the inputs, as ``samzoo segment`` does:

- one image that fits in memory (TIFF, PNG, a Zarr that fits one block): labels (and an overlay PNG);
- the 2-D frame files of one movie (a folder or glob of frames) into one ``.tif``/``.zarr``: one
  ``t, y, x`` label movie;
- many images (several names, a folder or a glob): a batch on dask (:func:`samzoo.batch.run_batch`),
  one output per image in the output folder, resumable;
- an image larger than a block (a Zarr read lazily, or any image with ``block``): segmented block
  by block on dask and stitched into a Zarr (:mod:`samzoo.jobs.segment_large`), resumable.

Before any work, the options, the model and the output paths are checked. An image with nothing
to segment (every pixel NaN, or one value everywhere) is an error on its own and, in a batch, a
warning and empty labels; NaN and infinite pixels are background, with a warning.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import xarray as xr

from samzoo.api import plane_image, planes_of, segment
from samzoo.batch import JOB_RECORD, check_job_record, expand_inputs, output_paths, run_batch
from samzoo.errors import InputError, option
from samzoo.io import read_image, write_labels, write_overlay_png
from samzoo.io.image import pixel_summary
from samzoo.io.sequence import find_movies, read_frames
from samzoo.io.write import LABEL_SUFFIXES, check_writable, label_suffix
from samzoo.jobs.common import patterns_of, remove_outputs
from samzoo.jobs.segment_settings import SegmentResult, SegmentSettings, check_prompts_fit, check_segment_options
from samzoo.segmentation.checks import NO_OBJECTS_HINT, shows_structure


@dataclass
class ImageOutcome:
    """What segmenting one image file gave (returned by batch workers: small, picklable)."""

    objects: int
    planes: int
    scale: float
    empty_planes: list[int] = field(default_factory=list)  # structure shown, nothing found
    found_nothing: bool = False  # no object in the whole image
    blank: bool = False
    warnings: list[str] = field(default_factory=list)


def segment_files(inputs: str | os.PathLike | Sequence[str | os.PathLike], output: str | os.PathLike, *,
                  model: Any = None, mode: str = "ais", points: str | os.PathLike | None = None,
                  boxes: str | os.PathLike | None = None, axes: str | None = None, scale: float | str | None = None,
                  tile: int | None = None, halo: int | None = None, overlay: bool | str | os.PathLike = False,
                  cache: bool = True, merge_z: bool = True, min_z_extent: int = 2, format: str = "tif",
                  block: int | None = None, block_halo: int = 64, decoder: str | os.PathLike | None = None,
                  scheduler: Any = None, workers: int = 1, overwrite: bool = False,
                  progress: bool = False, gamma: float = 1.0, views: int | None = None) -> SegmentResult:
    """Segment image files into label files: one image, a movie's frames, a batch, or an image larger than memory.

    Parameters
    ----------
    inputs : path, glob pattern or sequence of them
        One image file (TIFF, PNG/JPEG, Zarr, OME-Zarr), or several names, folders and glob
        patterns: a batch. The 2-D frames of one movie (a folder or glob of ``t000.tif``...)
        written to one ``.tif``/``.zarr`` are one ``t, y, x`` label movie.
    output : path
        The label file (``.tif`` or ``.zarr``); for a batch, a folder with one
        ``<input stem>.<format>`` per input. Checked (its folder writable) before any work.
    model : str, path or SamzooModel, optional
        A registry name, nickname, samzoo ``.safetensors`` file, bioimage.io package, SAM
        checkpoint or micro-sam file, or a loaded model; default samzoo's own (not loaded for
        ``mode="classical"`` without prompts). With a remote ``scheduler``, give a name or file.
    mode : {"ais", "amg", "apg", "classical"}
        The automatic method, used without prompts.
    points, boxes : path, optional
        Prompt CSVs (``object_id,y,x,positive``; ``object_id,ymin,xmin,ymax,xmax``) for a 2D image.
    axes : str, optional
        Axes of the inputs, e.g. ``"tyx"`` (when the files do not say).
    scale : float, "auto" or None
        Segment at this many times the size, labels back on the input grid; ``"auto"``
        estimates it per image (once per job for blocks and windows); None: the model's
        default (see :func:`samzoo.segment`).
    gamma : float
        Compress each plane's intensities before segmenting (see :func:`samzoo.segment`), e.g.
        0.5 for dim objects next to bright ones; 1: as they are. Not for images segmented
        block by block (refused there).
    views : {1, 2, 4, 8} or None
        AIS only: decoder maps combined over this many turned and mirrored views (see
        :func:`samzoo.segment`); None: 2 for samzoo's own models, 1 for SAM-family models.
    tile, halo : int, optional
        Model tile size and overlap (default: the model's input size, a tile / 8).
    overlay : bool or path
        One image or movie: also write an overlay PNG of the (middle) plane, here, or with
        ``True`` next to the labels as ``<stem>_overlay.png``.
    cache : bool
        Read and write the embedding cache.
    merge_z : bool
        Volumes: join per-slice objects into 3D objects.
    min_z_extent : int
        Volumes: drop 3D objects on fewer slices.
    format : {"tif", "zarr"}
        The batch outputs' file type.
    block, block_halo : int
        Images whose planes are larger than ``block`` pixels are segmented block by block into
        a Zarr, blocks overlapping by ``block_halo``; default ``block``: 2048 for Zarr inputs,
        others segmented whole.
    decoder : path, optional
        micro-sam's AIS decoder file for a SAM / micro-sam ``model`` file.
    scheduler, workers
        Where batches and blocks run: see :func:`samzoo.batch.open_client`.
    overwrite : bool
        Recompute what a batch or block job finished earlier (otherwise a rerun resumes, and a
        rerun with other settings into the same output is refused).
    progress : bool
        Progress bars.

    Returns
    -------
    SegmentResult
        What was written, counts, and warnings (``result.warnings``: one line each), printed by nobody.

    Raises
    ------
    InputError
        Bad options, unreadable inputs, an input with nothing to segment (every pixel NaN or
        equal; in a batch that is a warning), other settings in a folder a job already used.
    OutputError
        An output that cannot be written (its folder is a file, read-only, ...), before any work.
    BatchError
        Some images or blocks of a batch failed; the others are kept and a rerun does the rest.

    Examples
    --------
    >>> import numpy as np, tifffile, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> image = np.zeros((64, 64), np.uint16); image[10:20, 10:20] = image[40:52, 30:44] = 1000
    >>> tifffile.imwrite(folder / "a.tif", image); tifffile.imwrite(folder / "b.tif", image.T)
    >>> result = segment_files(folder / "a.tif", folder / "a_labels.tif", mode="classical")
    >>> result.kind, result.objects
    ('image', 2)
    >>> batch = segment_files(str(folder / "?.tif"), folder / "labels", mode="classical", scheduler="synchronous")
    >>> batch.kind, batch.done, sorted(p.name for p in batch.outputs)
    ('batch', 2, ['a.tif', 'b.tif'])
    """
    patterns = patterns_of(inputs)
    settings = SegmentSettings(model, mode, axes, tile, halo, cache, merge_z, min_z_extent,
                               str(points) if points else None, str(boxes) if boxes else None, scale,
                               decoder=str(decoder) if decoder else None, gamma=gamma, views=views).absolute()
    found = expand_inputs(patterns)
    settings = check_segment_options(settings, block=block, block_halo=block_halo, workers=workers, fmt=format)
    single = len(patterns) == 1 and len(found) == 1 and Path(patterns[0]) == found[0]
    output = Path(output)
    batch = {"scheduler": scheduler, "workers": workers, "overwrite": overwrite, "progress": progress}
    frames = None if single else _frames_movie(patterns, output)
    if frames:
        return _segment_one(settings, frames, output, overlay, progress)
    if not single:
        return _segment_batch(settings, found, output, format, **batch)
    image = read_image(found[0], axes=settings.axes)
    lazy = not isinstance(image.data, np.ndarray)
    block = block or (2048 if lazy else None)
    if block and max(image.sizes["y"], image.sizes["x"]) > block:
        from samzoo.jobs.segment_large import segment_large

        if settings.gamma != 1:
            # compress_intensities normalises by the plane's percentiles, which one block does not know
            raise InputError(f"{option('gamma')} needs each plane in memory, but {found[0].name} is segmented "
                             f"block by block (planes over {block} px); compress the image first "
                             "(samzoo.io.compress_intensities) or segment it in memory")
        return segment_large(settings, found[0], image, output, block=block, block_halo=block_halo, **batch)
    return _segment_one(settings, found[0], output, overlay, progress, image=image)


def _frames_movie(patterns: list, output: Path) -> tuple[Path, ...] | None:
    """The frame files when the inputs are the 2-D frames of one movie and the output is one file, else None.

    To a folder, frames stay a batch (one label file per frame, resumable): per frame, the labels
    are the same as a movie's, and tracking the frames with the folder as masks reads them as one movie.
    """
    if output.suffix.lower() not in LABEL_SUFFIXES:
        return None
    sources = find_movies(patterns)
    return sources[0] if len(sources) == 1 and isinstance(sources[0], tuple) else None


def _segment_one(settings: SegmentSettings, source: Path | tuple[Path, ...], output: Path,
                 overlay: bool | str | os.PathLike, progress: bool, image: xr.DataArray | None = None) -> SegmentResult:
    """One image, or one movie of frame files, in memory."""
    label_suffix(output)
    check_writable(output)
    overlay_path = None
    if overlay:
        overlay_path = output.with_name(output.stem + "_overlay.png") if overlay is True else Path(overlay)
        check_writable(overlay_path)
    outcome = segment_image_file(settings, source, output, image=image, overlay=overlay_path, progress=progress)
    movie = isinstance(source, tuple)
    warnings = list(outcome.warnings)
    if outcome.empty_planes:
        empty, n = outcome.empty_planes, outcome.planes
        warnings.append(f"{source[0].parent if movie else source}: no object found in {len(empty)} of {n} plane(s) "
                        f"that clearly show structure (plane {', '.join(map(str, empty[:5]))}"
                        f"{', ...' if len(empty) > 5 else ''}); {NO_OBJECTS_HINT}")
    where = source[0].parent if movie else Path(source)
    return SegmentResult("movie" if movie else "image", output, settings.model_name, outputs=[output],
                         objects=outcome.objects, planes=outcome.planes, scale=outcome.scale, overlay=overlay_path,
                         source=where, empty=[where] if outcome.empty_planes else [], warnings=warnings)


def segment_image_file(settings: SegmentSettings, source: Path | tuple[Path, ...], out: Path, *,
                       image: xr.DataArray | None = None, overlay: Path | None = None, progress: bool = False,
                       in_batch: bool = False) -> ImageOutcome:
    """Segment one image file (or a movie's frame files) in memory and write its labels (and overlay).

    An image with nothing to segment is an :class:`InputError`, or, ``in_batch``, empty labels
    and a warning.
    """
    movie = isinstance(source, tuple)
    if image is None:
        image = read_frames(source, settings.axes) if movie else read_image(source, axes=settings.axes)
    name = Path(source[0].parent if movie else source)
    name = name.name if in_batch else str(name)
    summary = pixel_summary(image)
    if summary.blank and not in_batch:
        raise InputError(f"{name}: {summary.blank}: there is nothing to segment")
    prompts = settings.prompts()
    check_prompts_fit(prompts, image, name)
    labels = segment(image, settings.load_model(), mode=settings.mode, prompts=prompts,
                     scale=1.0 if summary.blank else settings.scale, merge_z=settings.merge_z,
                     min_z_extent=settings.min_z_extent, tile_size=settings.tile, halo=settings.halo,
                     cache=settings.cache, progress=progress, gamma=settings.gamma, views=settings.views)
    write_labels(labels, out)
    values = labels.values
    flat = values.reshape((-1,) + values.shape[-2:])
    planes = planes_of(image)
    if overlay is not None:
        middle = len(flat) // 2
        write_overlay_png(plane_image(planes, middle), flat[middle], overlay)
    unit = 3 if "z" in labels.dims else 2  # count 3D objects per volume, 2D objects per plane
    n = sum(len(np.unique(u)) - 1 for u in values.reshape((-1,) + values.shape[-unit:]))
    outcome = ImageOutcome(n, len(flat), float(labels.attrs["scale"]), blank=bool(summary.blank),
                           found_nothing=not values.any())
    if summary.blank:
        outcome.warnings.append(f"{name}: {summary.blank}: nothing to segment, its labels are empty")
    elif summary.missing:
        outcome.warnings.append(f"{name}: {summary.missing} of {summary.pixels} pixels are NaN or infinite; "
                                "they were segmented as background (label 0)")
    if settings.automatic and not summary.blank:
        outcome.empty_planes = [i for i in range(len(flat))
                                if not flat[i].any() and shows_structure(plane_image(planes, i))]
    return outcome


def _segment_batch(settings: SegmentSettings, inputs: list[Path], output: Path, fmt: str, *, scheduler: Any,
                   workers: int, overwrite: bool, progress: bool) -> SegmentResult:
    inputs = [p.absolute() for p in inputs]
    folder = output.absolute()
    if folder.suffix.lower() in (".tif", ".tiff") or folder.is_file():
        raise InputError(f"{len(inputs)} inputs need an output folder, not {folder}")
    outs = output_paths(inputs, folder, "." + fmt)
    check_writable(folder / JOB_RECORD)
    check_job_record(folder, settings.record(format=fmt), overwrite=overwrite)
    if overwrite:
        remove_outputs(outs)
    report = run_batch(inputs, partial(_batch_item, settings), outs, scheduler=scheduler, workers=workers,
                       progress=progress, desc="images", unit="image")
    done = [(source, report.results[out]) for source, out in zip(inputs, outs) if out in report.results]
    warnings = [w for _, outcome in done for w in outcome.warnings]
    # an image counts as empty when the model found nothing at all where some plane shows structure
    empty = [source for source, outcome in done if outcome.found_nothing and outcome.empty_planes]
    if empty:
        warnings.append(f"no object found in {len(empty)} image(s) that clearly show structure: "
                        f"{', '.join(p.name for p in empty)}; {NO_OBJECTS_HINT}")
    return SegmentResult("batch", folder, settings.model_name, outputs=outs, units=len(outs), done=len(report.done),
                         skipped=len(report.skipped), empty=empty,
                         blank=[source for source, outcome in done if outcome.blank], warnings=warnings)


def _batch_item(settings: SegmentSettings, source: Path, out: Path) -> ImageOutcome:
    return segment_image_file(settings, source, out, in_batch=True)
