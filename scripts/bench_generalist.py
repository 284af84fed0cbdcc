"""How the default model does on held-out data of every source and kind (issues 17 and 22).

For each held-out source of ``scripts/default_data.py`` (the last frames of every movie, every
5th DSB2018 image of each kind, the CTC GOWT1 sequence that no model was trained on, and three
sets shipped inside PyPI packages, also never trained on and fetched on first use: see
``scripts/registry_data.py``) and
for each model given: AIS mSA, AMG mSA, one positive point per object (mean IoU), one box per
object (mean IoU), and two references computed in the same run: the classical baseline's mSA
and the IoU of each object's box itself taken as its mask ("filled box": what a box prompt
scores with no model at all, about 0.78 for round objects; a box mask must beat it). Results are
cached per model file hash in ``--out`` (JSON), so a rerun only computes what is new.

``--scale`` segments every image at that scale, or ``auto`` at the scale
:func:`samzoo.segmentation.autoscale.estimate_scale` picks per image (as ``samzoo segment
--scale auto``). AIS and AMG labels are brought back to the image's grid and scored there;
prompt IoUs are scored on the resized grid (image and ground truth resized alike). ``--views``:
AIS maps averaged over that many turned and mirrored views, by default as ``samzoo segment``
(2 for samzoo's own models; AMG and the prompts are not affected).

    python scripts/bench_generalist.py --models shipped,runs/default/best.safetensors [--max-images 12]
    python scripts/bench_generalist.py --models shipped --scale auto
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from default_data import CTC, DSB_KINDS, MOVIES, raw_planes  # noqa: E402
from registry_data import UNSEEN_SOURCES  # noqa: E402

from samzoo.evaluation import evaluate_many, interactive_iou  # noqa: E402
from samzoo.models.load import load_model  # noqa: E402
from samzoo.segmentation.ais import segment_ais  # noqa: E402
from samzoo.segmentation.automatic import segment_amg  # noqa: E402
from samzoo.segmentation.autoscale import resolve_scale  # noqa: E402
from samzoo.segmentation.classical import classical_baseline  # noqa: E402
from samzoo.segmentation.embeddings import compute_embeddings  # noqa: E402
from samzoo.segmentation.rescale import labels_to_shape, rescale_image  # noqa: E402
from samzoo.segmentation.views import resolve_views  # noqa: E402
from skimage.measure import regionprops  # noqa: E402

SOURCES = [*MOVIES, *CTC, *DSB_KINDS, *UNSEEN_SOURCES]
KIND_GROUPS = {  # the kinds the colour/DSB issue reports, and the unseen real movie
    "fluo_small": ["fluo_small"], "fluo_large": ["fluo_large", "fluo_other"],
    "grey_brightfield": ["brightfield", "bacteria"], "rgb_tissue": ["tissue_rgb"], "unseen_gowt1": ["gowt1"],
    "unseen_registry": list(UNSEEN_SOURCES),  # the sets PyPI packages ship, never trained on
}


def _evenly(items: list, n: int) -> list:
    if len(items) <= n:
        return items
    return [items[int(i)] for i in np.linspace(0, len(items) - 1, n)]


def score_source(model, planes, amg_images: int, scale: str = "1", views: int = 1) -> dict:
    """Per-source scores; labels of each image pooled for mSA."""
    ais, amg, base, point, box, filled, scales = [], [], [], [], [], [], []
    start = time.time()
    for i, (image, labels, _) in enumerate(planes):
        labels = labels.astype(np.int32)
        grey = image if image.ndim == 2 else image[..., :3].mean(-1)
        filled.append(np.mean([r.area / r.area_bbox for r in regionprops(labels)]))
        base.append((classical_baseline(grey, dark_objects=bool(np.median(grey) > grey.mean())), labels))
        s = resolve_scale(model, image, scale)
        scales.append(s)
        resized = image if s == 1 else rescale_image(image, s)
        resized_labels = labels_to_shape(labels, resized.shape[:2])
        emb = compute_embeddings(model, resized, cache=False)
        ais.append((labels_to_shape(segment_ais(model, resized, embeddings=emb, views=views), labels.shape), labels))
        if i < amg_images:
            amg.append((labels_to_shape(segment_amg(model, resized, embeddings=emb), labels.shape), labels))
        point.append(interactive_iou(model, resized, resized_labels, start="point", n_corrections=0, embeddings=emb)[0])
        box.append(interactive_iou(model, resized, resized_labels, start="box", n_corrections=0, embeddings=emb)[0])
    return {"images": len(planes), "scale_median": float(np.median(scales)), "ais_msa": evaluate_many(ais)[1]["msa"],
            "amg_msa": evaluate_many(amg)[1]["msa"] if amg else float("nan"),
            "baseline_msa": evaluate_many(base)[1]["msa"],
            "point_iou": float(np.nanmean(point)), "box_iou": float(np.nanmean(box)),
            "filled_box_iou": float(np.mean(filled)),
            "seconds": time.time() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="shipped", help="comma-separated: 'shipped' or .safetensors files")
    parser.add_argument("--max-images", type=int, default=12, help="held-out images per source (evenly spaced)")
    parser.add_argument("--amg-images", type=int, default=4, help="of those, how many also run AMG")
    parser.add_argument("--sources", default=",".join(SOURCES))
    parser.add_argument("--scale", default="1", help="a number, or 'auto' (per image)")
    parser.add_argument("--views", type=int, default=None,
                        help="AIS views (test-time augmentation); default: as samzoo segment (2 for samzoo's models)")
    parser.add_argument("--out", default="runs/bench_generalist.json")
    args = parser.parse_args()
    out = Path(args.out)
    cache = json.loads(out.read_text()) if out.exists() else {}
    planes = {k: _evenly(v, args.max_images) for k, v in raw_planes("val", args.sources.split(",")).items()}
    table = {}
    for spec in args.models.split(","):
        model = load_model(None if spec == "shipped" else spec)
        key = f"{model.weights_hash}|{args.max_images}|{args.amg_images}"
        views = resolve_views(model, args.views)
        key += "" if args.scale == "1" else f"|scale={args.scale}"  # keys of earlier runs stay valid
        key += "" if views == 1 else f"|views={views}"
        results = cache.setdefault(key, {})
        for name, items in planes.items():
            if name not in results:
                results[name] = score_source(model, items, args.amg_images, args.scale, views)
                print(f"{spec} {name}: " + ", ".join(f"{k}={v:.3f}" for k, v in results[name].items()), flush=True)
                out.parent.mkdir(parents=True, exist_ok=True)
                tmp = out.with_suffix(".tmp")
                tmp.write_text(json.dumps(cache, indent=1))
                tmp.replace(out)
        table[spec] = results
    metrics = ("ais_msa", "amg_msa", "point_iou", "box_iou", "baseline_msa")
    print(f"\nheld-out images per source: up to {args.max_images} (AMG on {args.amg_images})")
    print("| source | " + " | ".join(f"{spec.split('/')[-2] if '/' in spec else spec}: {m}" for spec in table for m in metrics[:4]) + " | baseline mSA | filled box IoU |")
    for name in planes:
        cells = [f"{table[spec][name][m]:.3f}" for spec in table for m in metrics[:4]]
        reference = next(iter(table.values()))[name]
        print(f"| {name} | " + " | ".join(cells) + f" | {reference['baseline_msa']:.3f} | {reference.get('filled_box_iou', float('nan')):.3f} |")
    for group, members in KIND_GROUPS.items():
        members = [m for m in members if m in planes]
        if members:
            cells = [f"{np.mean([table[spec][m][k] for m in members]):.3f}" for spec in table for k in metrics[:4]]
            print(f"| **{group}** | " + " | ".join(cells) + " | |")
    cells = [f"{np.mean([table[spec][m][k] for m in planes]):.3f}" for spec in table for k in metrics[:4]]
    print("| **mean over sources** | " + " | ".join(cells) + " | |")


if __name__ == "__main__":
    main()
