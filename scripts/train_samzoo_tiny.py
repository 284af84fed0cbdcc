"""Train samzoo's own microscopy SAM (`samzoo_tiny`, 256 input by default) on the real data in ../shared/data.

Held out for validation, never trained on: frames 16-19 of every movie and the last 6 z-slices
of the 3D nuclei. Rerunning with the same --run-dir resumes from its last checkpoint. A new run
starts from the shipped default model (the durable checkpoint: machines are not kept between
sessions), or from random initialisation with --init scratch; `scripts/ship_model.py` replaces
the shipped model only when the new run's held-out validation score is higher.

    python scripts/train_samzoo_tiny.py --run-dir runs/samzoo_tiny --steps 6000 [--hours 1.5]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import tifffile
import torch

from samzoo.training.data import CropSampler, pairs_from_arrays
from samzoo.training.trainer import TrainConfig, Trainer, new_model
from samzoo.training.validation import make_validation

SHARED = Path(os.environ.get("SAMZOO_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "data"
MOVIES = {  # image file, label file, sampling weight of the whole data set
    "hela": ("Fluo_Hela_02_img.tif", "Fluo_Hela_02_ERR_SEG.tif", 0.35),
    "bacteria": ("trpL_150310-11_img.tif", "trpL_150310-11_mask.tif", 0.3),
    "cho": ("Fluo-N3DH-CHO_02_img.tif", "Fluo-N3DH-CHO_02_ERR_SEG.tif", 0.25),
}
TRAIN_FRAMES, VAL_FRAMES = range(0, 16), range(16, 20)


def load_pairs(frames: range, nuclei_slices: range):
    """Training pairs (and their sampling weights) for the given frames / nuclei3d slices."""
    pairs, weights = [], []
    for name, (img_file, lab_file, weight) in MOVIES.items():
        img, lab = tifffile.imread(SHARED / img_file), tifffile.imread(SHARED / lab_file)
        img, lab = img[list(frames)], lab[list(frames)]
        # CHO is t,z,y,x: every z-slice of every frame is one 2D pair
        img, lab = img.reshape((-1,) + img.shape[-2:]), lab.reshape((-1,) + lab.shape[-2:])
        new = pairs_from_arrays(img, lab, name=name)
        pairs += new
        weights += [weight / len(new)] * len(new)
    img, lab = tifffile.imread(SHARED / "nuclei3d_img.tif"), tifffile.imread(SHARED / "nuclei3d_mask.tif")
    new = pairs_from_arrays(img, lab, name="nuclei3d", indices=nuclei_slices)
    pairs += new
    weights += [0.1 / len(new)] * len(new)
    return pairs, weights


def add_targets_flag(parser: argparse.ArgumentParser) -> None:
    """``--whole-targets``, for this script and ``train_ais_decoder.py`` (``args.visible_targets``)."""
    parser.add_argument("--whole-targets", dest="visible_targets", action="store_false",
                        help="objects cut by a crop's edge keep the targets of the whole object (the shipped "
                             "model's training, up to 2026-11); default: those of their visible part")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", default="runs/samzoo_tiny")
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--hours", type=float, default=None, help="stop (checkpointed) after this long")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--input-size", type=int, default=256, help="crop = tile size (the model keeps it)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--init", default="shipped",
                        help="weights a new run starts from: 'shipped' (samzoo_tiny_lm), 'scratch', or a .safetensors file")
    add_targets_flag(parser)
    args = parser.parse_args()

    train_pairs, weights = load_pairs(TRAIN_FRAMES, range(0, 25))
    val_pairs, _ = load_pairs(VAL_FRAMES, range(25, 31))
    print(f"{len(train_pairs)} training pairs, {len(val_pairs)} validation pairs")
    config = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, warmup_steps=100,
                         threads=args.threads, device=args.device,
                         extra={"data": "shared/data; held out: frames 16-19, nuclei3d z 25-30",
                                "visible_targets": args.visible_targets})
    size = args.input_size
    model = new_model("samzoo_tiny", size, name="samzoo_tiny_lm")
    if args.init != "scratch" and not (Path(args.run_dir) / "last.pt").exists():
        from samzoo.models.load import load_model

        start = load_model(None if args.init == "shipped" else args.init, input_size=size)
        model.load_state_dict(start.state_dict())
        config.extra["init"] = f"{args.init}: {start.weights_hash}, trained {start.config.training}"
        print(f"new run starting from {args.init} ({start.weights_hash})")
    trainer = Trainer(model, CropSampler(train_pairs, weights, size, visible_targets=args.visible_targets),
                      config, args.run_dir, validate=make_validation(val_pairs, size, n_crops=24))
    trainer.run(max_seconds=args.hours * 3600 if args.hours else None)


if __name__ == "__main__":
    main()
