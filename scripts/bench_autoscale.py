"""How well ``scale="auto"`` finds the object size, on held-out planes of every source.

For evenly spaced held-out planes of each source of ``scripts/default_data.py``, the ideal scale
is the model's preferred diameter over the ground truth's median equivalent diameter; the
estimate is :func:`samzoo.segmentation.autoscale.estimate_scale`. Printed: per plane both
scales and their ratio (1 = perfect), then the share of planes within 1.5x and the seconds per
estimate.

    python scripts/bench_autoscale.py [--model shipped|FILE] [--per-source 4]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from default_data import raw_planes  # noqa: E402

from samzoo.models.load import load_model  # noqa: E402
from samzoo.segmentation.autoscale import estimate_scale, model_diameter  # noqa: E402
from samzoo.segmentation.rescale import object_diameter  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="shipped")
    parser.add_argument("--per-source", type=int, default=4)
    args = parser.parse_args()
    model = load_model(None if args.model == "shipped" else args.model)
    target = model_diameter(model)
    ratios, seconds = [], []
    print(f"model {model.name} ({model.weights_hash[:15]}), preferred diameter {target:g} px\n")
    print("| source | plane | objects (px) | ideal scale | auto scale | ratio |")
    print("|---|---|---|---|---|---|")
    for name, planes in raw_planes("val").items():
        for i in np.linspace(0, len(planes) - 1, min(args.per_source, len(planes))).astype(int):
            image, labels, plane = planes[i]
            start = time.perf_counter()
            scale = estimate_scale(model, image)
            seconds.append(time.perf_counter() - start)
            diameter = object_diameter(labels)
            ratios.append(scale * diameter / target)
            print(f"| {name} | {plane.split('/')[-1]} | {diameter:.1f} | {target / diameter:.2f} | {scale:.2f} "
                  f"| {ratios[-1]:.2f} |", flush=True)
    ratios = np.array(ratios)
    within = np.mean(np.abs(np.log(ratios)) < np.log(1.5))
    print(f"\n{len(ratios)} planes: within 1.5x of the ideal scale {within:.0%}, within 1.25x "
          f"{np.mean(np.abs(np.log(ratios)) < np.log(1.25)):.0%}; median {np.median(seconds):.2f} s per estimate")


if __name__ == "__main__":
    main()
