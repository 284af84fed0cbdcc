"""``samzoo segment``: prompt or automatic segmentation of images, movies, volumes, folders and huge images.

The work is :func:`samzoo.segment_files` (one image in memory, a movie's frame files, a batch on
dask, or an image larger than a block, block by block); this module parses the arguments, calls
it and prints what it reports.
"""

from __future__ import annotations

import argparse
import sys

from samzoo.api import MODES
from samzoo.jobs import SegmentResult, segment_files
from samzoo.segmentation.views import VIEWS


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
    parser.add_argument("--scale", type=scale_argument, default=None,
                        help="resize images by this factor before segmenting, labels come back at the original "
                             "size: > 1 for objects much smaller than ~30 px across, < 1 for ones much larger "
                             "than ~45 px; 'auto': the factor that brings the objects to the size the model "
                             "knows, estimated on each image (default: auto for models trained for it, as "
                             "samzoo_tiny_lm since 2026-12, else 1)")
    parser.add_argument("--gamma", type=float, default=1.0,
                        help="compress each plane's intensities before segmenting, e.g. 0.5 where dim objects "
                             "lie next to bright ones (see the tracking guide: it costs where objects are evenly "
                             "bright); 1: as they are (default); not for images segmented block by block")
    parser.add_argument("--views", type=int, choices=tuple(VIEWS), default=None,
                        help="AIS: combine the decoder's maps over this many turned and mirrored views of each "
                             "plane before the watershed (test-time augmentation; each view is one more encoder "
                             "pass); default 2 for samzoo's own models, 1 for SAM-family models")
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


def scale_argument(text: str) -> float | str:
    """``auto`` or a number (its range is checked with the other options, as one line and exit code 1)."""
    return "auto" if text.strip().lower() == "auto" else float(text)


def run(args: argparse.Namespace) -> int:
    result = segment_files(args.input, args.output, model=args.model, mode=args.mode, points=args.points,
                           boxes=args.boxes, axes=args.axes, scale=args.scale, tile=args.tile, halo=args.halo,
                           overlay=args.overlay or True, cache=not args.no_cache, merge_z=not args.no_merge_z,
                           min_z_extent=args.min_z_extent, format=args.format, block=args.block,
                           block_halo=args.block_halo, decoder=args.decoder, scheduler=args.scheduler,
                           workers=args.workers, overwrite=args.overwrite, progress=not args.no_progress,
                           gamma=args.gamma, views=args.views)
    # say which scale was used whenever samzoo chose it (asked for, or the model's default)
    report(result, auto_scale=args.scale == "auto" or (args.scale is None and result.scale not in (None, 1.0)))
    return 0


def report(result: SegmentResult, *, auto_scale: bool = False) -> None:
    """Print what :func:`samzoo.segment_files` did: the outputs on stdout, the scale chosen and warnings on stderr."""
    model = f"model {result.model}"
    if auto_scale and result.kind in ("image", "movie"):
        print(f"samzoo segment: {result.source}: --scale auto chose {result.scale:.3g}", file=sys.stderr)
    elif auto_scale and result.kind in ("blocks", "windows"):
        print(f"scale auto: {result.scale:.3g}", file=sys.stderr)
    if result.kind == "image":
        print(f"labels:  {result.output} ({result.objects} objects in {result.planes} plane(s), {model})")
    elif result.kind == "movie":
        print(f"labels:  {result.output} ({result.objects} objects in {result.planes} frames of {result.source}, "
              f"{model})")
    elif result.kind == "batch":
        print(f"labels:  {result.output} ({result.done} images segmented, {result.skipped} already done, {model})")
    elif result.kind == "blocks":
        print(f"labels:  {result.output} ({result.objects} objects, {result.units} blocks: {result.done} segmented, "
              f"{result.skipped} already done, {model})")
    else:
        print(f"labels:  {result.output} ({result.objects} of {result.prompted} prompted objects, {result.units} "
              f"windows: {result.done} segmented, {result.skipped} already done, {model})")
    if result.overlay:
        print(f"overlay: {result.overlay}")
    for warning in result.warnings:
        print(f"samzoo segment: warning: {warning}", file=sys.stderr)
