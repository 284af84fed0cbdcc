"""``samzoo evaluate PRED GT``: segmentation accuracy per image and overall."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from samzoo.errors import InputError
from samzoo.evaluation import evaluate_many

LABEL_SUFFIXES = (".tif", ".tiff", ".zarr", ".png")
COLUMNS = ("msa", "sa50", "precision", "recall", "n_pred", "n_gt")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="segmentation accuracy of predicted labels against ground truth",
        description="Print mSA (mean of TP/(TP+FP+FN) over IoU 0.50:0.05:0.95), SA50, precision and recall "
                    "per image and overall. PRED and GT are label files (a stack counts as one image per plane) "
                    "or folders of files with matching names.")
    parser.add_argument("pred")
    parser.add_argument("gt")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def _planes(path: Path) -> list[tuple[str, np.ndarray]]:
    """Every 2D plane of a label image (TIFF, Zarr, PNG; or of each in a folder), named for the table."""
    import tifffile

    from samzoo.io import read_image

    if path.is_dir() and path.suffix != ".zarr":
        files = sorted(f for f in path.iterdir() if f.suffix.lower() in LABEL_SUFFIXES or f.name.endswith(".ome.zarr"))
        return [plane for f in files for plane in _planes(f)]
    if not path.exists():
        raise InputError(f"{path} does not exist")
    if path.suffix.lower() in (".tif", ".tiff"):
        # plain TIFF pages: a label stack needs no axes guess, every page is one image
        data = tifffile.imread(path)
    else:
        data = np.asarray(read_image(path).values)
    data = data.reshape((-1,) + data.shape[-2:])
    return [(f"{path.name}[{i}]" if len(data) > 1 else path.name, plane) for i, plane in enumerate(data)]


def run(args: argparse.Namespace) -> int:
    pred, gt = _planes(Path(args.pred)), _planes(Path(args.gt))
    if len(pred) != len(gt):
        raise InputError(f"{args.pred} has {len(pred)} images but {args.gt} has {len(gt)}")
    for (name_p, p), (name_g, g) in zip(pred, gt):
        if p.shape != g.shape:
            raise InputError(f"{name_p} has shape {p.shape} but {name_g} has shape {g.shape}")
    per_image, overall = evaluate_many((p, g) for (_, p), (_, g) in zip(pred, gt))
    if args.json:
        print(json.dumps({"images": dict(zip([n for n, _ in pred], per_image)), "overall": overall}, indent=1))
        return 0
    rows = [("image",) + COLUMNS] + [(n,) + tuple(_fmt(m[c]) for c in COLUMNS)
                                     for (n, _), m in zip(pred, per_image)]
    rows.append(("overall",) + tuple(_fmt(overall[c]) for c in COLUMNS))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))))
    return 0


def _fmt(value) -> str:
    return str(value) if isinstance(value, int) else f"{value:.3f}"
