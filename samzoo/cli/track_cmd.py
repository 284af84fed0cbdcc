"""``samzoo track``: follow objects through movies and write tracks (CTC, napari, geff) and lineage plots.

One movie writes its results directly into OUTDIR (``mask000.tif``... as the CTC format wants).
Several movies (names, a folder or a glob) are a batch on dask (:func:`samzoo.batch.run_batch`):
each movie gets its own folder ``OUTDIR/<movie stem>/`` with the same files, written atomically
(a temporary sibling folder, then a rename), and a rerun skips the movies already done.
Options that name one file per movie (``--masks``, ``--prompts``, ``--boxes``,
``--start-labels``, ``--lineage-plot``) then name a folder, matched by movie stem.

A Zarr movie (read lazily) whose image and labels would need more than ``--max-memory`` GiB is
tracked frame by frame (:func:`samzoo.tracking.track.track_on_disk`): its labels go into a Zarr
store in a working folder next to OUTDIR (removed at the end) and the CTC masks are written one
frame at a time, with the same result as in memory.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass, replace
from functools import lru_cache, partial
from pathlib import Path

import numpy as np

from samzoo.batch import IMAGE_SUFFIXES, check_job_record, output_paths, run_batch
from samzoo.errors import InputError
from samzoo.io import read_boxes_csv, read_image, read_points_csv
from samzoo.io.sequence import find_movies, first_frame_number, read_movie
from samzoo.io.write import atomic_path
from samzoo.segmentation.autoscale import parse_scale

FORMATS = ("ctc", "napari", "geff", "trackmate", "table")
# the per-movie input options and the file types their folders hold in a batch
PER_MOVIE_INPUTS = {"masks": IMAGE_SUFFIXES, "prompts": (".csv",), "boxes": (".csv",),
                    "start_labels": IMAGE_SUFFIXES}


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "track", help="track objects through movies (automatic or by propagating prompts)",
        description="Track the objects of a movie INPUT (axes t[z]yx) and write the result into OUTDIR. "
                    "--mode auto segments every frame (or takes --masks) and links the objects; --mode propagate "
                    "follows the objects given by --prompts/--boxes/--start-labels in --start-frame with SAM "
                    "prompts. Formats: ctc (OUTDIR/mask000.tif... and OUTDIR/res_track.txt), napari "
                    "(OUTDIR/napari_tracks.csv with track_id,t,[z,]y,x and OUTDIR/napari_graph.json), geff "
                    "(OUTDIR/tracks.geff), trackmate (OUTDIR/trackmate.xml, for Fiji's TrackMate; calibrated by "
                    "--pixel-size/--frame-interval or the TIFF's own calibration), table (OUTDIR/table.csv: "
                    "track_id,frame,[centroid_z,]centroid_y,centroid_x,area,mean_intensity,parent_track_id). "
                    "A folder or glob of single 2-D frames (a CTC sequence: t000.tif, t001.tif...) is one movie, in "
                    "natural order, and the CTC masks are numbered like its frames; a 3-D image without axes metadata "
                    "is read as t,y,x. Several movies (names, a folder or a glob) are a batch on dask "
                    "(a local cluster, or --scheduler): each gets the same files in OUTDIR/<movie stem>/, "
                    "a rerun skips finished movies, and --masks, --prompts, --boxes, --start-labels and "
                    "--lineage-plot name folders with one file per movie, <movie stem>.tif/.csv/.png. "
                    "Movies larger than memory: a Zarr/OME-Zarr INPUT (and --masks) is read lazily; when the "
                    "movie and its labels would need more than --max-memory, --mode auto tracks it frame by frame "
                    "with the overlap linker (labels in a Zarr store in a working folder next to OUTDIR, CTC "
                    "masks written frame by frame; same result as in memory). --mode propagate and --linker "
                    "trackastra need the movie in memory and refuse such movies.")
    parser.add_argument("input", nargs="+", help="movie(s): TIFF or Zarr with a t axis (3-D without axes metadata: "
                                                 "t,y,x), or a folder/glob of 2-D frames (t000.tif...: one movie); "
                                                 "folders or glob patterns of movies")
    parser.add_argument("-o", "--outdir", required=True, help="output folder")
    parser.add_argument("--axes", help="axes of INPUT (and --masks), e.g. tyx or tzyx, when the file does not say "
                                       "(default for 3-D: tyx)")
    parser.add_argument("--mode", choices=("auto", "propagate"), default="auto")
    parser.add_argument("--masks", help="auto mode: label movie to link instead of segmenting (no model needed); "
                                        "several movies: a folder with <movie stem>.tif for each")
    parser.add_argument("--prompts", help="propagate mode: CSV object_id,y,x,positive of the objects in --start-frame "
                                          "(several movies: a folder with <movie stem>.csv)")
    parser.add_argument("--boxes", help="propagate mode: CSV object_id,ymin,xmin,ymax,xmax in --start-frame "
                                        "(several movies: a folder with <movie stem>.csv)")
    parser.add_argument("--start-labels", help="propagate mode: label image (y, x) of the objects in --start-frame "
                                               "(several movies: a folder with <movie stem>.tif)")
    parser.add_argument("--start-frame", type=int, default=0)
    parser.add_argument("--format", default="ctc", help="comma-separated: ctc, napari, geff, trackmate, table "
                                                        "(default ctc)")
    parser.add_argument("--pixel-size", type=float, help="trackmate: pixel size in micrometres (default: the TIFF's "
                                                         "calibration, else positions in pixels)")
    parser.add_argument("--frame-interval", type=float, help="trackmate: seconds between frames (default: the TIFF's "
                                                             "calibration, else frames)")
    parser.add_argument("--linker", choices=("auto", "overlap", "trackastra"), default="auto",
                        help="auto: trackastra if its model is cached or a mirror is set, else overlap")
    parser.add_argument("--trackastra-model", default="general_2d", help="trackastra model name or local folder")
    parser.add_argument("--segmenter", choices=("ais", "classical"), default="ais",
                        help="auto mode without --masks: samzoo's AIS (default) or the classical baseline")
    parser.add_argument("--model", default=None, help="samzoo model for segmentation/propagation")
    parser.add_argument("--decoder", default=None,
                        help="micro-sam AIS decoder file (e.g. vit_b_decoder.pt) for a SAM/micro-sam --model file")
    parser.add_argument("--scale", type=parse_scale, default=1.0,
                        help="auto mode: segment frames resized by this factor (> 1 for small objects), or "
                             "'auto': estimated once on the middle frame (see samzoo segment --scale)")
    parser.add_argument("--max-distance", type=float, help="overlap linker: largest move per frame in pixels")
    parser.add_argument("--max-memory", type=float, default=4.0,
                        help="GiB: a Zarr movie whose image and labels would need more is tracked frame by frame "
                             "(out of core; --mode auto with the overlap linker); 0: every Zarr movie (default 4)")
    parser.add_argument("--lineage-plot", help="also write a lineage-tree PNG here (several movies: a folder, "
                                               "one <movie stem>.png each)")
    parser.add_argument("--scheduler", default=None,
                        help="several movies: dask.distributed scheduler address (default: a local cluster in "
                             "this process)")
    parser.add_argument("--workers", type=int, default=1, help="several movies: threads of the local cluster "
                                                               "(default 1)")
    parser.add_argument("--overwrite", action="store_true", help="several movies: recompute movies that a "
                                                                 "batch finished earlier")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


@dataclass(frozen=True)
class Settings:
    """Everything besides the movie's own files that determines a result (small, picklable for dask)."""

    mode: str
    axes: str | None
    formats: tuple[str, ...]
    linker: str
    trackastra_model: str
    segmenter: str
    model: str | None
    max_distance: float | None
    start_frame: int
    link_masks: bool  # auto mode: link given --masks instead of segmenting
    scale: float = 1.0
    max_memory: float = 4.0  # GiB; a larger lazy (Zarr) movie is tracked frame by frame
    pixel_size: float | None = None  # trackmate calibration given on the command line
    frame_interval: float | None = None
    decoder: str | None = None  # micro-sam's AIS decoder file, for SAM / micro-sam --model files

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


