"""How far AMG can get by filtering its masks better: the ceiling of the filters (issue 17).

AMG keeps a decoder mask where its predicted IoU and stability reach a threshold
(:func:`samzoo.segmentation.automatic.calibrated_thresholds`). If those filters were what held
AMG back on unseen images, a better filter (a recalibrated or retrained IoU head) would close the
gap to AIS. This measures the most any filter can give: on the held-out planes of every source
(``scripts/default_data.py``, at the scale ``--scale auto`` picks), AMG's masks are collected
with thresholds far below the usual ones (``--low``), and an *oracle* keeps exactly those that
match a ground-truth object (IoU >= 0.5), which no filter without the labels can beat by more
than the masks it keeps at IoU 0.5-0.7. Printed per source, with AIS (as ``samzoo segment``)
and AMG (its defaults) from the same embeddings:

- ``AMG``: ``segment_amg`` with its defaults;
- ``oracle (default masks)``: the oracle on the masks AMG accepts by default;
- ``oracle (low thresholds)``: the oracle on the masks accepted at ``--low``;
- ``low thresholds``: those masks unfiltered (what lowering the thresholds alone gives).

All painted the same way (:func:`samzoo.segmentation.automatic.paint_masks`) and scored by
mSA on the image's grid.

    python scripts/bench_amg_ceiling.py [--images 3] [--low 0.3 0.5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from default_data import CTC, DSB_KINDS, MOVIES, raw_planes  # noqa: E402

from samzoo.evaluation import evaluate_many  # noqa: E402
from samzoo.models.load import load_model  # noqa: E402
from samzoo.segmentation.ais import segment_ais  # noqa: E402
from samzoo.segmentation.automatic import amg_masks, paint_masks  # noqa: E402
from samzoo.segmentation.autoscale import resolve_scale  # noqa: E402
from samzoo.segmentation.embeddings import compute_embeddings  # noqa: E402
from samzoo.segmentation.rescale import labels_to_shape, rescale_image  # noqa: E402
from samzoo.segmentation.views import resolve_views  # noqa: E402

SOURCES = [*MOVIES, *CTC, *DSB_KINDS]
MIN_SIZE, NMS_IOU = 25, 0.7  # segment_amg's defaults


def matches_truth(mask, truth: np.ndarray, areas: np.ndarray) -> bool:
    """Whether ``mask`` (an AMGMask) overlaps one object of ``truth`` by IoU >= 0.5."""
    y0, x0, y1, x1 = mask.box
    inside = truth[y0:y1, x0:x1][mask.mask]
    ids, overlap = np.unique(inside[inside > 0], return_counts=True)
    return bool(len(ids)) and bool(np.any(overlap / (mask.area + areas[ids] - overlap) >= 0.5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3, help="held-out images per source (the first of the "
                                                                "8 evenly spaced that bench_generalist uses)")
    parser.add_argument("--low", type=float, nargs=2, default=(0.3, 0.5), metavar=("IOU", "STABILITY"),
                        help="the low predicted-IoU and stability thresholds")
    parser.add_argument("--sources", default=",".join(SOURCES))
    args = parser.parse_args()
    model = load_model()
    views = resolve_views(model, None)
    columns = ("AIS", "AMG", "oracle (default masks)", "oracle (low thresholds)", "low thresholds")
    print(f"held-out images per source: {args.images}; low thresholds: predicted IoU {args.low[0]}, "
          f"stability {args.low[1]}; AIS with {views} view(s)")
    print("| source | " + " | ".join(columns) + " | seconds |")
    print("|---" * (len(columns) + 2) + "|")
    table = []
    for name, planes in raw_planes("val", args.sources.split(",")).items():
        planes = [planes[int(i)] for i in np.linspace(0, len(planes) - 1, min(8, len(planes)))][:args.images]
        pairs = {c: [] for c in columns}
        start = time.time()
        for image, labels, _ in planes:
            labels = labels.astype(np.int32)
            scale = resolve_scale(model, image, "auto")
            resized = image if scale == 1 else rescale_image(image, scale)
            truth = labels_to_shape(labels, resized.shape[:2])
            areas = np.bincount(truth.ravel())
            emb = compute_embeddings(model, resized, cache=False)
            found = {"AIS": segment_ais(model, resized, embeddings=emb, views=views)}
            usual = amg_masks(model, emb, min_size=MIN_SIZE)
            low = amg_masks(model, emb, min_size=MIN_SIZE, pred_iou_threshold=args.low[0],
                            stability_threshold=args.low[1])
            kept = {"AMG": usual, "oracle (default masks)": [m for m in usual if matches_truth(m, truth, areas)],
                    "oracle (low thresholds)": [m for m in low if matches_truth(m, truth, areas)],
                    "low thresholds": low}
            for column, masks in kept.items():
                found[column] = paint_masks(masks, resized.shape[:2], nms_iou=NMS_IOU, min_size=MIN_SIZE)
            for column in columns:
                pairs[column].append((labels_to_shape(found[column], labels.shape), labels))
        row = [evaluate_many(pairs[c])[1]["msa"] for c in columns]
        table.append(row)
        print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in row) + f" | {time.time() - start:.0f} |", flush=True)
    mean = np.mean(table, axis=0)
    print("| **mean** | " + " | ".join(f"**{v:.3f}**" for v in mean) + " | |")
    print("| **/ AIS** | " + " | ".join(f"{v / mean[0]:.2f}x" for v in mean) + " | |")


if __name__ == "__main__":
    main()
