"""Train a small trackastra model on one Cell Tracking Challenge sequence, on the CPU.

What comes from trackastra (the installed 0.5.6 wheel) and what is written here: the wheel ships
trackastra's model (``trackastra.model.TrackingTransformer``), its training data pipeline
(``trackastra.data.CTCData``: a CTC folder read into sliding windows of detections with their
``wrfeat`` features, the ground-truth association matrix and trackastra's own augmentations;
``collate_sequence_padding`` for batches) and the pieces of its loss (``blockwise_causal_norm``,
``blockwise_sum``), but not its training script (``scripts/train.py`` in the GitHub repository,
a PyTorch Lightning module, with lightning, kornia and wandb as further dependencies). The loop
below restates that script's training step in plain torch, with its defaults: binary cross
entropy on the association logits (x 0.01) plus binary cross entropy after the causal
``quiet_softmax`` normalisation, links of continuing tracks weighted x2 and of divisions
x(1 + ``div_upweight`` = 2), only pairs 1..``delta_cutoff`` = 2 frames apart counted, each window
normalised by its number of such pairs and weighted by that number ** 0.2; AdamW (weight decay
0.01), linear warm-up then cosine decay of the learning rate, gradients clipped to norm 1.
Windows are drawn at random with probability proportional to 1 + their number of divisions
(upstream's ``weight_by_ndivs``). ``CTCData``'s augmentation level 3 (upstream's default: flips,
rotations, scaling, shear, brightness, global movement) is on.

Two shims keep trackastra's own data code usable without its training extras: ``CTCData``
imports ``trackastra.data.augmentations`` (kornia, for image features only; the ``wrfeat``
features used here have their own augmentations), which is replaced by an empty module when
kornia is missing; and its feature extraction (``joblib.Parallel(n_jobs=8)``) runs
sequentially (one CPU process).

The model is written in trackastra's folder format (``model.pt``, ``config.yaml`` by
``TrackingTransformer.save``, ``train_config.yaml`` with ``features: wrfeat``), which
``Trackastra.from_folder`` and :func:`samzoo.tracking.link_trackastra` read.

Data: ``--train`` is a CTC sequence folder (``01``, with ``01_GT/TRA`` next to it); by default
Fluo-N2DH-SIM+ 01 of the shared data (65 frames, 95 tracks, 28 divisions), so that Fluo-N2DH-GOWT1
01 (real cells, 2 divisions) is held out for the benchmark (``scripts/bench_tracking.py
--ctc-only``). The reverse split would teach divisions from 2 examples.

Usage (``runs/`` is outside git)::

    OMP_NUM_THREADS=1 python scripts/train_trackastra_small.py --out runs/trackastra_small
    # the model the tests serve through the mirror (tests/tracking/data/trackastra_sim_small):
    OMP_NUM_THREADS=1 python scripts/train_trackastra_small.py --out tests/tracking/data/trackastra_sim_small

With ``--steps`` fixed and one thread the run is repeatable (seeded); ``--max-minutes`` stops
early when the machine is slower (the learning rate schedule is then cut short; the step count
reached is written to ``train_config.yaml``).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
import types
from pathlib import Path

import numpy as np

SHARED = Path(os.environ.get("SAMZOO_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
DEFAULT_TRAIN = SHARED / "data" / "ctc" / "Fluo-N2DH-SIM+" / "01"


def _allow_missing_kornia() -> None:
    """Let ``CTCData`` import without kornia (its image augmentations are not used with wrfeat)."""
    try:
        import trackastra.data.augmentations  # noqa: F401
    except ImportError:
        stub = types.ModuleType("trackastra.data.augmentations")
        stub.AugmentationPipeline = stub.RandomCrop = stub.default_augmenter = None
        sys.modules["trackastra.data.augmentations"] = stub


def load_windows(train: Path, *, window: int, augment: int, frames: tuple[float, float], seed: int):
    """trackastra's ``CTCData`` on one CTC sequence, its ground-truth TRA masks as detections."""
    import joblib

    _allow_missing_kornia()
    from trackastra.data import CTCData

    gt_tra = Path(f"{train}_GT") / "TRA"
    if not (gt_tra / "man_track.txt").is_file():
        raise SystemExit(f"{train}: no CTC tracking ground truth at {gt_tra}")
    with joblib.parallel_config(backend="sequential"):
        data = CTCData(root=str(train), ndim=2, detection_folders=[str(gt_tra)], window_size=window,
                       augment=augment, features="wrfeat", slice_pct=frames)
    if data.augmenter is not None:  # trackastra seeds each augmentation from the OS; make it repeatable
        for i, aug in enumerate(data.augmenter.augmentations):
            aug._rng = np.random.RandomState(seed * 1000 + i)
    return data


