"""Train samzoo's default model (`samzoo_tiny_lm`) with the whole recipe, in resumable chunks.

One command, on CPU or a CUDA GPU: every call trains for at most ``--minutes`` (default 9, so
that a chunk fits a short GPU loan) and checkpoints; the next call with the same ``--run-dir``
resumes from ``last.pt`` (weights, optimizer, step, random state). The best model by validation
score is ``best.safetensors`` in the run folder; ``scripts/ship_model.py`` ships it only if its
held-out numbers are better.

Data (``scripts/default_data.py``): the four original sets, CTC Fluo-N2DH-SIM+, and DSB2018 by
kind (fluorescence of three sizes, grey brightfield, colour tissue); held out: the last frames
of every movie, every 5th DSB image of each kind, and the whole CTC Fluo-N2DH-GOWT1 sequence
(never seen: a leave-one-source-out measure). Augmentation: zoom 0.5-2x, flips, rotations,
gamma/contrast/brightness, inverted contrast, blur and noise; objects cut by a crop's edge get
the targets of their visible part.

    python scripts/train_default.py --run-dir runs/default            # a 9-minute chunk; rerun to go on
    python scripts/train_default.py --run-dir runs/default --minutes 0   # until --steps
    python scripts/train_default.py --run-dir runs/default --init scratch   # from random weights
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from default_data import training_pairs  # noqa: E402

from samzoo.training.data import CropSampler  # noqa: E402
from samzoo.models.model import ModelConfig, SamzooModel  # noqa: E402
from samzoo.training.trainer import TrainConfig, Trainer  # noqa: E402
from samzoo.training.validation import make_validation  # noqa: E402

# the shipped model's AIS decoder (2026-12): half-resolution output, 0.11 M parameters
SLIM_DECODER = {"image_skip": True, "widths": [48, 16, 8], "output_stride": 2}
VALIDATION_SOURCES = ["hela", "bacteria", "cho", "nuclei3d", "simplus",
                      "fluo_small", "fluo_large", "fluo_other", "brightfield", "tissue_rgb"]  # not gowt1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", default="runs/default")
    parser.add_argument("--steps", type=int, default=8000, help="length of the cosine schedule")
    parser.add_argument("--minutes", type=float, default=9.0, help="stop (checkpointed) after this long; 0: no limit")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--input-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--validate-every", type=int, default=500)
    parser.add_argument("--target-diameter", type=float, default=36.0,
                        help="bring every plane's objects to this median diameter (px) before the zoom "
                             "augmentation, as --scale auto does at inference; 0: keep native sizes (zoom 0.5-2)")
    parser.add_argument("--dim-objects", type=float, default=0.0,
                        help="probability that a crop gets some of its objects dimmed towards the background "
                             "(faint nuclei next to bright ones); 0: off")
    parser.add_argument("--paste-objects", type=float, default=0.0,
                        help="probability that a crop gets whole objects of another crop of the same image "
                             "pasted next to its own (crowded, touching objects from sparse images); 0: off")
    parser.add_argument("--init", default="shipped",
                        help="weights a new run starts from: 'shipped' (samzoo_tiny_lm), 'scratch', or a .safetensors file")
    args = parser.parse_args()

    diameter = args.target_diameter or None
    # normalised sizes need only a little zoom around the target; native sizes need a wide one
    zoom = (0.7, 1.4) if diameter else (0.5, 2.0)
    zoom_text = f"objects to {diameter:g} px, zoom {zoom[0]}-{zoom[1]}" if diameter else "zoom 0.5-2"
    train, weights = training_pairs("train")
    val, _ = training_pairs("val", VALIDATION_SOURCES)
    print(f"{len(train)} training planes, {len(val)} validation planes", flush=True)
    config = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, warmup_steps=100,
                         threads=args.threads, device=args.device, validate_every=args.validate_every,
                         extra={"recipe": "scripts/train_default.py", "data": "scripts/default_data.py; "
                                "held out: last movie frames, every 5th DSB image per kind, all of GOWT1",
                                "augmentation": f"{zoom_text}, strong (invert, blur, noise)"
                         + (f", dim objects (p={args.dim_objects:g})" if args.dim_objects else "")
                         + (f", pasted objects (p={args.paste_objects:g})" if args.paste_objects else ""),
                         "init": args.init})
    size = args.input_size
    last = Path(args.run_dir) / "last.pt"
    if last.exists():  # resuming: the architecture the run was started with (weights follow)
        model = SamzooModel(ModelConfig(**torch.load(last, map_location="cpu", weights_only=True)["model_config"]))
    elif args.init == "scratch":
        model = SamzooModel(ModelConfig("samzoo_tiny", size, ais_decoder=SLIM_DECODER, name="samzoo_tiny_lm"))
    else:
        from samzoo.models.load import load_model

        model = load_model(None if args.init == "shipped" else args.init, input_size=size)
        config.extra["init"] = f"{args.init}: {model.weights_hash}"
        print(f"new run starting from {args.init} ({model.weights_hash})", flush=True)
        model.weights_hash = ""  # being trained: no embedding cache
    model.config.object_diameter = diameter  # what scale="auto" brings images to
    sampler = CropSampler(train, weights, size, visible_targets=True, scale_range=zoom, strong=True,
                          target_diameter=diameter, dim_objects=args.dim_objects,
                          paste_objects=args.paste_objects)
    trainer = Trainer(model, sampler, config, args.run_dir,
                      validate=make_validation(val, size, n_crops=32, target_diameter=diameter))
    trainer.run(max_seconds=args.minutes * 60 if args.minutes else None)
    print(f"stopped at step {trainer.step} of {config.steps}; best validation score {trainer.best_score:.4f}")


if __name__ == "__main__":
    main()
