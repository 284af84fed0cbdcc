"""Track one movie file and write its results (CTC, napari, geff, TrackMate, table) and lineage plot.

A lazy (Zarr) movie whose image and labels would need more than ``max_memory`` GiB is tracked
frame by frame (:func:`samzoo.tracking.track.track_on_disk`): its labels go into a Zarr store in a
working folder next to the output folder (removed at the end) and the CTC masks are written one
frame at a time, with the same result as in memory.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from samzoo.batch import IMAGE_SUFFIXES
from samzoo.errors import InputError, option
from samzoo.io import read_boxes_csv, read_image, read_points_csv
from samzoo.io.sequence import first_frame_number, read_movie
from samzoo.io.write import atomic_path
from samzoo.jobs.common import job_model

FORMATS = ("ctc", "napari", "geff", "trackmate", "table")
# the per-movie input options and the file types their folders hold in a batch
PER_MOVIE_INPUTS = {"masks": IMAGE_SUFFIXES, "prompts": (".csv",), "boxes": (".csv",),
                    "start_labels": IMAGE_SUFFIXES}


@dataclass(frozen=True)
class TrackSettings:
    """Everything besides the movie's own files that determines a result (small, picklable for dask)."""

    mode: str
    axes: str | None
    formats: tuple[str, ...]
    linker: str
    trackastra_model: str
    segmenter: str
    model: Any  # a name or file (None: samzoo's own model), or a loaded model
    max_distance: float | None
    start_frame: int
    link_masks: bool  # auto mode: link given masks instead of segmenting
    scale: float | str | None = None  # None: the model's default
    max_memory: float = 4.0  # GiB; a larger lazy (Zarr) movie is tracked frame by frame
    pixel_size: float | None = None  # trackmate calibration given by the caller
    frame_interval: float | None = None
    decoder: str | None = None  # micro-sam's AIS decoder file, for SAM / micro-sam model files
    table_format: str = "csv"  # the table format's file: table.csv or table.parquet
    gamma: float | str | None = None  # intensity compression before segmenting (auto mode, no masks; see track)
    views: int | None = None  # AIS test-time views (auto mode, no masks; a number once track_files decides)

    @property
    def needs_model(self) -> bool:
        return self.mode == "propagate" or (not self.link_masks and self.segmenter == "ais")


@dataclass(frozen=True)
class Movie:
    """One movie and the files that belong to it alone (absent options are None).

    A movie stored as one file per frame has ``frames`` (in time order) and its folder as ``source``.
    """

    source: Path
    frames: tuple[Path, ...] | None = None
    masks: Path | None = None
    prompts: Path | None = None
    boxes: Path | None = None
    start_labels: Path | None = None
    lineage_plot: Path | None = None


@dataclass
class MovieOutcome:
    """What tracking one movie gave (returned by batch workers: small, picklable)."""

    tracks: int
    divisions: int
    frames: int
    linker: str
    warnings: list[str] = field(default_factory=list)
    gamma: float | None = None  # the gamma its frames were segmented at (None: track did not segment them)