def association_loss(model, batch: dict, *, causal_norm: str, delta_cutoff: int = 2, div_upweight: float = 2.0):
    """trackastra's training loss (``scripts/train.py``, ``_common_step``) for one padded batch."""
    import torch
    import torch.nn.functional as F
    from trackastra.utils import blockwise_causal_norm, blockwise_sum

    eps = torch.finfo(torch.float32).eps
    target = batch["assoc_matrix"]
    timepoints = batch["timepoints"]
    padding = batch["padding_mask"].bool()
    logits = model(batch["coords"], batch["features"], padding_mask=padding)
    logits = logits.clamp(torch.finfo(torch.float16).min, torch.finfo(torch.float16).max)
    invalid = padding.unsqueeze(1) | padding.unsqueeze(2)
    logits = logits.masked_fill(invalid, 0)
    loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    if causal_norm != "none":
        normed = torch.stack([blockwise_causal_norm(a, t, mode=causal_norm, mask_invalid=m)
                              for a, t, m in zip(logits, timepoints, invalid)])
        loss = 0.01 * loss + F.binary_cross_entropy(normed, target, reduction="none")
    with torch.no_grad():  # continuing tracks count twice, divisions 1 + div_upweight times
        links = torch.stack([blockwise_sum(a, t, dim=-1) + blockwise_sum(a, t, dim=-2)
                             for a, t in zip(target, timepoints)])
        links = target * links
        weight = 1 + (links == 2).float() + div_upweight * (links > 2).float()
    dt = timepoints.unsqueeze(1) - timepoints.unsqueeze(2)
    counted = ((dt > 0) & (dt <= delta_cutoff) & ~invalid).float()
    n_pairs = counted.sum(dim=(1, 2))
    per_window = (loss * weight * counted).sum(dim=(1, 2)) / (n_pairs + eps)
    prefactor = n_pairs ** 0.2
    return (per_window * prefactor).sum() / (prefactor.sum() + eps)


