"""``samzoo segment``: prompt or automatic segmentation of images, movies, volumes, folders and huge images.

Three ways, chosen from the inputs:

- one image in memory (TIFF, PNG, a Zarr that fits one block): labels + an overlay PNG;
- many images (several names, a folder or a glob): a batch on dask (:func:`samzoo.batch.run_batch`),
  one output per image in the ``-o`` folder, resumable;
- an image larger than a block (a Zarr/OME-Zarr read lazily, or any image with ``--block``):
  segmented block by block on dask and stitched into a Zarr (:mod:`samzoo.io.blocks`), resumable.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import asdict, dataclass, replace
from functools import lru_cache, partial
from pathlib import Path

import numpy as np
import xarray as xr

from samzoo.api import CLASSICAL_NAME, plane_image, planes_of, segment
from samzoo.api import segment_plane as segment_native_plane
from samzoo.batch import check_job_record, expand_inputs, output_paths, run_batch
from samzoo.errors import InputError
from samzoo.io import read_boxes_csv, read_image, read_points_csv, write_labels, write_overlay_png
from samzoo.io.blocks import merge_z_zarr, plan_blocks, plane_dims, segment_block, stitch_blocks
from samzoo.io.prompt_windows import paste_windows, plan_windows, segment_window
from samzoo.io.sequence import find_movies, read_frames
from samzoo.segmentation.autoscale import parse_scale, resolve_scale
from samzoo.segmentation.checks import NO_OBJECTS_HINT, shows_structure
from samzoo.segmentation.rescale import segment_rescaled

MODES = ("ais", "amg", "apg", "classical")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "segment", help="segment images with prompts or automatically",
        description="Segment INPUT and write a label image. With --points/--boxes each object_id of the CSVs "
                    "becomes that label; without prompts every object is found automatically (AIS). "
                    "Movies and volumes (t/z axes) are segmented plane by plane; in volumes, overlapping objects "
                    "of neighbouring slices are joined into 3D objects. Several inputs (names, a folder or a glob) "
                    "are a batch: OUTPUT is then a folder with one label file per input. Images larger than "
                    "--block (Zarr, read lazily) are segmented block by block into a Zarr. Batches and blocks run "
                    "on dask (a local cluster, or --scheduler) and a rerun skips finished work.")
    parser.add_argument("input", nargs="+", help="TIFF, PNG/JPEG or Zarr image(s), folders or glob patterns")
    parser.add_argument("-o", "--output", required=True,
                        help="label image to write (.tif or .zarr); a folder for several inputs. The 2-D frames of "
                             "one movie (a folder or glob such as 01/t000.tif...) to a .tif/.zarr: one t,y,x label "
                             "movie; to a folder: one label file per frame")
    parser.add_argument("--model", default=None, help="registry name, nickname, samzoo .safetensors file, bioimage.io "
                                                       "package, SAM checkpoint or micro-sam file (default: samzoo's "
                                                       "own model, offline)")
    parser.add_argument("--decoder", default=None,
                        help="micro-sam AIS decoder file (e.g. vit_b_decoder.pt) for a SAM/micro-sam --model file")
    parser.add_argument("--points", help="CSV with columns object_id,y,x,positive")
    parser.add_argument("--boxes", help="CSV with columns object_id,ymin,xmin,ymax,xmax")
    parser.add_argument("--axes", help="axes of INPUT, e.g. yx, tyx, zyx, yxc (needed when the file does not say)")
    parser.add_argument("--mode", choices=MODES, default="ais",
                        help="automatic mode without prompts: ais (decoder + watershed, fastest), amg (grid of "
                             "point prompts), apg (AIS instances refined by SAM prompts), classical (no model: "
                             "smoothing, Otsu threshold, watershed)")
    parser.add_argument("--scale", type=parse_scale, default=1.0,
                        help="resize images by this factor before segmenting, labels come back at the original "
                             "size: > 1 for objects much smaller than ~30 px across, < 1 for ones much larger "
                             "than ~45 px; 'auto': the factor that brings the objects to the size the model "
                             "knows, estimated on each image (default 1)")
    parser.add_argument("--tile", type=int, help="model tile size (default: the model input size)")
    parser.add_argument("--halo", type=int, help="model tile overlap in pixels (default: tile / 8)")
    parser.add_argument("--overlay", help="overlay PNG to write (default: OUTPUT with _overlay.png; one image only)")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    parser.add_argument("--no-merge-z", action="store_true",
                        help="volumes: keep per-slice labels instead of joining them into 3D objects")
    parser.add_argument("--min-z-extent", type=int, default=2, help="volumes: drop 3D objects on fewer slices")
    parser.add_argument("--format", choices=("tif", "zarr"), default="tif", help="batch outputs: file type")
    parser.add_argument("--block", type=int, default=None,
                        help="segment planes larger than this block by block into a Zarr (default 2048 for "
                             "Zarr inputs; other inputs are segmented whole unless given)")
    parser.add_argument("--block-halo", type=int, default=64,
                        help="block overlap in pixels, at least the size of the largest object (default 64)")
    parser.add_argument("--scheduler", default=None,
                        help="dask.distributed scheduler address (default: a local cluster in this process)")
    parser.add_argument("--workers", type=int, default=1, help="threads of the local cluster (default 1)")
    parser.add_argument("--overwrite", action="store_true",
                        help="recompute outputs that a batch or block job finished earlier")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


@dataclass(frozen=True)
class Settings:
    """Everything that determines a result, and is sent to dask workers (small, picklable)."""

    model: str | None
    mode: str
    axes: str | None
    tile: int | None
    halo: int | None
    cache: bool
    merge_z: bool
    min_z_extent: int
    points: str | None
    boxes: str | None
    scale: float | str = 1.0  # a number or "auto" (resolved per image; per job for blocks and windows)
    decoder: str | None = None  # micro-sam's AIS decoder file, for SAM / micro-sam --model files

    @property
    def needs_model(self) -> bool:
        return self.mode != "classical" or bool(self.points or self.boxes)


@lru_cache(maxsize=2)
def _model(name: str | None, decoder: str | None = None):
    # one model per worker process, shared by its threads: loading costs far more than a plane
    from samzoo.models.load import load_model

    return load_model(name, decoder=decoder)


def _prompts(settings: Settings) -> dict | None:
    from samzoo.segmentation.predictor import Prompt

    if not (settings.points or settings.boxes):
        return None
    points = read_points_csv(settings.points) if settings.points else {}
    boxes = read_boxes_csv(settings.boxes) if settings.boxes else {}
    prompts = {}
    for object_id in sorted(set(points) | set(boxes)):
        pts, labels = points.get(object_id, (np.zeros((0, 2)), np.zeros(0, dtype=int)))
        prompts[object_id] = Prompt(points=pts, point_labels=labels, box=boxes.get(object_id))
    return prompts


def segment_plane(settings: Settings, plane: np.ndarray, *, prompts: dict | None = None,
                  progress: bool = False) -> np.ndarray:
    """Labels ``(H, W)`` of one 2D plane ``(H, W)`` or ``(H, W, C)`` with the settings' mode or prompts."""
    def native(image: np.ndarray, given: dict | None = None) -> np.ndarray:
        return _segment_native(settings, image, prompts=given, progress=progress)

    return segment_rescaled(native, plane, settings.scale, prompts=prompts)


