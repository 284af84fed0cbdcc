"""Quality benchmark on the held-out frames of ../shared/data (never trained on).

Held out: frames 16-19 of the HeLa, bacteria and CHO movies (every z-slice of CHO) and z-slices
25-30 of the 3D nuclei. For each data set and overall it prints:

- AIS mSA / SA50 of the model, and of the classical baseline (Gaussian + Otsu + distance
  watershed) computed in the same run;
- mean IoU from one positive point per object, and from one box per object;
- with --corrections N: the mean IoU after each of N corrective clicks (starting from a point).

    python scripts/bench_quality.py [--model samzoo_tiny_lm | path.safetensors] [--corrections 7]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import tifffile

from samzoo.evaluation import evaluate_many, interactive_iou
from samzoo.models.load import load_model
from samzoo.segmentation.ais import segment_ais
from samzoo.segmentation.classical import classical_baseline
from samzoo.segmentation.embeddings import compute_embeddings

SHARED = Path(os.environ.get("SAMZOO_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "data"
HELD_OUT = {  # name: (image file, label file, planes, objects darker than background)
    "hela": ("Fluo_Hela_02_img.tif", "Fluo_Hela_02_ERR_SEG.tif", [16, 17, 18, 19], False),
    "bacteria": ("trpL_150310-11_img.tif", "trpL_150310-11_mask.tif", [16, 17, 18, 19], True),
    "cho": ("Fluo-N3DH-CHO_02_img.tif", "Fluo-N3DH-CHO_02_ERR_SEG.tif", [16, 17, 18, 19], False),
    "nuclei3d": ("nuclei3d_img.tif", "nuclei3d_mask.tif", [25, 26, 27, 28, 29, 30], False),
}


def held_out_planes(name: str):
    """``(image, labels)`` 2D pairs of one data set's held-out planes."""
    img_file, lab_file, planes, _ = HELD_OUT[name]
    images, labels = tifffile.imread(SHARED / img_file)[planes], tifffile.imread(SHARED / lab_file)[planes]
    images, labels = images.reshape((-1,) + images.shape[-2:]), labels.reshape((-1,) + labels.shape[-2:])
    return [(i, l.astype(np.int32)) for i, l in zip(images, labels) if l.max() > 0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="registry name or .safetensors (default: samzoo's own)")
    parser.add_argument("--corrections", type=int, default=0, help="corrective clicks to evaluate (e.g. 7)")
    parser.add_argument("--datasets", default=",".join(HELD_OUT))
    args = parser.parse_args()
    model = load_model(args.model)
    rows, curves, pooled = [], [], {"ais": [], "baseline": []}
    for name in args.datasets.split(","):
        pairs = held_out_planes(name)
        ais_pairs, base_pairs, point, box = [], [], [], []
        start = time.time()
        for image, labels in pairs:
            emb = compute_embeddings(model, image, cache=False)
            ais_pairs.append((segment_ais(model, image, embeddings=emb), labels))
            base_pairs.append((classical_baseline(image, dark_objects=HELD_OUT[name][3]), labels))
            point.append(interactive_iou(model, image, labels, start="point", n_corrections=args.corrections,
                                         embeddings=emb))
            box.append(interactive_iou(model, image, labels, start="box", n_corrections=0, embeddings=emb)[0])
        seconds = time.time() - start
        _, ais = evaluate_many(ais_pairs)
        _, base = evaluate_many(base_pairs)
        pooled["ais"] += ais_pairs
        pooled["baseline"] += base_pairs
        curve = np.nanmean(point, axis=0)
        curves.append((name, curve))
        rows.append((name, len(pairs), ais["msa"], ais["sa50"], base["msa"], base["sa50"], curve[0],
                     float(np.nanmean(box)), seconds))
    _, ais = evaluate_many(pooled["ais"])
    _, base = evaluate_many(pooled["baseline"])
    rows.append(("overall", sum(r[1] for r in rows), ais["msa"], ais["sa50"], base["msa"], base["sa50"],
                 float(np.mean([r[6] for r in rows])), float(np.mean([r[7] for r in rows])),
                 sum(r[8] for r in rows)))
    print(f"model: {model.name} ({model.config.architecture}, input {model.input_size}); held-out planes only")
    header = ("data", "planes", "AIS mSA", "AIS SA50", "base mSA", "base SA50", "point IoU", "box IoU", "seconds")
    print(" | ".join(f"{h:>9}" for h in header))
    for r in rows:
        print(" | ".join([f"{r[0]:>9}", f"{r[1]:>9}"] + [f"{v:>9.3f}" for v in r[2:8]] + [f"{r[8]:>9.1f}"]))
    print("overall point/box IoU are means over data sets; overall mSA pools every object.")
    print(f"AIS mSA - baseline mSA (overall): {ais['msa'] - base['msa']:+.3f}")
    if args.corrections:
        print("\nmean IoU after each corrective click (0 = the first point only):")
        for name, curve in curves:
            print(f"{name:>9}: " + " ".join(f"{v:.3f}" for v in curve))


if __name__ == "__main__":
    main()
