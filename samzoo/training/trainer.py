"""Train a :class:`SamzooModel`: iterative prompting for SAM's decoder, plus the AIS decoder.

One step, per crop in the batch:

1. encode the crop (the image encoder runs once, with gradients unless frozen);
2. AIS: decode foreground and distances from the embedding, loss against the targets;
3. SAM: sample objects, prompt each with a positive point or a (jittered) box, predict; then
   ``n_iterations - 1`` times add a corrective point sampled from the error and give the
   previous low-resolution logits as the mask prompt, and predict again. Mask and IoU losses
   are averaged over the iterations.

Checkpoints (``last.pt``: weights, optimizer, step, RNG, config, history) are written
atomically every ``checkpoint_every`` steps; a rerun with the same ``run_dir`` resumes from
them. The best model by validation score is kept as ``best.safetensors``.
"""

from __future__ import annotations

import copy
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from samzoo.errors import InputError
from samzoo.models.model import ModelConfig, SamzooModel
from samzoo.training.data import CropSampler
from samzoo.training.lora import add_lora, merge_lora
from samzoo.training.losses import ais_distillation_loss, ais_loss, mask_losses
from samzoo.training.prompts import boxes_of, corrective_points, random_points_in, sample_objects


@dataclass
class TrainConfig:
    """Options of :func:`train`; saved with every checkpoint."""

    steps: int = 10000
    batch_size: int = 2
    lr: float = 3e-4
    weight_decay: float = 0.01
    warmup_steps: int = 200
    objects_per_image: int = 6
    n_iterations: int = 3          # decoder passes per object: initial prompt + corrections
    box_probability: float = 0.5   # initial prompt: a box, else a single positive point
    freeze_encoder: bool = False
    embedding_pool: int = 0        # frozen encoder: embed this many augmented crops once, train on them
    lora_rank: int = 0             # > 0: LoRA adapters on the encoder's attention instead of full training
    train_ais: bool = True
    train_sam: bool = True         # False: only the AIS decoder trains; SAM stays frozen, in eval mode
    ais_weight: float = 1.0
    distill_weight: float = 1.0    # with a teacher AIS decoder: weight of matching its maps
    checkpoint_every: int = 100
    validate_every: int = 500
    threads: int = 0               # torch CPU threads; 0 = torch's default
    seed: int = 0
    device: str = "cpu"
    extra: dict = field(default_factory=dict)  # free-form notes (data, hardware)