def _segment_native(settings: Settings, plane: np.ndarray, *, prompts: dict | None = None,
                    progress: bool = False) -> np.ndarray:
    model = _model(settings.model, settings.decoder) if settings.needs_model else None
    return segment_native_plane(model, plane, mode=settings.mode, prompts=prompts, tile_size=settings.tile,
                                halo=settings.halo, cache=settings.cache, progress=progress)


def model_name(settings: Settings) -> str:
    return _model(settings.model, settings.decoder).name if settings.needs_model else CLASSICAL_NAME


def segment_file(settings: Settings, source: str | Path | tuple[Path, ...], out: Path, overlay: Path | None = None,
                 progress: bool = False) -> tuple[int, int]:
    """Segment one image file (or a movie's frame files) in memory and write its labels (and overlay).

    Returns ``(objects, planes)``.
    """
    image = read_frames(source, settings.axes) if isinstance(source, tuple) else read_image(source, axes=settings.axes)
    prompts = _prompts(settings)
    if prompts is not None and plane_dims(image):
        raise InputError(f"prompts need a 2D image, but {source} has axes {''.join(image.dims)}; "
                         "select one plane first")
    model = _model(settings.model, settings.decoder) if settings.needs_model else None
    out_array = segment(image, model, mode=settings.mode, prompts=prompts, scale=settings.scale,
                        merge_z=settings.merge_z, min_z_extent=settings.min_z_extent, tile_size=settings.tile,
                        halo=settings.halo, cache=settings.cache, progress=progress)
    write_labels(out_array, out)
    if settings.scale == "auto":
        print(f"samzoo segment: {source}: --scale auto chose {out_array.attrs['scale']:.3g}", file=sys.stderr)
    labels = out_array.values
    flat = labels.reshape((-1,) + labels.shape[-2:])
    planes = planes_of(image)
    if overlay is not None:
        middle = len(flat) // 2
        write_overlay_png(plane_image(planes, middle), flat[middle], overlay)
    unit = 3 if "z" in out_array.dims else 2  # count 3D objects per volume, 2D objects per plane
    n = sum(len(np.unique(u)) - 1 for u in labels.reshape((-1,) + labels.shape[-unit:]))
    if prompts is None and settings.mode != "classical":
        empty = _structured_but_empty(flat, planes)
        if empty:
            print(f"samzoo segment: warning: {source}: no object found in {len(empty)} of {len(flat)} plane(s) "
                  f"that clearly show structure (plane {', '.join(map(str, empty[:5]))}"
                  f"{', ...' if len(empty) > 5 else ''}); {NO_OBJECTS_HINT}", file=sys.stderr)
    return n, len(flat)


