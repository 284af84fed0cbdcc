"""Train a new AIS decoder (e.g. the slim ``output_stride=2`` one) on a trained samzoo model, SAM frozen.

Starts from a samzoo model file (the shipped ``samzoo_tiny_lm`` by default), keeps its image
encoder, prompt encoder and mask decoder frozen and unchanged (in eval mode, so the embeddings
are exactly those of inference), replaces its AIS decoder by one of the given configuration and
trains only that, with the AIS loss on the same data and hold-out as
``scripts/train_samzoo_tiny.py`` (frames 16-19 of every movie and nuclei3d z-slices 25-30 are
never trained on). The new decoder starts from the old one wherever a tensor has the same name
and shape, or entirely from ``--init-decoder`` (a samzoo file whose decoder has this
configuration, e.g. an earlier run's best). With ``--distill W`` (default 1) the new decoder also
learns to reproduce the start model's decoder (its maps, weight W; 0: the ground truth only), so
that the watershed thresholds chosen for those maps carry over to the cheaper decoder.

Every ``--validate-every`` steps: the AIS loss on the same 24 fixed held-out crops as the main
training (so it compares with the ``val_ais_loss`` stored in the shipped model), and the best
model so far is written as ``RUN_DIR/best.safetensors`` (the whole model, new decoder). Rerunning
with the same ``--run-dir`` resumes from ``RUN_DIR/last.pt``.

    OMP_NUM_THREADS=1 python scripts/train_ais_decoder.py --run-dir runs/ais_slim --widths 48,16,8 \\
        --output-stride 2 --steps 6000 [--hours 0.5] [--init FILE] [--init-decoder FILE] [--distill 1]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from samzoo.models.ais_decoder import copy_matching_weights, inference_copy
from samzoo.models.load import load_model
from samzoo.models.model import SamzooModel
from samzoo.training.data import CropSampler
from samzoo.training.losses import ais_distillation_loss, ais_loss
from samzoo.training.trainer import TrainConfig, Trainer
from samzoo.training.validation import validation_crops

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_samzoo_tiny import TRAIN_FRAMES, VAL_FRAMES, add_targets_flag, load_pairs  # noqa: E402  (the same data and hold-out)


def model_with_new_decoder(start: SamzooModel, decoder_kwargs: dict) -> tuple[SamzooModel, list[str]]:
    """A copy of ``start`` (same SAM weights) whose AIS decoder is built from ``decoder_kwargs``.

    The new decoder takes every tensor of ``start``'s decoder with the same name and shape;
    the names copied are returned.
    """
    model = SamzooModel(replace(start.config, ais_decoder=decoder_kwargs, training={}))
    model.sam.load_state_dict(start.sam.state_dict())
    copied = copy_matching_weights(model.ais_decoder, start.ais_decoder.state_dict()) if start.ais_decoder else []
    return model, copied


def make_ais_validation(pairs, crop_size: int, n_crops: int = 24, teacher=None):
    """AIS loss on fixed held-out crops; ``score`` = minus that loss (higher is better).

    With a ``teacher`` AIS decoder, also ``val_distill``: the distance from its maps.

    The crops are those of :func:`samzoo.training.validation.make_validation` with the same
    ``n_crops``. SAM is frozen, so the embeddings are computed once.
    """
    crops = validation_crops(pairs, crop_size, n_crops)
    cache: list[tuple] = []  # per crop: input, embedding, targets, the teacher's maps (or None)

    def validate(model: SamzooModel) -> dict:
        device = next(model.parameters()).device
        if not cache:  # SAM and the teacher are frozen: their outputs are computed once
            for image, _, targets in crops:
                x = model.preprocess(image[None].to(device))
                emb = model.sam.image_encoder(x)
                cache.append((x, emb, targets[None].to(device), teacher(emb, x) if teacher is not None else None))
        maps = [model.ais_decoder(emb, x) for x, emb, _, _ in cache]
        losses = [ais_loss(m, targets).item() for m, (_, _, targets, _) in zip(maps, cache)]
        metrics = {"val_ais_loss": float(np.mean(losses)), "score": -float(np.mean(losses))}
        if teacher is not None:
            metrics["val_distill"] = float(np.mean([ais_distillation_loss(m, taught).item()
                                                    for m, (_, _, _, taught) in zip(maps, cache)]))
        return metrics

    return validate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", default="runs/ais_slim")
    parser.add_argument("--init", default=None, help="samzoo .safetensors to start from (default: the shipped model)")
    parser.add_argument("--init-decoder", default=None,
                        help="samzoo .safetensors whose AIS decoder (same configuration) starts the new one")
    parser.add_argument("--widths", default="48,16,8", help="decoder widths at strides 8,4,2[,1]")
    parser.add_argument("--output-stride", type=int, default=2, choices=(1, 2))
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--hours", type=float, default=None, help="stop (checkpointed) after this long")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup-steps", type=int, default=100)
    parser.add_argument("--validate-every", type=int, default=250)
    parser.add_argument("--checkpoint-every", type=int, default=100)
    parser.add_argument("--distill", type=float, default=1.0,
                        help="weight of matching the start model's AIS maps (0: ground truth only)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    add_targets_flag(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)  # the new decoder's initialisation and the crops' noise

    start = load_model(args.init)
    kwargs = {**start.config.ais_decoder, "widths": [int(w) for w in args.widths.split(",")],
              "output_stride": args.output_stride}
    model, copied = model_with_new_decoder(start, kwargs)
    print(f"start: {args.init or 'shipped model'} ({start.weights_hash}); new AIS decoder {kwargs}; "
          f"{len(copied)} of {len(model.ais_decoder.state_dict())} decoder tensors copied from the old one")
    if args.init_decoder:
        warm = load_model(args.init_decoder)
        if warm.config.ais_decoder != kwargs:
            raise SystemExit(f"--init-decoder {args.init_decoder} has AIS decoder {warm.config.ais_decoder}, not {kwargs}")
        model.ais_decoder.load_state_dict(warm.ais_decoder.state_dict())
        print(f"AIS decoder from {args.init_decoder} ({warm.weights_hash})")

    train_pairs, weights = load_pairs(TRAIN_FRAMES, range(0, 25))
    val_pairs, _ = load_pairs(VAL_FRAMES, range(25, 31))
    print(f"{len(train_pairs)} training pairs, {len(val_pairs)} validation pairs")
    size = model.input_size
    teacher = None
    if args.distill > 0:
        if start.ais_decoder is None:
            raise SystemExit("--distill needs a start model with an AIS decoder (or --distill 0)")
        teacher = inference_copy(start.ais_decoder.eval())
    validate = make_ais_validation(val_pairs, size, teacher=teacher)
    if start.ais_decoder is not None and not (Path(args.run_dir) / "last.pt").exists():
        with torch.no_grad():
            print(f"old AIS decoder on the validation crops: {validate(start)}")
    config = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, warmup_steps=args.warmup_steps,
                         freeze_encoder=True, train_sam=False, checkpoint_every=args.checkpoint_every,
                         validate_every=args.validate_every, threads=args.threads, seed=args.seed,
                         distill_weight=args.distill,
                         extra={"data": "shared/data; held out: frames 16-19, nuclei3d z 25-30",
                                "visible_targets": args.visible_targets,
                                "init": f"{args.init or 'shipped'}: {start.weights_hash}",
                                "init_decoder": args.init_decoder or f"matching tensors of the old decoder ({len(copied)})"})
    sampler = CropSampler(train_pairs, weights, size, seed=args.seed, visible_targets=args.visible_targets)
    trainer = Trainer(model, sampler, config, args.run_dir, validate=validate, teacher=teacher)
    trainer.run(max_seconds=args.hours * 3600 if args.hours else None)
    print(f"best validation AIS loss {-trainer.best_score:.4f}: {Path(args.run_dir) / 'best.safetensors'}")


if __name__ == "__main__":
    main()
