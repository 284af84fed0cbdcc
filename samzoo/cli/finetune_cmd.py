"""``samzoo finetune``: a few annotated images in, a better model out."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from samzoo.errors import InputError
from samzoo.models.ais_decoder import AISDecoder
from samzoo.models.load import load_model
from samzoo.training.data import pairs_from_files
from samzoo.training.finetune import finetune
from samzoo.training.trainer import new_model


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "finetune", help="train a model on your annotated images",
        description="Finetune a model (or train one from scratch) on images and instance labels. "
                    "Checkpoints go to OUTDIR every --checkpoint-every steps; rerunning the same command "
                    "resumes. The result is OUTDIR/model.safetensors, usable wherever samzoo takes --model. "
                    "On a CPU, --freeze-encoder (decoders only, on embeddings computed once) is the fast choice.")
    parser.add_argument("--images", required=True, help="image files: a glob pattern (quoted) or folder/*.tif")
    parser.add_argument("--labels", required=True, help="label files, sorted in the same order as the images")
    parser.add_argument("-o", "--outdir", required=True)
    parser.add_argument("--model", default=None, help="model to start from (default: samzoo's own)")
    parser.add_argument("--from-scratch", metavar="ARCH", help="start from random weights of this architecture")
    parser.add_argument("--val-images", help="held-out images for validation (recommended)")
    parser.add_argument("--val-labels", help="held-out labels")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--input-size", type=int, default=None, help="crop/tile size (TinyViT models)")
    parser.add_argument("--freeze-encoder", action="store_true", help="train the decoders only")
    parser.add_argument("--embedding-pool", type=int, default=200,
                        help="with --freeze-encoder: augmented crops embedded once and reused")
    parser.add_argument("--lora-rank", type=int, default=0, help="LoRA adapters of this rank on the encoder")
    parser.add_argument("--checkpoint-every", type=int, default=50)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--package", action="store_true",
                        help="also write bioimage.io packages (AIS + prompt) of the result into OUTDIR/packages, "
                             "with one of your (validation) images as test data, and test them offline")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    outdir = Path(args.outdir)
    if args.from_scratch:
        model = new_model(args.from_scratch, args.input_size or 512, name=f"{args.from_scratch}_finetuned")
    else:
        model = load_model(args.model, input_size=args.input_size)
        if model.ais_decoder is None:  # published SAM checkpoints come without one
            model.config.ais_decoder = {"image_skip": True}
            model.ais_decoder = AISDecoder(image_skip=True)
        model.config.name = f"{model.name}_finetuned"
    pairs = pairs_from_files(args.images, args.labels)
    val_pairs = []
    if args.val_images and args.val_labels:
        val_pairs = pairs_from_files(args.val_images, args.val_labels)
    finetune(model, pairs, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
             freeze_encoder=args.freeze_encoder, embedding_pool=args.embedding_pool, lora_rank=args.lora_rank,
             val_images=val_pairs or None, run_dir=outdir, checkpoint_every=args.checkpoint_every,
             device=args.device, notes={"images": args.images, "labels": args.labels})
    best, final = outdir / "best.safetensors", outdir / "model.safetensors"
    print(f"model: {final}" + (f"\nbest by validation: {best}" if best.exists() else ""))
    if args.package:
        return _package(best if best.exists() else final, val_pairs + pairs, outdir / "packages")
    return 0


def _package(weights: Path, candidates: list, output_dir: Path) -> int:
    """bioimage.io packages of the finetuned model, tested; 1 if a test failed.

    The test image is the first of ``candidates`` (validation pairs first: never trained on)
    whose central crop, which becomes the package's test tensor, holds an object to prompt.
    """
    from samzoo.packaging import samples
    from samzoo.packaging.builder import build_packages

    model = load_model(weights)

    def promptable(pair) -> bool:
        crop = samples.square_crop(pair.labels, model.input_size)
        return bool((np.bincount(crop.ravel())[1:] >= samples.MIN_PROMPT_AREA).any())

    sample = next((pair for pair in candidates if promptable(pair)), None)
    if sample is None:
        raise InputError(f"no image's central {model.input_size}-pixel crop holds an object of at least "
                         f"{samples.MIN_PROMPT_AREA} pixels for the package's test prompts; the model is saved, "
                         "package it with `samzoo package MODEL --image ... --labels ...`")
    built = build_packages(model, output_dir, name=model.name, image=sample.image, labels=sample.labels,
                           image_description=f"a plane of the finetuning data ({sample.name or 'user data'})")
    for package in built:
        print(f"package: {package.path} (bioimageio test: {package.test_status})")
    return int(any(package.test_status == "failed" for package in built))