def _structured_but_empty(flat: np.ndarray, planes: xr.DataArray) -> list[int]:
    """Indices of planes with no object although the image clearly holds some."""
    return [i for i in range(len(flat)) if not flat[i].any() and shows_structure(plane_image(planes, i))]


def _file_job(settings: Settings, source: Path, out: Path) -> None:
    segment_file(settings, source, out)


def _record(settings: Settings, **extra) -> dict:
    """The job record: settings plus the weights hash (a retrained model under the same name differs)."""
    record = {**asdict(settings), **extra}
    del record["cache"]  # cached and fresh embeddings are identical (both float16-rounded)
    record["model"] = model_name(settings)
    if settings.needs_model:
        record["weights_hash"] = _model(settings.model, settings.decoder).weights_hash
    for key in ("points", "boxes"):  # the prompts themselves, not just the file names
        if record[key]:
            record[key] = Path(record[key]).read_text(encoding="utf-8", errors="replace")
    return record


def _check_options(args: argparse.Namespace) -> None:
    """Numbers that argparse accepts but that make no sense, as one clear message each."""
    if args.tile is not None and args.tile < 16:
        raise InputError(f"--tile must be at least 16 pixels, got {args.tile}")
    if args.halo is not None and (args.halo < 0 or 2 * args.halo >= (args.tile or 10**9)):
        raise InputError(f"--halo must satisfy 0 <= 2 * halo < tile, got halo {args.halo}"
                         + (f" and tile {args.tile}" if args.tile else ""))
    if args.min_z_extent < 1:
        raise InputError(f"--min-z-extent must be at least 1, got {args.min_z_extent}")
def _check_block_options(args: argparse.Namespace) -> None:
    if args.block is not None and args.block < 64:
        raise InputError(f"--block must be at least 64 pixels, got {args.block}")
    if args.block_halo < 0 or (args.block is not None and 4 * args.block_halo > args.block):
        # beyond a quarter, blocks mostly repeat their neighbours' pixels and their number explodes
        raise InputError(f"--block-halo must be from 0 to a quarter of --block, got {args.block_halo}; "
                         "for large objects use a larger --block")
    if args.workers < 1:
        raise InputError(f"--workers must be at least 1, got {args.workers}")


def run(args: argparse.Namespace) -> int:
    _check_options(args)
    _check_block_options(args)
    settings = _absolute(Settings(args.model, args.mode, args.axes, args.tile, args.halo, not args.no_cache,
                                  not args.no_merge_z, args.min_z_extent, args.points, args.boxes, args.scale,
                                  decoder=args.decoder))
    inputs = expand_inputs(args.input)
    single = len(args.input) == 1 and len(inputs) == 1 and Path(args.input[0]) == inputs[0]
    if settings.needs_model:
        # fail early (unknown model, no weights, a halo too large for its tiles) before any work starts
        model = _model(settings.model, settings.decoder)
        tile = min(settings.tile or model.input_size, model.input_size)
        if settings.halo is not None and 2 * settings.halo >= tile:
            raise InputError(f"--halo {settings.halo} is too large for tiles of {tile} pixels "
                             "(it must be less than half the tile)")
    movie = None if single else _frames_movie(args)
    if movie:
        return _run_movie(settings, movie, args)
    if not single:
        return _run_batch(settings, inputs, args)
    image = read_image(inputs[0], axes=settings.axes)
    lazy = not isinstance(image.data, np.ndarray)
    block = args.block or (2048 if lazy else None)
    if block and max(image.sizes["y"], image.sizes["x"]) > block:
        return _run_blocks(settings, inputs[0], image, block, args)
    path = Path(args.output)
    overlay = Path(args.overlay) if args.overlay else path.with_name(path.stem + "_overlay.png")
    n, planes = segment_file(settings, inputs[0], path, overlay, progress=not args.no_progress)
    print(f"labels:  {path} ({n} objects in {planes} plane(s), model {model_name(settings)})")
    print(f"overlay: {overlay}")
    return 0