@lru_cache(maxsize=2)
def _model(name: str | None, decoder: str | None = None):
    # one model per worker process, shared by its threads: loading costs more than tracking a small movie
    from samzoo.models.load import load_model

    return load_model(name, decoder=decoder)


def _formats(text: str) -> list[str]:
    formats = [f.strip().lower() for f in text.split(",") if f.strip()]
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise InputError(f"unknown --format {', '.join(unknown) or text!r}; choose from {', '.join(FORMATS)}")
    return formats


def _start(movie: Movie):
    """The objects to propagate: a label image or {id: Prompt}."""
    from samzoo.segmentation.predictor import Prompt

    if movie.start_labels:
        return np.asarray(read_image(movie.start_labels, axes="yx").values)
    points = read_points_csv(movie.prompts) if movie.prompts else {}
    boxes = read_boxes_csv(movie.boxes) if movie.boxes else {}
    if not points and not boxes:
        raise InputError(f"{movie.source.name}: --mode propagate found no objects in its --prompts/--boxes")
    empty = (np.zeros((0, 2)), np.zeros(0, dtype=int))
    return {i: Prompt(points=points.get(i, empty)[0], point_labels=points.get(i, empty)[1], box=boxes.get(i))
            for i in sorted(set(points) | set(boxes))}