def learning_rate(step: int, steps: int, base: float, warmup: int) -> float:
    """Linear warm-up from 1% then cosine decay to 0.1% (upstream's WarmupCosineLRScheduler, per step)."""
    if step < warmup:
        return base * (0.01 + 0.99 * step / warmup)
    progress = (step - warmup) / max(1, steps - warmup)
    return base * (0.001 + 0.999 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def train(args) -> Path:
    import torch
    import yaml
    from trackastra.data import collate_sequence_padding
    from trackastra.model import TrackingTransformer

    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    data = load_windows(args.train, window=args.window, augment=args.augment, frames=tuple(args.frames),
                        seed=args.seed)
    n_windows = len(data)
    if n_windows == 0:
        raise SystemExit(f"{args.train}: no training windows (fewer than {args.window} frames?)")
    load_seconds = time.perf_counter() - start
    weights = 1.0 + np.asarray(data.n_divs, dtype=float)
    weights /= weights.sum()
    model = TrackingTransformer(coord_dim=2, feat_dim=data.feat_dim, d_model=args.d_model, nhead=args.nhead,
                                num_encoder_layers=args.layers, num_decoder_layers=args.layers, dropout=0.0,
                                pos_embed_per_dim=args.pos_embed_per_dim, feat_embed_per_dim=args.feat_embed_per_dim,
                                window=args.window, spatial_pos_cutoff=args.spatial_pos_cutoff,
                                attn_positional_bias="rope", causal_norm="quiet_softmax")
    n_params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    rng = np.random.default_rng(args.seed)
    warmup = max(1, args.steps // 20)
    print(f"# {args.train}: {n_windows} windows of {args.window} frames, {sum(data.n_divs)} division links "
          f"(loaded in {load_seconds:.0f} s); model {n_params} parameters; {args.steps} steps of {args.batch_size}",
          flush=True)
    model.train()
    start = time.perf_counter()
    losses, step = [], 0
    for step in range(1, args.steps + 1):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step - 1, args.steps, args.lr, warmup)
        batch = collate_sequence_padding([data[int(i)] for i in rng.choice(n_windows, args.batch_size, p=weights)])
        loss = association_loss(model, batch, causal_norm="quiet_softmax")
        if not torch.isfinite(loss):
            raise SystemExit(f"step {step}: loss is {loss.item()}")
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        if step % args.log_every == 0 or step == args.steps:
            print(f"step {step:6d}  loss {np.mean(losses[-args.log_every:]):.4f}  "
                  f"{time.perf_counter() - start:6.0f} s", flush=True)
        if args.max_minutes and time.perf_counter() - start > 60 * args.max_minutes:
            print(f"# stopped after {args.max_minutes} minutes at step {step} of {args.steps}", flush=True)
            break
    seconds = time.perf_counter() - start
    model.eval()
    out = Path(args.out)
    model.save(out)  # model.pt and config.yaml, as trackastra writes them
    import trackastra

    config = {
        "features": "wrfeat",  # what Trackastra.from_folder needs; the rest documents the run
        "train": str(args.train), "frames": list(args.frames), "window": args.window, "augment": args.augment,
        "steps": step, "steps_planned": args.steps, "batch_size": args.batch_size, "lr": args.lr,
        "seed": args.seed, "threads": args.threads, "seconds": round(seconds, 1),
        "final_loss": float(np.mean(losses[-args.log_every:])), "parameters": n_params,
        "trackastra": trackastra.__version__,
        "recipe": "scripts/train_trackastra_small.py (trackastra's CTCData, TrackingTransformer and loss)",
    }
    (out / "train_config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    print(f"# wrote {out} ({(out / 'model.pt').stat().st_size / 1e3:.0f} kB) after {step} steps, {seconds:.0f} s",
          flush=True)
    return out


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=Path, default=DEFAULT_TRAIN,
                        help="CTC sequence folder with <folder>_GT/TRA (default: shared Fluo-N2DH-SIM+ 01)")
    parser.add_argument("--out", type=Path, default=Path("runs/trackastra_small"))
    parser.add_argument("--frames", type=float, nargs=2, default=(0.0, 1.0),
                        help="part of the sequence to train on, as fractions (CTCData's slice_pct)")
    parser.add_argument("--steps", type=int, default=2500)
    parser.add_argument("--max-minutes", type=float, default=15.0, help="stop early after this long (0: never)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--window", type=int, default=6)
    parser.add_argument("--d-model", type=int, default=48)
    parser.add_argument("--nhead", type=int, default=4)
    parser.add_argument("--layers", type=int, default=2, help="encoder and decoder layers each")
    parser.add_argument("--pos-embed-per-dim", type=int, default=16)
    parser.add_argument("--feat-embed-per-dim", type=int, default=8)
    parser.add_argument("--spatial-pos-cutoff", type=int, default=256)
    parser.add_argument("--augment", type=int, default=3, help="CTCData augmentation level (0: none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--log-every", type=int, default=100)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    train(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
