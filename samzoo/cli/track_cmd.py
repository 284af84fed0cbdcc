"""``samzoo track``: follow objects through movies and write tracks (CTC, napari, geff) and lineage plots.

The work is :func:`samzoo.track_files` (one movie into OUTDIR, or many movies as a batch on dask,
one folder each; Zarr movies larger than ``--max-memory`` frame by frame); this module parses
the arguments, calls it and prints what it reports.
"""

from __future__ import annotations

import argparse
import sys

from samzoo.cli.segment_cmd import scale_argument
from samzoo.jobs import TrackResult, track_files
from samzoo.segmentation.views import VIEWS


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "track", help="track objects through movies (automatic or by propagating prompts)",
        description="Track the objects of a movie INPUT (axes t[z]yx) and write the result into OUTDIR. "
                    "--mode auto segments every frame (or takes --masks) and links the objects; --mode propagate "
                    "follows the objects given by --prompts/--boxes/--start-labels in --start-frame with SAM "
                    "prompts. Formats: ctc (OUTDIR/mask000.tif... and OUTDIR/res_track.txt), napari "
                    "(OUTDIR/napari_tracks.csv with track_id,t,[z,]y,x and OUTDIR/napari_graph.json), geff "
                    "(OUTDIR/tracks.geff), trackmate (OUTDIR/trackmate.xml, for Fiji's TrackMate; calibrated by "
                    "--pixel-size/--frame-interval or the TIFF's own calibration), table (OUTDIR/table.csv, or "
                    "OUTDIR/table.parquet with --table-format parquet: "
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
    parser.add_argument("--table-format", choices=("csv", "parquet"), default="csv",
                        help="table: OUTDIR/table.csv (default) or OUTDIR/table.parquet (typed columns, NaN for "
                             "missing intensities; needs pyarrow)")
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
    parser.add_argument("--scale", type=scale_argument, default=None,
                        help="auto mode: segment frames resized by this factor (> 1 for small objects), or "
                             "'auto': estimated once on the middle frame (default: as samzoo segment --scale)")
    parser.add_argument("--gamma", type=scale_argument, default=None,
                        help="auto mode: compress intensities before segmenting, e.g. 0.5 for nuclei of very "
                             "different brightness; 1: as they are; 'auto': segment at 1 and 0.5 and keep the "
                             "segmentation that is steadier from frame to frame (twice the segmentation time). "
                             "Default: auto for samzoo's own models on 2D movies, else 1. A number other than 1 "
                             "is refused with --masks or --mode propagate")
    parser.add_argument("--views", type=int, choices=tuple(VIEWS), default=None,
                        help="auto mode with AIS: combine each frame's AIS maps over this many turned and mirrored "
                             "views (test-time augmentation, one more encoder pass each); default 2 for samzoo's "
                             "own models, 1 for SAM-family models; refused with --masks or --mode propagate")
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


def run(args: argparse.Namespace) -> int:
    result = track_files(args.input, args.outdir, mode=args.mode, masks=args.masks, prompts=args.prompts,
                         boxes=args.boxes, start_labels=args.start_labels, start_frame=args.start_frame,
                         format=args.format, table_format=args.table_format, axes=args.axes, model=args.model,
                         decoder=args.decoder, segmenter=args.segmenter, scale=args.scale, gamma=args.gamma, views=args.views,
                         linker=args.linker, trackastra_model=args.trackastra_model, max_distance=args.max_distance,
                         max_memory=args.max_memory, pixel_size=args.pixel_size, frame_interval=args.frame_interval,
                         lineage_plot=args.lineage_plot, scheduler=args.scheduler, workers=args.workers,
                         overwrite=args.overwrite, progress=not args.no_progress)
    report(result)
    return 0


def report(result: TrackResult) -> None:
    """Print what :func:`samzoo.track_files` did: the outputs on stdout, warnings on stderr."""
    for warning in result.warnings:
        print(f"samzoo track: {warning}", file=sys.stderr)
    formats = ", ".join(result.formats)
    if result.kind == "batch":
        print(f"output:  {result.output} ({result.done} movies tracked, {result.skipped} already done; "
              f"one folder per movie with {formats})")
        return
    gamma = "" if result.gamma is None else f", segmented at gamma {result.gamma:g}"
    print(f"tracks:  {result.tracks} track segments, {result.divisions} divisions over {result.frames} frames "
          f"(linker: {result.linker}{gamma})")
    print(f"output:  {result.output} ({formats})")
    if result.lineage_plot:
        print(f"lineage: {result.lineage_plot}")