def track_movie(settings: Settings, movie: Movie, outdir: Path):
    """Track one movie, write its files into ``outdir`` (and its lineage plot); ``(result, divisions)``.

    A lazy (Zarr) movie larger than ``settings.max_memory`` is tracked frame by frame (see the
    module docstring); napari and geff outputs come from the graph alone, so they cost no more.
    """
    from samzoo.tracking import track

    image = read_movie(movie.frames or movie.source, axes=settings.axes)
    if image.attrs.get("assumed_axes"):
        print(f"samzoo track: {movie.source.name} does not name its axes; reading its 3 dimensions as "
              f"{','.join(image.attrs['assumed_axes'])} (pass --axes to say otherwise)", file=sys.stderr)
    if "t" not in image.dims:
        raise InputError(f"{movie.source} has axes {''.join(image.dims)}: tracking needs a t axis "
                         "(pass --axes, e.g. tyx)")
    image = image.transpose("t", ..., "y", "x", *(["c"] if "c" in image.dims else []))
    masks = read_movie(movie.masks, axes=settings.axes).data if movie.masks else None
    if masks is not None and masks.shape != image.shape[:masks.ndim]:
        raise InputError(f"--masks {masks.shape} do not match the movie {image.shape}")
    out_of_core = _out_of_core(settings, image, masks)
    if out_of_core:
        _check_out_of_core(settings, image)
    model = _model(settings.model, settings.decoder) if settings.needs_model else None
    options = {} if settings.max_distance is None else {"max_distance": settings.max_distance}
    if out_of_core:
        outdir.parent.mkdir(parents=True, exist_ok=True)
        # the label store lives next to OUTDIR (same disk, which holds the result too) until written
        with tempfile.TemporaryDirectory(prefix=f".{outdir.name}.work-", dir=outdir.parent) as work:
            result = track(image.data, masks, workdir=work, model=model, segmenter=settings.segmenter,
                           zstack="z" in image.dims, scale=settings.scale, linker="overlap", **options)
            return _write(settings, movie, outdir, result, image)
    images = np.asarray(image.values)
    masks = None if masks is None else np.asarray(masks)
    start = _start(movie) if settings.mode == "propagate" else None
    result = track(images, masks, mode=settings.mode, model=model, start=start, start_frame=settings.start_frame,
                   linker=settings.linker, trackastra_model=settings.trackastra_model, segmenter=settings.segmenter,
                   zstack="z" in image.dims, scale=settings.scale, **options)
    return _write(settings, movie, outdir, result, image)


