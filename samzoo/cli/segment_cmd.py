"""``samzoo segment``: prompt or automatic segmentation of an image, a movie or a volume."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import xarray as xr
from tqdm import tqdm

from samzoo.errors import InputError
from samzoo.io import read_boxes_csv, read_image, read_points_csv, write_labels, write_overlay_png
from samzoo.models.load import load_model
from samzoo.segmentation.ais import segment_ais
from samzoo.segmentation.automatic import segment_amg, segment_apg
from samzoo.segmentation.embeddings import compute_embeddings
from samzoo.segmentation.predictor import Prompt, paint_labels, predict
from samzoo.segmentation.volume import merge_slices


AUTOMATIC = {"ais": segment_ais, "amg": segment_amg, "apg": segment_apg}


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "segment", help="segment an image with prompts or automatically",
        description="Segment INPUT and write a label image. With --points/--boxes each object_id of the CSVs "
                    "becomes that label; without prompts every object is found automatically (AIS). "
                    "Movies and volumes (t/z axes) are segmented plane by plane; in volumes, overlapping objects "
                    "of neighbouring slices are joined into 3D objects.")
    parser.add_argument("input", help="TIFF, PNG/JPEG or Zarr image")
    parser.add_argument("-o", "--output", required=True, help="label image to write (.tif or .zarr)")
    parser.add_argument("--model", default=None, help="registry name, nickname or .safetensors file "
                                                       "(default: samzoo's own model, offline)")
    parser.add_argument("--points", help="CSV with columns object_id,y,x,positive")
    parser.add_argument("--boxes", help="CSV with columns object_id,ymin,xmin,ymax,xmax")
    parser.add_argument("--axes", help="axes of INPUT, e.g. yx, tyx, zyx, yxc (needed when the file does not say)")
    parser.add_argument("--mode", choices=sorted(AUTOMATIC), default="ais",
                        help="automatic mode without prompts: ais (decoder + watershed, fastest), amg (grid of "
                             "point prompts), apg (AIS instances refined by SAM prompts)")
    parser.add_argument("--tile", type=int, help="tile size (default: the model input size)")
    parser.add_argument("--halo", type=int, help="tile overlap in pixels (default: tile / 8)")
    parser.add_argument("--overlay", help="overlay PNG to write (default: OUTPUT with _overlay.png)")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    parser.add_argument("--no-merge-z", action="store_true",
                        help="volumes: keep per-slice labels instead of joining them into 3D objects")
    parser.add_argument("--min-z-extent", type=int, default=2, help="volumes: drop 3D objects on fewer slices")
    parser.set_defaults(func=run)


def _prompts(args) -> dict[int, Prompt]:
    points = read_points_csv(args.points) if args.points else {}
    boxes = read_boxes_csv(args.boxes) if args.boxes else {}
    prompts = {}
    for object_id in sorted(set(points) | set(boxes)):
        pts, labels = points.get(object_id, (np.zeros((0, 2)), np.zeros(0, dtype=int)))
        prompts[object_id] = Prompt(points=pts, point_labels=labels, box=boxes.get(object_id))
    return prompts


def run(args: argparse.Namespace) -> int:
    image = read_image(args.input, axes=args.axes)
    prompts = _prompts(args) if (args.points or args.boxes) else None
    planes = [d for d in image.dims if d in ("t", "z")]
    if prompts is not None and planes:
        raise InputError(f"prompts need a 2D image, but {args.input} has axes {''.join(image.dims)}; "
                         "select one plane first")
    model = load_model(args.model)
    cache = not args.no_cache
    labels = np.zeros([image.sizes[d] for d in image.dims if d != "c"], dtype=np.uint32)
    flat = labels.reshape((-1,) + labels.shape[-2:])  # one 2D plane per t/z position (a view)
    stack = image.stack(plane=planes) if planes else image.expand_dims(plane=[0])

    def plane_image(i: int) -> np.ndarray:
        return np.asarray(stack.isel(plane=i).transpose("y", "x", ...).values)

    for i in tqdm(range(len(flat)), desc="planes", disable=len(flat) == 1):
        plane = plane_image(i)
        embeddings = compute_embeddings(model, plane, tile_size=args.tile, halo=args.halo, cache=cache,
                                        progress=len(flat) == 1)
        if prompts is not None:
            flat[i] = paint_labels(predict(model, embeddings, prompts), embeddings.shape)
        else:
            flat[i] = AUTOMATIC[args.mode](model, plane, embeddings=embeddings)
    dims = tuple(d for d in image.dims if d != "c")
    if "z" in dims and not args.no_merge_z:
        volumes = labels.reshape((-1,) + labels.shape[-3:])  # one (z, y, x) volume per time point
        for v in range(len(volumes)):
            volumes[v] = merge_slices(volumes[v], min_z_extent=args.min_z_extent)
    out = xr.DataArray(labels, dims=dims, coords={k: v for k, v in image.coords.items() if k in dims},
                       attrs={**image.attrs, "model": model.name})
    path = write_labels(out, args.output)
    overlay = Path(args.overlay) if args.overlay else path.with_name(path.stem + "_overlay.png")
    middle = len(flat) // 2
    write_overlay_png(plane_image(middle), flat[middle], overlay)
    unit = 3 if "z" in dims else 2  # count 3D objects per volume, 2D objects per plane
    n = sum(len(np.unique(u)) - 1 for u in labels.reshape((-1,) + labels.shape[-unit:]))
    print(f"labels:  {path} ({n} objects in {len(flat)} plane(s), model {model.name})")
    print(f"overlay: {overlay}")
    return 0
