"""``samzoo track``: follow objects through a movie and write tracks (CTC, napari, geff) and a lineage plot."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from samzoo.errors import InputError
from samzoo.io import read_boxes_csv, read_image, read_points_csv
from samzoo.io.write import atomic_path

FORMATS = ("ctc", "napari", "geff")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "track", help="track objects through a movie (automatic or by propagating prompts)",
        description="Track the objects of a movie INPUT (axes t[z]yx) and write the result into OUTDIR. "
                    "--mode auto segments every frame (or takes --masks) and links the objects; --mode propagate "
                    "follows the objects given by --prompts/--boxes/--start-labels in --start-frame with SAM "
                    "prompts. Formats: ctc (OUTDIR/mask000.tif... and OUTDIR/res_track.txt), napari "
                    "(OUTDIR/napari_tracks.csv with track_id,t,[z,]y,x and OUTDIR/napari_graph.json), geff "
                    "(OUTDIR/tracks.geff).")
    parser.add_argument("input", help="movie: TIFF or Zarr with a t axis")
    parser.add_argument("-o", "--outdir", required=True, help="output folder")
    parser.add_argument("--axes", help="axes of INPUT (and --masks), e.g. tyx or tzyx, when the file does not say")
    parser.add_argument("--mode", choices=("auto", "propagate"), default="auto")
    parser.add_argument("--masks", help="auto mode: label movie to link instead of segmenting (no model needed)")
    parser.add_argument("--prompts", help="propagate mode: CSV object_id,y,x,positive of the objects in --start-frame")
    parser.add_argument("--boxes", help="propagate mode: CSV object_id,ymin,xmin,ymax,xmax in --start-frame")
    parser.add_argument("--start-labels", help="propagate mode: label image (y, x) of the objects in --start-frame")
    parser.add_argument("--start-frame", type=int, default=0)
    parser.add_argument("--format", default="ctc", help="comma-separated: ctc, napari, geff (default ctc)")
    parser.add_argument("--linker", choices=("auto", "overlap", "trackastra"), default="auto",
                        help="auto: trackastra if its model is cached or a mirror is set, else overlap")
    parser.add_argument("--trackastra-model", default="general_2d", help="trackastra model name or local folder")
    parser.add_argument("--segmenter", choices=("ais", "classical"), default="ais",
                        help="auto mode without --masks: samzoo's AIS (default) or the classical baseline")
    parser.add_argument("--model", default=None, help="samzoo model for segmentation/propagation")
    parser.add_argument("--max-distance", type=float, help="overlap linker: largest move per frame in pixels")
    parser.add_argument("--lineage-plot", help="also write a lineage-tree PNG here")
    parser.set_defaults(func=run)


def _formats(text: str) -> list[str]:
    formats = [f.strip().lower() for f in text.split(",") if f.strip()]
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise InputError(f"unknown --format {', '.join(unknown) or text!r}; choose from {', '.join(FORMATS)}")
    return formats


def _start(args):
    """The objects to propagate: a label image or {id: Prompt}."""
    from samzoo.segmentation.predictor import Prompt

    if args.start_labels:
        return np.asarray(read_image(args.start_labels, axes="yx").values)
    points = read_points_csv(args.prompts) if args.prompts else {}
    boxes = read_boxes_csv(args.boxes) if args.boxes else {}
    if not points and not boxes:
        raise InputError("--mode propagate needs --prompts, --boxes or --start-labels")
    empty = (np.zeros((0, 2)), np.zeros(0, dtype=int))
    return {i: Prompt(points=points.get(i, empty)[0], point_labels=points.get(i, empty)[1], box=boxes.get(i))
            for i in sorted(set(points) | set(boxes))}


def run(args: argparse.Namespace) -> int:
    from samzoo.tracking import lineage_plot, to_ctc, to_geff, to_napari, track

    formats = _formats(args.format)
    image = read_image(args.input, axes=args.axes)
    if "t" not in image.dims:
        raise InputError(f"{args.input} has axes {''.join(image.dims)}: tracking needs a t axis "
                         "(pass --axes, e.g. tyx)")
    image = image.transpose("t", ..., "y", "x", *(["c"] if "c" in image.dims else []))
    images = np.asarray(image.values)
    masks = None
    if args.masks:
        masks = np.asarray(read_image(args.masks, axes=args.axes).values)
        if masks.shape != images.shape[:masks.ndim]:
            raise InputError(f"--masks {masks.shape} do not match the movie {images.shape}")
    model = None
    if args.masks is None or args.mode == "propagate":
        from samzoo.models.load import load_model

        if args.mode == "propagate" or args.segmenter == "ais":
            model = load_model(args.model)
    options = {} if args.max_distance is None else {"max_distance": args.max_distance}
    start = _start(args) if args.mode == "propagate" else None
    result = track(images, masks, mode=args.mode, model=model, start=start, start_frame=args.start_frame,
                   linker=args.linker, trackastra_model=args.trackastra_model, segmenter=args.segmenter,
                   zstack="z" in image.dims, **options)
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    if "ctc" in formats:
        to_ctc(result.graph, result.masks, outdir)
    if "napari" in formats:
        data, parents = to_napari(result.graph, result.masks)
        header = "track_id,t," + ",".join("zyx"[-(data.shape[1] - 2):]) if len(data) else "track_id,t,y,x"
        with atomic_path(outdir / "napari_tracks.csv") as tmp:
            np.savetxt(tmp, data, delimiter=",", header=header, comments="", fmt="%.6g")
        with atomic_path(outdir / "napari_graph.json") as tmp:
            tmp.write_text(json.dumps({str(k): v for k, v in parents.items()}))
    if "geff" in formats:
        to_geff(result.graph, outdir / "tracks.geff", masks=result.masks)
    parents, counts = np.unique(result.tracks[result.tracks[:, 3] > 0, 3], return_counts=True)
    n_div = int((counts >= 2).sum())  # a parent with one child is a bridged gap, not a division
    if args.lineage_plot:
        lineage_plot(result.graph, args.lineage_plot,
                     title=f"{Path(args.input).name}: {len(result.tracks)} tracks, {n_div} divisions ({result.linker})")
    print(f"tracks:  {len(result.tracks)} track segments, {n_div} divisions over {len(result.masks)} frames "
          f"(linker: {result.linker})")
    print(f"output:  {outdir} ({', '.join(formats)})")
    if args.lineage_plot:
        print(f"lineage: {args.lineage_plot}")
    return 0