def _out_of_core(settings: Settings, image, masks) -> bool:
    """Whether to track frame by frame: a lazy (Zarr) movie that needs more than --max-memory in memory."""
    lazy = not isinstance(image.data, np.ndarray) or (masks is not None and not isinstance(masks, np.ndarray))
    labels = int(np.prod(image.shape[:4 if "z" in image.dims else 3])) * 4  # uint32 labels
    # the image, its labels and their relabelled copy, as the in-memory path holds them
    need = image.nbytes + 2 * labels
    return lazy and need > settings.max_memory * 2 ** 30


def _check_out_of_core(settings: Settings, image) -> None:
    size = f"{image.nbytes / 2 ** 30:.2f} GiB"
    if settings.mode == "propagate":
        raise InputError(f"--mode propagate needs the whole movie in memory; this movie ({size} plus labels) is "
                         f"more than --max-memory {settings.max_memory:g} GiB: raise --max-memory or use --mode auto")
    if settings.linker == "trackastra":
        raise InputError(f"--linker trackastra needs the whole movie in memory; this movie ({size} plus labels) is "
                         f"more than --max-memory {settings.max_memory:g} GiB: raise --max-memory or use "
                         "--linker overlap")


def _write(settings: Settings, movie: Movie, outdir: Path, result, image):
    """Write the result's files into ``outdir`` (and its lineage plot); ``(result, divisions)``.

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
        write_table(result.graph, result.masks, outdir / "table.csv", images=image.data, first_frame=first_frame)
    parents, counts = np.unique(result.tracks[result.tracks[:, 3] > 0, 3], return_counts=True)
    n_div = int((counts >= 2).sum())  # a parent with one child is a bridged gap, not a division
    if movie.lineage_plot:
        lineage_plot(result.graph, movie.lineage_plot,
                     title=f"{movie.source.name}: {len(result.tracks)} tracks, {n_div} divisions ({result.linker})")
    return result, n_div


def _movie_job(settings: Settings, movie: Movie, out: Path) -> None:
    # the whole folder appears at once: a folder that exists is a finished movie, which is what
    # lets a rerun skip it. The lineage plot (outside the folder) is written before the rename,
    # so a finished movie always has its plot.
    with atomic_path(out, directory=True) as tmp:
        track_movie(settings, movie, tmp)


def _absolute(name: str | None) -> str | None:
    """An absolute path for names of existing files: dask workers elsewhere have another working directory."""
    return str(Path(name).absolute()) if name and Path(name).exists() else name


def _check_options(args: argparse.Namespace) -> None:
    if args.mode == "propagate" and not (args.prompts or args.boxes or args.start_labels):
        raise InputError("--mode propagate needs --prompts, --boxes or --start-labels")
    if args.max_memory < 0:
        raise InputError(f"--max-memory must be 0 or more GiB, got {args.max_memory}")
    if args.workers < 1:
        raise InputError(f"--workers must be at least 1, got {args.workers}")
    for flag, value in (("--pixel-size", args.pixel_size), ("--frame-interval", args.frame_interval)):
        if value is not None and not value > 0:
            raise InputError(f"{flag} must be positive, got {value}")
    if args.scale not in (1, "auto") and (args.mode == "propagate" or args.masks):
        raise InputError("--scale applies when track segments the frames itself (--mode auto without --masks)")


def run(args: argparse.Namespace) -> int:
    formats = _formats(args.format)
    _check_options(args)
    settings = Settings(args.mode, args.axes, tuple(formats), args.linker, _absolute(args.trackastra_model),
                        args.segmenter, _absolute(args.model), args.max_distance, args.start_frame,
                        link_masks=bool(args.masks), scale=args.scale, max_memory=args.max_memory,
                        pixel_size=args.pixel_size, frame_interval=args.frame_interval,
                        decoder=_absolute(args.decoder))
    sources = find_movies(args.input)  # the frames of a folder or pattern are one movie
    frames = isinstance(sources[0], tuple)
    single = len(sources) == 1 and (frames or (len(args.input) == 1 and Path(args.input[0]) == sources[0]))
    if not single:
        return _run_batch(settings, sources, args)
    files = {name: Path(getattr(args, name)) for name in (*PER_MOVIE_INPUTS, "lineage_plot") if getattr(args, name)}
    movie = Movie(sources[0][0].parent if frames else sources[0], sources[0] if frames else None, **files)
    outdir = Path(args.outdir)
    result, n_div = track_movie(settings, movie, outdir)
    print(f"tracks:  {len(result.tracks)} track segments, {n_div} divisions over {len(result.masks)} frames "
          f"(linker: {result.linker})")
    print(f"output:  {outdir} ({', '.join(formats)})")
    if movie.lineage_plot:
        print(f"lineage: {movie.lineage_plot}")
    return 0


def _per_movie_files(option: str, folder: Path, inputs: list[Path], suffixes: tuple[str, ...]) -> list[Path]:
    """The file of each movie in ``folder``: the one named like the movie with one of ``suffixes``."""
    flag = "--" + option.replace("_", "-")
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


def _movies(inputs: list[Path], args: argparse.Namespace) -> list[Movie]:
    """Each movie of a batch with its own files, matched by stem in the folders the options name."""
    files: dict[str, list[Path]] = {}
    for option, suffixes in PER_MOVIE_INPUTS.items():
        if getattr(args, option):
            files[option] = _per_movie_files(option, Path(getattr(args, option)), inputs, suffixes)
    if args.lineage_plot:
        plots = Path(args.lineage_plot).absolute()
        if plots.is_file() or plots.suffix.lower() == ".png":
            raise InputError(f"with {len(inputs)} movies, --lineage-plot must be a folder (one <movie stem>.png "
                             f"per movie), not {plots.name}")
        files["lineage_plot"] = [plots / (source.stem + ".png") for source in inputs]
    return [Movie(source, **{name: paths[i] for name, paths in files.items()}) for i, source in enumerate(inputs)]


def _record(settings: Settings, args: argparse.Namespace) -> dict:
    """The job record: the settings, the per-movie folders, and the weights hash of the model used."""
    record = asdict(settings)
    del record["max_memory"]  # in memory or frame by frame, the results are the same
    for key in ("pixel_size", "frame_interval"):  # unset: records of earlier versions stay valid
        if record[key] is None:
            del record[key]
    for name in (*PER_MOVIE_INPUTS, "lineage_plot"):
        record[name] = _absolute(getattr(args, name))
    if settings.needs_model:
        # a retrained model under the same name differs
        record["weights_hash"] = _model(settings.model, settings.decoder).weights_hash
    return record


def _run_batch(settings: Settings, sources: list, args: argparse.Namespace) -> int:
    # a movie stored as frames is named after their folder
    inputs = [(s[0].parent if isinstance(s, tuple) else s).absolute() for s in sources]
    folder = Path(args.outdir).absolute()
    if folder.is_file():
        raise InputError(f"{len(inputs)} movies need an output folder, not the file {folder}")
    outs = output_paths(inputs, folder, "")  # OUTDIR/<movie stem>/; equal stems are refused
    movies = [replace(movie, frames=tuple(p.absolute() for p in source)) if isinstance(source, tuple) else movie
              for movie, source in zip(_movies(inputs, args), sources)]
    # loads the model once here, before any work starts: an unknown model fails in one line
    check_job_record(folder, _record(settings, args), overwrite=args.overwrite)
    if args.overwrite:
        for out in outs:
            shutil.rmtree(out, ignore_errors=True)
    report = run_batch(movies, partial(_movie_job, settings), outs, scheduler=args.scheduler, workers=args.workers,
                       progress=not args.no_progress, desc="movies", unit="movie")
    print(f"output:  {folder} ({len(report.done)} movies tracked, {len(report.skipped)} already done; "
          f"one folder per movie with {', '.join(settings.formats)})")
    return 0

