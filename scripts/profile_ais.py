"""Where AIS spends its time: encoder, AIS decoder, post-processing (watershed and relabelling).

On held-out real planes (frame 16 of the HeLa and bacteria movies, as ``scripts/bench_quality.py``
holds them out): the crops of the model's input size that ``scripts/bench_automatic.py`` uses,
and the top-left 512 x 512 of each plane (tiled: nine 256 tiles with the default halo). Each
stage is timed on its own, summed over the images, best of ``--repeats`` passes (the least
disturbed by other jobs on the machine). Then the whole of ``segment_ais`` on the 512 x 512
planes once per number of views (test-time augmentation, ``samzoo segment --views``), as a ratio
to one view measured in the same run. ``--cprofile`` adds a cProfile of one pass over the
crops, sorted by own time.

    OMP_NUM_THREADS=1 python scripts/profile_ais.py [--model samzoo_tiny_lm] [--repeats 5] [--cprofile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

import numpy as np
import torch

from samzoo.models.load import load_model
from samzoo.segmentation.ais import ais_maps, segment_ais
from samzoo.segmentation.embeddings import compute_embeddings
from samzoo.segmentation.views import VIEWS
from samzoo.segmentation.watershed import watershed_from_maps

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_automatic import _crops, _uint8_rgb  # noqa: E402  (the same crops as the benchmark)
from bench_quality import held_out_planes  # noqa: E402


def split(model, images: list[np.ndarray], repeats: int) -> dict[str, float]:
    """Seconds per stage, summed over ``images``, best of ``repeats`` passes."""
    best = {"encoder": np.inf, "AIS decoder": np.inf, "post-processing": np.inf}
    for _ in range(repeats):
        spent = dict.fromkeys(best, 0.0)
        for image in images:
            start = time.perf_counter()
            embeddings = compute_embeddings(model, image, cache=False)
            encoded = time.perf_counter()
            maps = ais_maps(model, embeddings)
            decoded = time.perf_counter()
            watershed_from_maps(maps)
            done = time.perf_counter()
            spent["encoder"] += encoded - start
            spent["AIS decoder"] += decoded - encoded
            spent["post-processing"] += done - decoded
        best = {k: min(best[k], spent[k]) for k in best}
    return best


def views_times(model, images: list[np.ndarray], repeats: int) -> dict[int, float]:
    """Seconds of ``segment_ais`` summed over ``images`` for each number of views, best of ``repeats``."""
    times = {}
    for views in VIEWS:
        best = np.inf
        for _ in range(repeats):
            start = time.perf_counter()
            for image in images:  # uncached, as every further view is
                segment_ais(model, image, embeddings=compute_embeddings(model, image, cache=False), views=views)
            best = min(best, time.perf_counter() - start)
        times[views] = best
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="registry name or .safetensors (default: samzoo's own)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cprofile", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    crops = [c[1] for c in _crops(["hela", "bacteria"], 1, model.input_size, 4)]
    planes = [_uint8_rgb(held_out_planes(name)[0][0][:512, :512]) for name in ("hela", "bacteria")]
    compute_embeddings(model, np.zeros((64, 64), np.uint8), cache=False)  # warm-up, not timed
    watershed_from_maps(ais_maps(model, compute_embeddings(model, crops[0], cache=False)))
    n_tiles = len(compute_embeddings(model, planes[0], cache=False).tiles)
    print(f"model {model.name}, {torch.get_num_threads()} torch thread(s); seconds summed over the images, "
          f"best of {args.repeats}")
    for name, images in ((f"{len(crops)} crops of {model.input_size}", crops),
                         (f"{len(planes)} planes of 512 x 512 ({n_tiles} tiles each)", planes)):
        times = split(model, images, args.repeats)
        parts = ", ".join(f"{k} {v:.3f}" for k, v in times.items())
        ratio = sum(times.values()) / times["encoder"]
        print(f"{name}: {parts}; AIS total = {ratio:.2f}x encoder")
    views = views_times(model, planes, args.repeats)
    print(f"segment_ais on the {len(planes)} planes of 512 x 512, by views: "
          + ", ".join(f"{n}: {t:.3f} s ({t / views[1]:.2f}x)" for n, t in views.items()))
    if args.cprofile:
        profile = cProfile.Profile()
        profile.enable()
        for image in crops:
            watershed_from_maps(ais_maps(model, compute_embeddings(model, image, cache=False)))
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    main()
