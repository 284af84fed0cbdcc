"""AIS and AMG wall time, samzoo against micro-sam 1.8.14: same weights, same images, same run.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_microsam_speed.py     # micro-sam in ../msam-venv

- Weights: ``parity_microsam.make_weights`` (seeded random vit_b in micro-sam's formats: a training
  checkpoint with its AIS decoder for AIS, and the AMG file whose mask decoder gives blobs around
  each point for AMG; the image encoder is the same).
- Images: real data, frames of the HeLa movie (``Fluo_Hela_02_img.tif``, 700 x 1100) laid side by side
  and cropped to 1024 x 1024 (frames 0-1) and 2048 x 2048 (frames 0-5).
- 1024 x 1024: one tile on both sides (micro-sam without ``tile_shape``). 2048 x 2048: tiled, micro-sam
  with ``tile_shape=(896, 896), halo=(64, 64)`` and samzoo with ``tile_size=1024, halo=64``: the same
  nine tiles (``--tile``, ``--halo`` change both).
- micro-sam: ``get_predictor_and_segmenter(segmentation_mode="ais"/"amg", is_tiled=...)``, then what
  ``automatic_instance_segmentation`` does: ``precompute_image_embeddings``, ``initialize``, ``generate``
  with their defaults (``generate(tile_shape, halo)`` for tiled AIS, with ``n_threads=1``: its parallel
  watershed would otherwise use every core). samzoo: ``compute_embeddings``
  (no cache), ``segment_ais``, ``segment_amg`` (micro-sam's AMG, the default for SAM-family models).
- One CPU thread each (``torch.set_num_threads(1)``), one after the other, image by image (micro-sam,
  then samzoo, then the next image), so that a change in the machine's load hits both sides alike.
  The embeddings are computed once per image and side and timed apart; AIS and AMG are timed after
  them; a total is embeddings plus the step. Wall time, and the process's CPU time beside it (less
  sensitive to other processes on a shared machine).
- micro-sam's AMG decodes 1024 prompts per tile, about 6 minutes per tile here: on the 2048 x 2048
  image both sides run AMG on the tiles in ``--amg-tiles`` only (default: the middle one, 1024 x 1024),
  through micro-sam's own ``tiles_in_mask`` (what a foreground mask does) and the same tiles in samzoo.

The table (seconds, and micro-sam / samzoo) is printed and written to ``OUT/speed.json``; the agreement of
the two sides' labels (fraction of micro-sam's objects matched at IoU >= 0.9) is printed beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import parity_microsam as parity  # noqa: E402

ROOT = HERE.parent


def hela_mosaic(size: int) -> np.ndarray:
    """HeLa frames laid row by row (700 x 1100 each) and cropped to ``size`` x ``size``."""
    import tifffile

    data = Path(os.environ.get("SAMZOO_SHARED", ROOT.parent / "shared")) / "data"
    frames = tifffile.imread(data / "Fluo_Hela_02_img.tif")
    rows, cols = -(-size // frames.shape[1]), -(-size // frames.shape[2])
    grid = frames[:rows * cols].reshape(rows, cols, *frames.shape[1:])
    mosaic = np.concatenate([np.concatenate(list(row), axis=1) for row in grid], axis=0)
    return np.ascontiguousarray(mosaic[:size, :size])


class _Clock:
    """Wall and CPU seconds of a block, added to ``timings[key]`` and ``timings[key + ' cpu']``."""

    def __init__(self, timings: dict, key: str):
        self.timings, self.key = timings, key

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def __exit__(self, *exc):
        self.timings[self.key] = time.perf_counter() - self.wall
        self.timings[f"{self.key} cpu"] = time.process_time() - self.cpu


# ---------------------------------------------------------------------------------------------
# micro-sam side (run with micro-sam's Python)


def worker(work: Path, name: str) -> None:
    import torch
    from micro_sam import util
    from micro_sam.automatic_segmentation import get_predictor_and_segmenter

    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    job = json.loads((work / "job.json").read_text())
    results, timings = {}, {}
    for spec in [job["images"][name]]:
        image = np.load(work / f"{name}.npy")
        tiled = spec["tile_shape"] is not None
        tile_shape, halo = (tuple(spec["tile_shape"]), tuple(spec["halo"])) if tiled else (None, None)
        predictor, ais = get_predictor_and_segmenter("vit_b", checkpoint=str(work / "checkpoint.pt"), device="cpu",
                                                     segmentation_mode="ais", is_tiled=tiled)
        _, amg = get_predictor_and_segmenter("vit_b", checkpoint=str(work / job["amg_checkpoint"]), device="cpu",
                                             segmentation_mode="amg", is_tiled=tiled,
                                             points_per_side=job["points_per_side"])
        with _Clock(timings, f"{name}|embeddings"):
            emb = util.precompute_image_embeddings(predictor, image, ndim=2, tile_shape=tile_shape, halo=halo,
                                                   verbose=False, batch_size=1)
        print(f"micro-sam {name}: embeddings {timings[f'{name}|embeddings']:.1f} s", flush=True)
        with _Clock(timings, f"{name}|ais"):  # automatic_instance_segmentation's calls
            if tiled:
                ais.initialize(image=image, image_embeddings=emb, verbose=False, batch_size=1)
                # n_threads=1: one thread, as everything here (its default: one per CPU core)
                results[f"{name}|ais"] = ais.generate(tile_shape=tile_shape, halo=halo, n_threads=1)
            else:
                ais.initialize(image=image, image_embeddings=emb, verbose=False)
                results[f"{name}|ais"] = ais.generate()
        print(f"micro-sam {name}: AIS {timings[f'{name}|ais']:.1f} s", flush=True)
        if spec["amg_tiles"] is not None:  # only these tiles, as a foreground mask would select them
            emb["features"].attrs["tiles_in_mask"] = spec["amg_tiles"]
        with _Clock(timings, f"{name}|amg"):
            amg.initialize(image=image, image_embeddings=emb, verbose=False)
            results[f"{name}|amg"] = amg.generate()
        print(f"micro-sam {name}: AMG {timings[f'{name}|amg']:.1f} s", flush=True)
    np.savez_compressed(work / f"microsam_{name}.npz", **{k: v.astype(np.int32) for k, v in results.items()})
    (work / f"microsam_{name}.json").write_text(json.dumps(timings))


# ---------------------------------------------------------------------------------------------
# samzoo side


def run_samzoo(work: Path, job: dict, name: str, models: dict) -> tuple[dict, dict]:
    import torch

    import samzoo
    from samzoo.segmentation.automatic import segment_amg
    from samzoo.segmentation.embeddings import ImageEmbeddings
    from samzoo.segmentation.tiling import Tile

    torch.set_num_threads(1)
    if not models:
        models.update(ais=samzoo.load_model(work / "checkpoint.pt"),
                      amg=samzoo.load_model(work / job["amg_checkpoint"]))
    results, timings = {}, {}
    spec = job["images"][name]
    image = np.load(work / f"{name}.npy")
    tile = (spec["tile_shape"][0] + 2 * spec["halo"][0], spec["halo"][0]) if spec["tile_shape"] else (None, None)
    with _Clock(timings, f"{name}|embeddings"):
        emb = samzoo.compute_embeddings(models["ais"], image, tile_size=tile[0], halo=tile[1], cache=False)
    print(f"samzoo {name}: embeddings {timings[f'{name}|embeddings']:.1f} s ({len(emb.tiles)} tiles)", flush=True)
    with _Clock(timings, f"{name}|ais"):
        results[f"{name}|ais"] = samzoo.segment_ais(models["ais"], image, embeddings=emb)
    print(f"samzoo {name}: AIS {timings[f'{name}|ais']:.1f} s", flush=True)
    if spec["amg_tiles"] is not None:  # the same tiles as micro-sam's
        tiles = [emb.tiles[i] for i in spec["amg_tiles"]]
        emb = ImageEmbeddings(emb.features[spec["amg_tiles"]], [Tile(j, t.outer, t.inner) for j, t in enumerate(tiles)],
                              emb.image, emb.input_size, emb.key)
    with _Clock(timings, f"{name}|amg"):  # micro-sam's AMG: segment_amg's default for SAM-family models
        results[f"{name}|amg"] = segment_amg(models["amg"], image, embeddings=emb, points_per_side=job["points_per_side"])
    print(f"samzoo {name}: AMG {timings[f'{name}|amg']:.1f} s", flush=True)
    return results, timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--worker-image", help=argparse.SUPPRESS)
    parser.add_argument("--msam-python", type=Path, default=ROOT.parent / "msam-venv" / "bin" / "python")
    parser.add_argument("--sizes", default="1024,2048", help="image sizes; larger than tile + 2 halo: tiled")
    parser.add_argument("--tile", type=int, default=896, help="micro-sam's tile_shape (samzoo: tile + 2 halo)")
    parser.add_argument("--halo", type=int, default=64)
    parser.add_argument("--amg-tiles", default="4", help="tiled images: AMG on these tiles only ('all': every tile)")
    parser.add_argument("--points-per-side", type=int, default=32, help="AMG's grid, both sides (32: the default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reuse-microsam", action="store_true",
                        help="keep micro-sam's results and times from an earlier run in OUT (same job)")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "samzoo_speed")
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.worker_image)
    work = args.out.absolute()
    work.mkdir(parents=True, exist_ok=True)
    python = parity.ensure_msam(args.msam_python)
    parity.make_weights(work, args.seed, amg=True)
    job = {"amg_checkpoint": f"sam_vit_b_seed{args.seed}_amg.pth", "points_per_side": args.points_per_side,
           "images": {}}
    for size in map(int, args.sizes.split(",")):
        name = f"hela_{size}"
        np.save(work / f"{name}.npy", hela_mosaic(size))
        tiled = size > args.tile + 2 * args.halo  # what one tile with its halo does not hold
        job["images"][name] = {
            "tile_shape": [args.tile] * 2 if tiled else None, "halo": [args.halo] * 2 if tiled else None,
            "amg_tiles": None if not tiled or args.amg_tiles == "all" else [int(i) for i in args.amg_tiles.split(",")]}
    same = (work / "job.json").is_file() and json.loads((work / "job.json").read_text()) == job
    (work / "job.json").write_text(json.dumps(job))
    reference, msam_times, ours, times, models = {}, {}, {}, {}, {}
    for name in job["images"]:  # image by image: micro-sam, then samzoo
        if not (args.reuse_microsam and same and (work / f"microsam_{name}.npz").is_file()):
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            subprocess.run([str(python), __file__, "--worker", str(work), "--worker-image", name], check=True, env=env)
        reference.update(np.load(work / f"microsam_{name}.npz"))
        msam_times.update(json.loads((work / f"microsam_{name}.json").read_text()))
        labels, seconds = run_samzoo(work, job, name, models)
        ours.update(labels)
        times.update(seconds)
    rows = []
    for name, spec in job["images"].items():
        for step in ("embeddings", "ais", "amg"):
            key = f"{name}|{step}"
            row = {"image": name, "step": step, "microsam_s": msam_times[key], "samzoo_s": times[key],
                   "microsam_cpu_s": msam_times[f"{key} cpu"], "samzoo_cpu_s": times[f"{key} cpu"]}
            if step != "embeddings":
                row["matched_at_0.9"], row["microsam_objects"] = parity.matched_fraction(reference[key], ours[key])
                row["samzoo_objects"] = int(ours[key].max())
                row["microsam_total_s"] = msam_times[key] + msam_times[f"{name}|embeddings"]
                row["samzoo_total_s"] = times[key] + times[f"{name}|embeddings"]
            rows.append(row)
    (work / "speed.json").write_text(json.dumps({"job": job, "rows": rows}, indent=1))
    print(f"\n{'image':<10} {'step':<11} {'micro-sam s':>11} {'samzoo s':>9} {'ratio':>6} {'(cpu ratio)':>11}   "
          f"{'total: micro-sam':>16} {'samzoo':>7} {'ratio':>6}   agreement")
    for r in rows:
        line = (f"{r['image']:<10} {r['step']:<11} {r['microsam_s']:>11.1f} {r['samzoo_s']:>9.1f} "
                f"{r['microsam_s'] / r['samzoo_s']:>6.2f} {r['microsam_cpu_s'] / r['samzoo_cpu_s']:>11.2f}")
        if "matched_at_0.9" in r:
            line += (f"   {r['microsam_total_s']:>16.1f} {r['samzoo_total_s']:>7.1f} "
                     f"{r['microsam_total_s'] / r['samzoo_total_s']:>6.2f}   {r['matched_at_0.9']:.3f} of "
                     f"{r['microsam_objects']} objects (samzoo {r['samzoo_objects']})")
        print(line)


if __name__ == "__main__":
    main()