def _frames_movie(args: argparse.Namespace) -> tuple[Path, ...] | None:
    """The frame files when the inputs are the 2-D frames of one movie and OUTPUT is one file, else None.

    To a folder, frames stay a batch (one label file per frame, resumable): per frame, the labels
    are the same as a movie's, and ``samzoo track FRAMES --masks FOLDER`` reads them as one movie.
    """
    if Path(args.output).suffix.lower() not in (".tif", ".tiff", ".zarr"):
        return None
    sources = find_movies(args.input)
    return sources[0] if len(sources) == 1 and isinstance(sources[0], tuple) else None


def _run_movie(settings: Settings, frames: tuple[Path, ...], args: argparse.Namespace) -> int:
    path = Path(args.output)
    overlay = Path(args.overlay) if args.overlay else path.with_name(path.stem + "_overlay.png")
    n, planes = segment_file(settings, frames, path, overlay, progress=not args.no_progress)
    print(f"labels:  {path} ({n} objects in {planes} frames of {frames[0].parent}, model {model_name(settings)})")
    print(f"overlay: {overlay}")
    return 0


def _absolute(settings: Settings) -> Settings:
    """Settings with absolute file paths: dask workers elsewhere do not share this working directory."""
    def absolute(name: str | None) -> str | None:
        return str(Path(name).absolute()) if name and Path(name).exists() else name

    return replace(settings, model=absolute(settings.model), points=absolute(settings.points),
                   boxes=absolute(settings.boxes), decoder=absolute(settings.decoder))


def _run_batch(settings: Settings, inputs: list[Path], args: argparse.Namespace) -> int:
    inputs = [p.absolute() for p in inputs]
    folder = Path(args.output).absolute()
    if folder.suffix.lower() in (".tif", ".tiff") or folder.is_file():
        raise InputError(f"{len(inputs)} inputs need an output folder, not {folder}")
    outs = output_paths(inputs, folder, "." + args.format)
    check_job_record(folder, _record(settings, format=args.format), overwrite=args.overwrite)
    if args.overwrite:
        for out in outs:
            shutil.rmtree(out, ignore_errors=True) if out.is_dir() else out.unlink(missing_ok=True)
    report = run_batch(inputs, partial(_file_job, settings), outs, scheduler=args.scheduler, workers=args.workers,
                       progress=not args.no_progress, desc="images", unit="image")
    print(f"labels:  {folder} ({len(report.done)} images segmented, {len(report.skipped)} already done, "
          f"model {model_name(settings)})")
    if settings.needs_model and not (settings.points or settings.boxes):
        # the workers may be other processes: their warnings are not ours to print, so look again
        empty = [source for source, out in zip(inputs, outs) if out in report.done and _empty_output(settings, source, out)]
        if empty:
            print(f"samzoo segment: warning: no object found in {len(empty)} image(s) that clearly show "
                  f"structure: {', '.join(p.name for p in empty)}; {NO_OBJECTS_HINT}", file=sys.stderr)
    return 0


def _empty_output(settings: Settings, source: Path, out: Path) -> bool:
    if np.asarray(read_image(out).values).any():
        return False
    planes = planes_of(read_image(source, axes=settings.axes))
    return any(shows_structure(plane_image(planes, i)) for i in range(planes.sizes["plane"]))