def _atomic_torch_save(obj: dict, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class Trainer:
    """Holds the model, optimizer and sampler of one training run; see the module docstring."""

    def __init__(self, model: SamzooModel, sampler: CropSampler, config: TrainConfig, run_dir: str | Path,
                 validate: Callable[[SamzooModel], dict] | None = None,
                 teacher: torch.nn.Module | None = None) -> None:
        self.model, self.sampler, self.config = model.to(config.device), sampler, config
        # a trained AIS decoder whose maps the model's decoder also learns to reproduce
        # (distillation into a cheaper decoder); frozen, in eval mode, never saved
        self.teacher = teacher.to(config.device).eval().requires_grad_(False) if teacher is not None else None
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.validate = validate
        if config.threads:
            torch.set_num_threads(config.threads)
        if config.train_ais and model.config.ais_decoder is not None and model.config.ais_decoder_type != "samzoo":
            # micro-sam's UNETR takes other inputs and targets (inverted boundary distances); training
            # it here would silently learn the wrong maps
            raise InputError(f"training a {model.config.ais_decoder_type!r} AIS decoder is not supported; finetune "
                             "with train_ais=False (SAM only) or with micro-sam itself")
        if not config.train_sam and not (config.freeze_encoder and config.train_ais):
            raise ValueError("train_sam=False trains the AIS decoder alone: it needs freeze_encoder and train_ais")
        if not config.train_sam:
            self.model.sam.requires_grad_(False)
        if config.freeze_encoder:
            self.model.sam.image_encoder.requires_grad_(False)
        elif config.lora_rank:
            add_lora(self.model.sam.image_encoder, config.lora_rank)
        self.pool: list[tuple] = []
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.step = 0
        self.history: list[dict] = []
        self.best_score = -np.inf
        self._resume()

    # -- checkpoints -------------------------------------------------------------------------
    def _resume(self) -> None:
        path = self.run_dir / "last.pt"
        if not path.exists():
            return
        state = torch.load(path, map_location=self.config.device, weights_only=True)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.sampler.rng.bit_generator.state = json.loads(state["sampler_rng"])
        self.step, self.history, self.best_score = state["step"], state["history"], state["best_score"]
        print(f"resumed {path} at step {self.step}")

    def save_checkpoint(self) -> None:
        _atomic_torch_save({
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "sampler_rng": json.dumps(self.sampler.rng.bit_generator.state),
            "step": self.step,
            "history": self.history,
            "best_score": float(self.best_score),
            "train_config": asdict(self.config),
            "model_config": asdict(self.model.config),
        }, self.run_dir / "last.pt")

    # -- one step ----------------------------------------------------------------------------
    def _lr(self) -> float:
        c = self.config
        if self.step < c.warmup_steps:
            return c.lr * (self.step + 1) / c.warmup_steps
        progress = (self.step - c.warmup_steps) / max(c.steps - c.warmup_steps, 1)
        return float(c.lr * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * min(progress, 1.0)))))

    def _prompt_losses(self, embedding: torch.Tensor, labels: torch.Tensor, boundary: torch.Tensor):
        """Iterative-prompting losses for the objects of one crop; ``embedding`` is ``(1, 256, h, w)``.

        Losses and corrective clicks use the decoder's low-resolution (stride 4) logits against
        area-downsampled ground truth: upsampling every candidate mask to full resolution would
        cost more than the decoder itself.
        """
        c, sam, g = self.config, self.model.sam, self.generator
        ids = sample_objects(labels, c.objects_per_image, generator=g)
        if len(ids) == 0:
            return None
        gt = labels[None] == ids[:, None, None].to(labels.device)  # (K, S, S)
        k = len(ids)
        use_box = torch.rand((), generator=g).item() < c.box_probability
        boxes = boxes_of(gt.cpu(), jitter=0.1, generator=g).to(embedding.device) if use_box else None
        if use_box:
            points, point_labels = torch.zeros(k, 0, 2), torch.zeros(k, 0, dtype=torch.long)
        else:
            points = random_points_in(gt.cpu(), g, weights=boundary[None].expand(k, -1, -1).cpu())[:, None]
            point_labels = torch.ones(k, 1, dtype=torch.long)
        low_size = sam.prompt_encoder.mask_input_size
        stride = labels.shape[-1] / low_size[-1]
        gt_low = F.interpolate(gt[:, None].float(), size=low_size, mode="area")[:, 0]
        # hard low-res truth for clicks; a tiny object keeps at least its best-covered cell
        gt_low_hard = (gt_low >= gt_low.amax(dim=(1, 2), keepdim=True).clamp(max=0.5)).cpu()
        mask_prompt = None
        image_pe = sam.prompt_encoder.get_dense_pe()
        total_mask, total_iou = 0.0, 0.0
        for it in range(c.n_iterations):
            sparse, dense = sam.prompt_encoder(
                points=(points.to(embedding.device), point_labels.to(embedding.device)) if points.shape[1] else None,
                boxes=boxes, masks=mask_prompt)
            multimask = it == 0 and not use_box  # a single point is ambiguous: predict 3 masks
            low_res, iou_pred = sam.mask_decoder(image_embeddings=embedding, image_pe=image_pe,
                                                 sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                                 multimask_output=multimask)
            mask_loss, iou_loss, best = mask_losses(low_res, gt_low, iou_pred)
            total_mask, total_iou = total_mask + mask_loss, total_iou + iou_loss
            if it + 1 == c.n_iterations:
                break
            chosen = torch.arange(k)
            mask_prompt = low_res[chosen, best][:, None].detach()
            pred = (mask_prompt[:, 0] > 0).cpu()
            new_points, new_labels = corrective_points(pred, gt_low_hard, g)
            new_points = (new_points + 0.5) * stride  # low-res pixel centre -> input pixels
            points = torch.cat([points, new_points[:, None]], dim=1)
            point_labels = torch.cat([point_labels, new_labels[:, None]], dim=1)
        return total_mask / c.n_iterations, total_iou / c.n_iterations

    def _batch(self):
        """``(images, labels, targets, embeddings or None)`` of one batch on the device."""
        c = self.config
        if c.freeze_encoder and c.embedding_pool:
            if not self.pool:
                self.pool = [self._embedded_crop() for _ in tqdm(range(c.embedding_pool), desc="embedding pool")]
            picks = torch.randint(len(self.pool), (c.batch_size,), generator=self.generator).tolist()
            crops = [self.pool[i] for i in picks]
        else:
            crops = [self.sampler.sample() for _ in range(c.batch_size)]
        stacked = [torch.stack([crop[j] for crop in crops]).to(c.device) for j in range(3)]
        embeddings = torch.stack([crop[3] for crop in crops]).to(c.device) if len(crops[0]) == 4 else None
        return (*stacked, embeddings)

    @torch.no_grad()
    def _embedded_crop(self) -> tuple:
        image, labels, targets = self.sampler.sample()
        x = self.model.preprocess(image[None].to(self.config.device))
        return image, labels, targets, self.model.sam.image_encoder(x)[0].cpu()

    def train_step(self) -> dict:
        c, model = self.config, self.model
        model.train()
        # frozen parts run in eval mode, as at inference: in train mode their BatchNorm layers
        # would still move their running statistics, so a "frozen" encoder would change
        if not c.train_sam:
            model.sam.eval()
        elif c.freeze_encoder:
            model.sam.image_encoder.eval()
        images, labels, targets, embeddings = self._batch()
        normalized = model.preprocess(images)
        if embeddings is None:
            with torch.set_grad_enabled(not c.freeze_encoder):
                embeddings = model.sam.image_encoder(normalized)
        losses = {}
        loss = torch.zeros((), device=c.device)
        if c.train_ais and model.ais_decoder is not None:
            maps = model.ais_decoder(embeddings, normalized)
            losses["ais"] = ais_loss(maps, targets)
            loss = loss + c.ais_weight * losses["ais"]
            if self.teacher is not None:
                with torch.no_grad():
                    teacher_maps = self.teacher(embeddings, normalized)
                losses["distill"] = ais_distillation_loss(maps, teacher_maps)
                loss = loss + c.distill_weight * losses["distill"]
        mask_terms = [self._prompt_losses(embeddings[i:i + 1], labels[i], targets[i, 2])
                      for i in range(len(images))] if c.train_sam else []
        mask_terms = [t for t in mask_terms if t is not None]
        if mask_terms:
            losses["mask"] = sum(t[0] for t in mask_terms) / len(mask_terms)
            losses["iou"] = sum(t[1] for t in mask_terms) / len(mask_terms)
            loss = loss + losses["mask"] + losses["iou"]
        for group in self.optimizer.param_groups:
            group["lr"] = self._lr()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        self.optimizer.step()
        self.step += 1
        return {k: v.item() for k, v in losses.items()}

    # -- the loop ----------------------------------------------------------------------------
    def run(self, max_seconds: float | None = None) -> list[dict]:
        """Train until ``config.steps`` (or ``max_seconds``), checkpointing and validating on the way."""
        # Trained weights and gradients drift into float32 denormals, which x86 CPUs compute in
        # slow microcode: flushing them to zero made a samzoo_tiny step 2.5-3x faster (6.0 -> 2.2 s
        # on one shared core) and changes results only below 1e-38. It is global processor state,
        # so it is switched off again when training ends.
        torch.set_flush_denormal(True)
        try:
            return self._run(max_seconds)
        finally:
            torch.set_flush_denormal(False)

    def _run(self, max_seconds: float | None) -> list[dict]:
        c = self.config
        start = time.time()
        running: dict[str, float] = {}
        bar = tqdm(total=c.steps, initial=self.step, desc="train", dynamic_ncols=True)
        while self.step < c.steps:
            losses = self.train_step()
            for k, v in losses.items():
                running[k] = 0.98 * running.get(k, v) + 0.02 * v
            bar.update(1)
            bar.set_postfix({k: f"{v:.3f}" for k, v in running.items()})
            entry = {"step": self.step, "time": time.time() - start, **running}
            if self.validate is not None and (self.step % c.validate_every == 0 or self.step == c.steps):
                entry.update(self._validate())
            if self.step % c.checkpoint_every == 0 or self.step == c.steps or "score" in entry:
                self.history.append(entry)
                self.save_checkpoint()
            if max_seconds is not None and time.time() - start > max_seconds:
                self.save_checkpoint()
                break
        bar.close()
        return self.history

    def _validate(self) -> dict:
        # Batch statistics of 2-crop batches are noisy and the running averages lag behind the
        # weights; without re-estimating them the eval-mode model is far worse than the trained
        # one (AIS loss 1.57 eval vs 0.88 train mode at step 500 of the samzoo_tiny run).
        # A frozen encoder keeps its statistics: its embeddings may already be pooled.
        recalibrate_batchnorm(self.model, CropSampler(self.sampler.pairs, None, self.sampler.crop_size,
                                                      seed=4321, target_diameter=self.sampler.target_diameter), self.config.device,
                              include_encoder=not self.config.freeze_encoder)
        self.model.eval()
        with torch.no_grad():
            metrics = self.validate(self.model)
        self.model.train()
        tqdm.write(f"step {self.step}: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
        if metrics["score"] > self.best_score:
            self.best_score = metrics["score"]
            self.model.config.training = {"step": self.step, "validation": metrics}
            self.export(self.run_dir / "best.safetensors")
        return metrics


    def export(self, path: str | Path) -> Path:
        """Save the model as a samzoo safetensors file (LoRA adapters folded into the weights)."""
        if not self.config.lora_rank:
            return self.model.save(path)
        merged = copy.deepcopy(self.model)
        merge_lora(merged.sam.image_encoder)
        return merged.save(path)


@torch.no_grad()
def recalibrate_batchnorm(model: SamzooModel, sampler: CropSampler, device: str = "cpu",
                          n_batches: int = 8, batch_size: int = 4, include_encoder: bool = True) -> None:
    """Re-estimate every BatchNorm's running mean/variance as a plain average over fresh crops.

    Only the running statistics change (``momentum=None`` = cumulative average); the weights
    and the training trajectory are untouched, since training-mode forward passes use batch
    statistics.
    """
    parts = [model.sam.image_encoder] if include_encoder else []
    parts += [model.ais_decoder] if model.ais_decoder is not None else []
    norms = [m for part in parts for m in part.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    was_training = model.training
    model.train()
    model.sam.image_encoder.train(include_encoder)
    for _ in range(n_batches):
        images = torch.stack([sampler.sample()[0] for _ in range(batch_size)]).to(device)
        x = model.preprocess(images)
        embeddings = model.sam.image_encoder(x)
        if model.ais_decoder is not None:
            model.ais_decoder(embeddings, x)
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
    model.train(was_training)


def new_model(architecture: str = "samzoo_tiny", input_size: int = 512, name: str = "") -> SamzooModel:
    """A randomly initialised model with an AIS decoder (image skip on)."""
    return SamzooModel(ModelConfig(architecture=architecture, input_size=input_size,
                                   ais_decoder={"image_skip": True}, name=name))