def parse_formats(formats: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """``"ctc,napari"`` or a sequence of names, checked against :data:`FORMATS`."""
    names = formats.split(",") if isinstance(formats, str) else list(formats)
    names = [f.strip().lower() for f in names if f.strip()]
    unknown = sorted(set(names) - set(FORMATS))
    if unknown or not names:
        raise InputError(f"unknown {option('format')} {', '.join(unknown) or formats!r}; "
                         f"choose from {', '.join(FORMATS)}")
    return tuple(names)


def _start(movie: Movie):
    """The objects to propagate: a label image or {id: Prompt}."""
    from samzoo.segmentation.predictor import Prompt

    if movie.start_labels:
        return np.asarray(read_image(movie.start_labels, axes="yx").values)
    points = read_points_csv(movie.prompts) if movie.prompts else {}
    boxes = read_boxes_csv(movie.boxes) if movie.boxes else {}
    if not points and not boxes:
        raise InputError(f"{movie.source.name}: {option('mode')} propagate found no objects in its "
                         f"{option('prompts')}/{option('boxes')}")
    empty = (np.zeros((0, 2)), np.zeros(0, dtype=int))
    return {i: Prompt(points=points.get(i, empty)[0], point_labels=points.get(i, empty)[1], box=boxes.get(i))
            for i in sorted(set(points) | set(boxes))}


def track_movie(settings: TrackSettings, movie: Movie, outdir: Path) -> MovieOutcome:
    """Track one movie, write its files into ``outdir`` (and its lineage plot).

    A lazy (Zarr) movie larger than ``settings.max_memory`` is tracked frame by frame (see the
    module docstring); napari and geff outputs come from the graph alone, so they cost no more.
    """
    from samzoo.tracking import track

    image = read_movie(movie.frames or movie.source, axes=settings.axes)
    warnings = []
    if image.attrs.get("assumed_axes"):
        warnings.append(f"{movie.source.name} does not name its axes; reading its 3 dimensions as "
                        f"{','.join(image.attrs['assumed_axes'])} (pass {option('axes')} to say otherwise)")
    if "t" not in image.dims:
        raise InputError(f"{movie.source} has axes {''.join(image.dims)}: tracking needs a t axis "
                         f"(pass {option('axes')}, e.g. tyx)")
    image = image.transpose("t", ..., "y", "x", *(["c"] if "c" in image.dims else []))
    masks = read_movie(movie.masks, axes=settings.axes).data if movie.masks else None
    if masks is not None and masks.shape != image.shape[:masks.ndim]:
        raise InputError(f"{option('masks')} {masks.shape} do not match the movie {image.shape}")
    out_of_core = _out_of_core(settings, image, masks)
    if out_of_core:
        _check_out_of_core(settings, image)
    model = job_model(settings.model, settings.decoder) if settings.needs_model else None
    options = {} if settings.max_distance is None else {"max_distance": settings.max_distance}
    if out_of_core:
        outdir.parent.mkdir(parents=True, exist_ok=True)
        # the label store lives next to the output folder (same disk, which holds the result too) until written
        with tempfile.TemporaryDirectory(prefix=f".{outdir.name}.work-", dir=outdir.parent) as work:
            result = track(image.data, masks, workdir=work, model=model, segmenter=settings.segmenter,
                           zstack="z" in image.dims, scale=settings.scale, gamma=settings.gamma, views=settings.views,
                           linker="overlap",
                           **options)
            return _write(settings, movie, outdir, result, image, warnings)
    images = np.asarray(image.values)
    masks = None if masks is None else np.asarray(masks)
    start = _start(movie) if settings.mode == "propagate" else None
    result = track(images, masks, mode=settings.mode, model=model, start=start, start_frame=settings.start_frame,
                   linker=settings.linker, trackastra_model=settings.trackastra_model, segmenter=settings.segmenter,
                   zstack="z" in image.dims, scale=settings.scale, gamma=settings.gamma, views=settings.views,
                   **options)
    return _write(settings, movie, outdir, result, image, warnings)


def _out_of_core(settings: TrackSettings, image, masks) -> bool:
    """Whether to track frame by frame: a lazy (Zarr) movie that needs more than max_memory in memory."""
    lazy = not isinstance(image.data, np.ndarray) or (masks is not None and not isinstance(masks, np.ndarray))
    labels = int(np.prod(image.shape[:4 if "z" in image.dims else 3])) * 4  # uint32 labels
    # the image, its labels and their relabelled copy, as the in-memory path holds them
    need = image.nbytes + 2 * labels
    return lazy and need > settings.max_memory * 2 ** 30


def _check_out_of_core(settings: TrackSettings, image) -> None:
    size = f"{image.nbytes / 2 ** 30:.2f} GiB"
    limit = f"{option('max_memory')} {settings.max_memory:g} GiB"
    if settings.mode == "propagate":
        raise InputError(f"{option('mode')} propagate needs the whole movie in memory; this movie ({size} plus labels) "
                         f"is more than {limit}: raise {option('max_memory')} or use {option('mode')} auto")
    if settings.gamma == "auto":
        raise InputError(f"{option('gamma')} auto segments the movie twice in memory; this movie ({size} plus labels) "
                         f"is more than {limit}: raise {option('max_memory')} or give {option('gamma')} a number "
                         "(1: intensities as they are)")
    if settings.linker == "trackastra":
        raise InputError(f"{option('linker')} trackastra needs the whole movie in memory; this movie ({size} plus "
                         f"labels) is more than {limit}: raise {option('max_memory')} or use {option('linker')} "
                         "overlap")


def _write(settings: TrackSettings, movie: Movie, outdir: Path, result, image, warnings: list[str]) -> MovieOutcome:
    """Write the result's files into ``outdir`` (and its lineage plot).

    CTC masks and the table's frames are numbered like the input's frames (``image``'s ``t``).
    """
    from samzoo.tracking import lineage_plot, to_ctc, to_geff, to_napari
    from samzoo.tracking.export import movie_calibration, to_trackmate, write_table

    first_frame = first_frame_number(image)
    outdir.mkdir(parents=True, exist_ok=True)
    if "ctc" in settings.formats:
        to_ctc(result.graph, result.masks, outdir, first_frame=first_frame)
    if "napari" in settings.formats:
        data, parents = to_napari(result.graph, result.masks)
        header = "track_id,t," + ",".join("zyx"[-(data.shape[1] - 2):]) if len(data) else "track_id,t,y,x"
        with atomic_path(outdir / "napari_tracks.csv") as tmp:
            np.savetxt(tmp, data, delimiter=",", header=header, comments="", fmt="%.6g")
        with atomic_path(outdir / "napari_graph.json") as tmp:
            tmp.write_text(json.dumps({str(k): v for k, v in parents.items()}))
    if "geff" in settings.formats:
        to_geff(result.graph, outdir / "tracks.geff", masks=result.masks)
    if "trackmate" in settings.formats:
        to_trackmate(result.graph, result.masks, outdir / "trackmate.xml", images=image.data,
                     calibration=movie_calibration(movie.frames[0] if movie.frames else movie.source,
                                                   result.masks.ndim - 1, pixel_size=settings.pixel_size,
                                                   frame_interval=settings.frame_interval),
                     image_path=None if movie.frames else movie.source)
    if "table" in settings.formats:
        write_table(result.graph, result.masks, outdir / f"table.{settings.table_format}", images=image.data,
                    first_frame=first_frame)
    parents, counts = np.unique(result.tracks[result.tracks[:, 3] > 0, 3], return_counts=True)
    n_div = int((counts >= 2).sum())  # a parent with one child is a bridged gap, not a division
    if movie.lineage_plot:
        lineage_plot(result.graph, movie.lineage_plot,
                     title=f"{movie.source.name}: {len(result.tracks)} tracks, {n_div} divisions ({result.linker})")
    return MovieOutcome(len(result.tracks), n_div, len(result.masks), result.linker, warnings, result.gamma)


def movie_job(settings: TrackSettings, movie: Movie, out: Path) -> MovieOutcome:
    """A work function for :func:`samzoo.batch.run_batch`: one movie of a batch, its folder written atomically.

    The whole folder appears at once: a folder that exists is a finished movie, which is what lets
    a rerun skip it. The lineage plot (outside the folder) is written before the rename, so a
    finished movie always has its plot.
    """
    with atomic_path(out, directory=True) as tmp:
        return track_movie(settings, movie, tmp)