def _run_blocks(settings: Settings, source: Path, image: xr.DataArray, block: int, args: argparse.Namespace) -> int:
    source, out = source.absolute(), Path(args.output).absolute()
    if out.suffix.lower() != ".zarr":
        raise InputError(f"{source} is segmented block by block (larger than --block {block}); "
                         f"the output must be a .zarr folder, not {out.name}")
    prompts = _prompts(settings)
    settings = _fixed_scale(settings, image, prompts)
    if prompts is not None:
        return _run_prompt_windows(settings, source, out, image, prompts, block, args)
    units = plan_blocks(image, str(source), settings.axes, block, args.block_halo)
    parts_dir = out.with_name(out.name + ".parts")  # visible: it is resumable work, not a temporary
    check_job_record(parts_dir, _record(settings, source=str(source), block=block, block_halo=args.block_halo),
                     overwrite=args.overwrite)
    parts = [parts_dir / u.name for u in units]
    if args.overwrite:
        for part in parts:
            part.unlink(missing_ok=True)
    report = run_batch(units, partial(segment_block, partial(segment_plane, settings)), parts,
                       scheduler=args.scheduler, workers=args.workers, progress=not args.no_progress,
                       desc="blocks", unit="block")
    merge_z = "z" in image.dims and settings.merge_z
    # with z-merging the stitched per-slice labels are an intermediate, kept with the parts until merged
    stitched = parts_dir / "slices.zarr" if merge_z else out
    n = stitch_blocks(units, parts, stitched, image, attrs={**image.attrs, "model": model_name(settings)},
                      progress=not args.no_progress)
    if merge_z:
        n = merge_z_zarr(stitched, out, min_z_extent=settings.min_z_extent, progress=not args.no_progress)
    shutil.rmtree(parts_dir, ignore_errors=True)
    print(f"labels:  {out} ({n} objects, {len(units)} blocks: {len(report.done)} segmented, "
          f"{len(report.skipped)} already done, model {model_name(settings)})")
    return 0


def _fixed_scale(settings: Settings, image: xr.DataArray, prompts: dict | None) -> Settings:
    """Settings with ``scale="auto"`` resolved once for the whole image (every block, every plane).

    Estimated on the middle plane's central window of 2048 pixels, read alone from a lazy image;
    the number goes into the job record, so a resumed job keeps it.
    """
    if settings.scale != "auto":
        return settings
    model = _model(settings.model, settings.decoder) if settings.needs_model else None
    planes = planes_of(image)
    plane = planes.isel(plane=planes.sizes["plane"] // 2)
    h, w = plane.sizes["y"], plane.sizes["x"]
    window = plane.isel(y=slice(max(h // 2 - 1024, 0), h // 2 + 1024), x=slice(max(w // 2 - 1024, 0), w // 2 + 1024))
    scale = resolve_scale(model, np.asarray(window.transpose("y", "x", ...).values), "auto", prompts=prompts)
    print(f"scale auto: {scale:.3g}", file=sys.stderr)
    return replace(settings, scale=scale)


def _run_prompt_windows(settings: Settings, source: Path, out: Path, image: xr.DataArray, prompts: dict, block: int,
                        args: argparse.Namespace) -> int:
    """Prompts on an image larger than --block: each group of nearby objects in its own window."""
    if plane_dims(image):
        raise InputError(f"prompts need a 2D image, but {source} has axes {''.join(image.dims)}; select one plane first")
    model = _model(settings.model, settings.decoder)
    windows = plan_windows((image.sizes["y"], image.sizes["x"]), prompts, str(source), settings.axes, block=block,
                           margin=((settings.tile or model.input_size) - 1) // 2)  # one object: one tile
    parts_dir = out.with_name(out.name + ".parts")
    check_job_record(parts_dir, _record(settings, source=str(source), block=block), overwrite=args.overwrite)
    parts = [parts_dir / w.name for w in windows]
    if args.overwrite:
        for part in parts:
            part.unlink(missing_ok=True)

    def segment(window_image: np.ndarray, window_prompts: dict) -> np.ndarray:
        return segment_plane(settings, window_image, prompts=window_prompts)

    report = run_batch(windows, partial(segment_window, segment), parts, scheduler=args.scheduler,
                       workers=args.workers, progress=not args.no_progress, desc="windows", unit="window")
    n = paste_windows(windows, parts, out, image, attrs={**image.attrs, "model": model_name(settings)})
    shutil.rmtree(parts_dir, ignore_errors=True)
    print(f"labels:  {out} ({n} of {len(prompts)} prompted objects, {len(windows)} windows: {len(report.done)} "
          f"segmented, {len(report.skipped)} already done, model {model_name(settings)})")
    return 0
