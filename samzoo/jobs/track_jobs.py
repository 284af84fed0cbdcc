"""Track movie files: one movie into a folder, or many movies as a batch on dask, one folder each.

One movie writes its results directly into the output folder (``mask000.tif``... as the CTC format
wants). Several movies (names, a folder or a glob) are a batch (:func:`samzoo.batch.run_batch`):
each movie gets its own folder ``<output>/<movie stem>/`` with the same files, written atomically
(a temporary sibling folder, then a rename), and a rerun skips the movies already done. Options
that name one file per movie (``masks``, ``prompts``, ``boxes``, ``start_labels``,
``lineage_plot``) then name a folder, matched by movie stem.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Sequence

from samzoo.batch import JOB_RECORD, check_job_record, output_paths, run_batch
from samzoo.errors import InputError, option
from samzoo.io.normalize import check_movie_gamma
from samzoo.io.sequence import find_movies
from samzoo.io.write import check_writable
from samzoo.jobs.common import absolute, check_scale, check_workers, job_model, patterns_of, remove_outputs
from samzoo.jobs.track_movie import PER_MOVIE_INPUTS, Movie, TrackSettings, movie_job, parse_formats, track_movie
from samzoo.segmentation.views import resolve_views


@dataclass
class TrackResult:
    """What :func:`samzoo.track_files` did.

    Attributes
    ----------
    kind : str
        ``"movie"`` (one movie, its files directly in ``output``) or ``"batch"``.
    output : Path
        The output folder.
    formats : tuple of str
        The formats written for each movie.
    outputs : list of Path
        The folder of each movie's files.
    units, done, skipped : int
        Movies; tracked by this call; finished by an earlier call and kept.
    tracks, divisions, frames : int or None
        Track segments, divisions and frames of one movie (None for a batch).
    linker : str or None
        The linker used for one movie (``"overlap"``, ``"trackastra"``, ``"propagate"``).
    gamma : float or None
        The intensity gamma one movie was segmented at (None where track did not segment it).
    lineage_plot : Path or None
        One movie's lineage-tree PNG, or a batch's folder of them.
    warnings : list of str
        One line each, e.g. a movie whose file does not name its axes.
    """

    kind: str
    output: Path
    formats: tuple[str, ...]
    outputs: list[Path] = field(default_factory=list)
    units: int = 1
    done: int = 1
    skipped: int = 0
    tracks: int | None = None
    divisions: int | None = None
    frames: int | None = None
    linker: str | None = None
    lineage_plot: Path | None = None
    warnings: list[str] = field(default_factory=list)
    gamma: float | None = None


def track_files(inputs: str | os.PathLike | Sequence[str | os.PathLike], output: str | os.PathLike, *,
                mode: str = "auto", masks: str | os.PathLike | None = None, prompts: str | os.PathLike | None = None,
                boxes: str | os.PathLike | None = None, start_labels: str | os.PathLike | None = None,
                start_frame: int = 0, format: str | Sequence[str] = "ctc", table_format: str = "csv",
                axes: str | None = None, model: Any = None,
                decoder: str | os.PathLike | None = None, segmenter: str = "ais", scale: float | str | None = None,
                gamma: float | str | None = None, views: int | None = None, linker: str = "auto",
                trackastra_model: str = "general_2d",
                max_distance: float | None = None,
                max_memory: float = 4.0, pixel_size: float | None = None, frame_interval: float | None = None,
                lineage_plot: str | os.PathLike | None = None, scheduler: Any = None, workers: int = 1,
                overwrite: bool = False, progress: bool = False) -> TrackResult:
    """Track the objects of movie files and write tracks (CTC, napari, geff, TrackMate, table) and lineage plots.

    Parameters
    ----------
    inputs : path, glob pattern or sequence of them
        A movie (TIFF or Zarr with a t axis; 3-D without axes metadata is ``t, y, x``), a folder
        or glob of 2-D frames (one movie), or several movies: a batch.
    output : path
        The output folder (checked writable before any work); a batch writes one folder per
        movie into it, ``<movie stem>/``.
    mode : {"auto", "propagate"}
        ``auto`` segments every frame (or takes ``masks``) and links the objects; ``propagate``
        follows the objects given by ``prompts``/``boxes``/``start_labels`` in ``start_frame``.
    masks, prompts, boxes, start_labels : path, optional
        A label movie to link; CSVs of points / boxes; a label image of the objects to follow.
        For a batch: folders with one ``<movie stem>.tif``/``.csv`` per movie.
    start_frame : int
        Propagation: the frame of the prompts.
    format : str or sequence of str
        ``"ctc"``, ``"napari"``, ``"geff"``, ``"trackmate"``, ``"table"``, comma-separated or a list.
    table_format : {"csv", "parquet"}
        The ``table`` format's file: ``table.csv``, or ``table.parquet`` (typed columns; needs pyarrow).
    axes : str, optional
        Axes of the movies (and masks) when the files do not say, e.g. ``"tzyx"``.
    model, decoder
        The samzoo model for segmentation and propagation, as for :func:`samzoo.segment_files`.
    segmenter : {"ais", "classical"}
        Auto mode without masks: samzoo's AIS or the classical baseline.
    scale : float, "auto" or None
        Auto mode without masks: segment frames resized by this factor; ``"auto"`` estimates it
        once on the middle frame; None: the model's default (see :func:`samzoo.segment`).
    gamma : float, "auto" or None
        Auto mode without masks: compress each frame's intensities before segmenting, e.g. 0.5
        for movies of nuclei of very different brightness; ``"auto"``: segment at 1 and 0.5 and
        keep the segmentation that is steadier from frame to frame (twice the segmentation
        time); None: ``"auto"`` for samzoo's own models with AIS on 2D movies held in memory, 1
        otherwise (:func:`samzoo.tracking.track`). Like a scale other than 1, a value other than
        1 is refused where track does not segment the frames itself.
    views : {1, 2, 4, 8} or None
        Auto mode with AIS, without masks: each frame's AIS maps combined over this many turned
        and mirrored views (see :func:`samzoo.tracking.track`); None: 2 for samzoo's own models,
        1 for SAM-family models. Refused where track does not segment the frames with AIS.
    linker : {"auto", "overlap", "trackastra"}
        ``auto``: trackastra if its model is cached or a mirror is set, else overlap.
    trackastra_model : str
        A trackastra model name or local folder.
    max_distance : float, optional
        Overlap linker: the largest move per frame in pixels.
    max_memory : float
        GiB: a Zarr movie whose image and labels would need more is tracked frame by frame
        (overlap linker, auto mode); 0: every Zarr movie.
    pixel_size, frame_interval : float, optional
        TrackMate calibration (µm, s); default the TIFF's own, else pixels and frames.
    lineage_plot : path, optional
        Also write a lineage-tree PNG here (a batch: a folder, ``<movie stem>.png`` each).
    scheduler, workers
        Where a batch runs: see :func:`samzoo.batch.open_client`.
    overwrite : bool
        Recompute movies a batch finished earlier.
    progress : bool
        A progress bar over the movies of a batch.

    Returns
    -------
    TrackResult
        What was written, counts and warnings, printed by nobody.

    Raises
    ------
    InputError
        Bad options or movies; other settings in a folder a batch already used.
    OutputError
        An output folder that cannot be written, before any work.
    BatchError
        Some movies of a batch failed; the others are kept and a rerun does the rest.

    Examples
    --------
    >>> import tempfile, pathlib, tifffile
    >>> from samzoo.tracking import simulate_movie
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> sim = simulate_movie(n_frames=5, seed=0)
    >>> tifffile.imwrite(folder / "movie.tif", sim.images, photometric="minisblack")
    >>> result = track_files(folder / "movie.tif", folder / "tracks", axes="tyx", segmenter="classical",
    ...                      linker="overlap", format="ctc,table")
    >>> result.kind, result.frames, (folder / "tracks" / "res_track.txt").is_file(), result.tracks > 0
    ('movie', 5, True, True)
    """
    formats = parse_formats(format)
    per_movie = {"masks": masks, "prompts": prompts, "boxes": boxes, "start_labels": start_labels,
                 "lineage_plot": lineage_plot}
    per_movie = {name: str(value) for name, value in per_movie.items() if value}
    scale, gamma = _check_options(mode, per_movie, max_memory, workers, pixel_size, frame_interval, scale, gamma,
                                  views)
    _check_table_format(table_format, formats)
    settings = TrackSettings(mode, axes, formats, linker, absolute(trackastra_model), segmenter, absolute(model),
                             max_distance, start_frame, link_masks=bool(masks), scale=scale, max_memory=max_memory,
                             pixel_size=pixel_size, frame_interval=frame_interval, decoder=absolute(decoder),
                             table_format=table_format, gamma=gamma)
    if settings.needs_model and settings.mode == "auto":  # AIS segments the frames: decide the views now
        settings = replace(settings, views=resolve_views(job_model(settings.model, settings.decoder), views))
    else:  # a number of views is refused for the classical segmenter; none apply to given masks or propagation
        settings = replace(settings, views=resolve_views(None, views, settings.segmenter))
    patterns = patterns_of(inputs)
    sources = find_movies(patterns)  # the frames of a folder or pattern are one movie
    frames = isinstance(sources[0], tuple)
    single = len(sources) == 1 and (frames or (len(patterns) == 1 and Path(patterns[0]) == sources[0]))
    if not single:
        batch = {"scheduler": scheduler, "workers": workers, "overwrite": overwrite, "progress": progress}
        return _track_batch(settings, sources, Path(output), per_movie, **batch)
    movie = Movie(sources[0][0].parent if frames else sources[0], sources[0] if frames else None,
                  **{name: Path(value) for name, value in per_movie.items()})
    outdir = Path(output)
    check_writable(outdir, folder=True)
    if movie.lineage_plot:
        check_writable(movie.lineage_plot)
    outcome = track_movie(settings, movie, outdir)
    return TrackResult("movie", outdir, formats, outputs=[outdir], tracks=outcome.tracks, divisions=outcome.divisions,
                       frames=outcome.frames, linker=outcome.linker, lineage_plot=movie.lineage_plot,
                       warnings=outcome.warnings, gamma=outcome.gamma)


def _check_options(mode: str, per_movie: dict, max_memory: float, workers: int, pixel_size: float | None,
                   frame_interval: float | None, scale: float | str | None,
                   gamma: float | str | None = None,
                   views: int | None = None) -> tuple[float | str | None, float | str | None]:
    """Options that are accepted by type but make no sense, as one clear message each; the checked scale and gamma."""
    if mode not in ("auto", "propagate"):
        raise InputError(f"unknown {option('mode')} {mode!r}; use auto or propagate")
    if mode == "propagate" and not {"prompts", "boxes", "start_labels"} & set(per_movie):
        raise InputError(f"{option('mode')} propagate needs {option('prompts')}, {option('boxes')} or "
                         f"{option('start_labels')}")
    if max_memory < 0:
        raise InputError(f"{option('max_memory')} must be 0 or more GiB, got {max_memory}")
    check_workers(workers)
    for name, value in (("pixel_size", pixel_size), ("frame_interval", frame_interval)):
        if value is not None and not value > 0:
            raise InputError(f"{option(name)} must be positive, got {value}")
    scale, gamma = check_scale(scale), check_movie_gamma(gamma)
    segments_itself = mode == "auto" and "masks" not in per_movie
    # both change only how track segments the frames; given where it does not, they would be ignored
    neutral_values = (("scale", scale, (1, "auto", None)), ("gamma", gamma, (1, None)), ("views", views, (1, None)))
    for name, value, neutral in neutral_values:
        if value not in neutral and not segments_itself:
            raise InputError(f"{option(name)} applies when track segments the frames itself "
                             f"({option('mode')} auto without {option('masks')})")
    return scale, gamma


def _check_table_format(table_format: str, formats: tuple[str, ...]) -> None:
    """A table format that exists, asked for with the table, and can be written: checked before any tracking."""
    from samzoo.tracking.export import TABLE_FORMATS, require_parquet

    if table_format not in TABLE_FORMATS:
        raise InputError(f"unknown {option('table_format')} {table_format!r}; use {' or '.join(TABLE_FORMATS)}")
    if table_format != "csv" and "table" not in formats:
        raise InputError(f"{option('table_format')} {table_format} applies to {option('format')} table, "
                         f"which is not among {','.join(formats)}")
    if table_format == "parquet":
        require_parquet()  # not after tracking a whole batch


def _per_movie_files(name: str, folder: Path, inputs: list[Path], suffixes: tuple[str, ...]) -> list[Path]:
    """The file of each movie in ``folder``: the one named like the movie with one of ``suffixes``."""
    flag = option(name)
    if not folder.is_dir() or folder.suffix.lower() == ".zarr":
        raise InputError(f"with {len(inputs)} movies, {flag} must be a folder holding one file per movie, "
                         f"named <movie stem>{suffixes[0]}; {folder} is not a folder")
    by_stem: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in suffixes and not path.name.startswith("."):
            by_stem.setdefault(path.stem, []).append(path.absolute())
    found, problems = [], []
    for source in inputs:
        matches = by_stem.get(source.stem, [])
        if len(matches) != 1:
            problems.append(f"{source.stem} ({'none' if not matches else ', '.join(p.name for p in matches)})")
        elif matches[0].resolve() == source.resolve():
            raise InputError(f"{flag} {folder} is the movies' own folder: {source.name} would be its own {flag}")
        else:
            found.append(matches[0])
    if problems:
        raise InputError(f"{flag} {folder} needs exactly one {'/'.join(suffixes)} file named after each movie; "
                         f"not so for: {', '.join(problems[:5])}{' ...' if len(problems) > 5 else ''}")
    return found


def _movies(inputs: list[Path], per_movie: dict) -> list[Movie]:
    """Each movie of a batch with its own files, matched by stem in the folders the options name."""
    files: dict[str, list[Path]] = {}
    for name, suffixes in PER_MOVIE_INPUTS.items():
        if name in per_movie:
            files[name] = _per_movie_files(name, Path(per_movie[name]), inputs, suffixes)
    if "lineage_plot" in per_movie:
        plots = Path(per_movie["lineage_plot"]).absolute()
        if plots.is_file() or plots.suffix.lower() == ".png":
            raise InputError(f"with {len(inputs)} movies, {option('lineage_plot')} must be a folder (one "
                             f"<movie stem>.png per movie), not {plots.name}")
        check_writable(plots, folder=True)
        files["lineage_plot"] = [plots / (source.stem + ".png") for source in inputs]
    return [Movie(source, **{name: paths[i] for name, paths in files.items()}) for i, source in enumerate(inputs)]


def _record(settings: TrackSettings, per_movie: dict) -> dict:
    """The job record: the settings, the per-movie folders, and the weights hash of the model used."""
    record = asdict(replace(settings, model=None))
    record["model"] = settings.model if isinstance(settings.model, (str, type(None))) else settings.model.name
    del record["max_memory"]  # in memory or frame by frame, the results are the same
    for key in ("pixel_size", "frame_interval"):  # unset: records of earlier versions stay valid
        if record[key] is None:
            del record[key]
    if record["table_format"] == "csv":  # the default: records of earlier versions stay valid
        del record["table_format"]
    if record["views"] == 1:  # as before views existed
        del record["views"]
    for name in (*PER_MOVIE_INPUTS, "lineage_plot"):
        record[name] = absolute(per_movie.get(name))
    if settings.needs_model:
        # a retrained model under the same name differs
        record["weights_hash"] = job_model(settings.model, settings.decoder).weights_hash
    return record


def _track_batch(settings: TrackSettings, sources: list, output: Path, per_movie: dict, *, scheduler: Any,
                 workers: int, overwrite: bool, progress: bool) -> TrackResult:
    # a movie stored as frames is named after their folder
    inputs = [(s[0].parent if isinstance(s, tuple) else s).absolute() for s in sources]
    folder = output.absolute()
    if folder.is_file():
        raise InputError(f"{len(inputs)} movies need an output folder, not the file {folder}")
    outs = output_paths(inputs, folder, "")  # <output>/<movie stem>/; equal stems are refused
    movies = [replace(movie, frames=tuple(p.absolute() for p in source)) if isinstance(source, tuple) else movie
              for movie, source in zip(_movies(inputs, per_movie), sources)]
    check_writable(folder / JOB_RECORD)
    # loads the model once here, before any work starts: an unknown model fails in one line
    check_job_record(folder, _record(settings, per_movie), overwrite=overwrite)
    if overwrite:
        remove_outputs(outs)
    report = run_batch(movies, partial(movie_job, settings), outs, scheduler=scheduler, workers=workers,
                       progress=progress, desc="movies", unit="movie")
    warnings = [w for out in outs if out in report.results for w in report.results[out].warnings]
    plots = Path(per_movie["lineage_plot"]).absolute() if "lineage_plot" in per_movie else None
    return TrackResult("batch", folder, settings.formats, outputs=outs, units=len(outs), done=len(report.done),
                       skipped=len(report.skipped), lineage_plot=plots, warnings=warnings)
