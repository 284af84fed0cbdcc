"""Validation during training: a fixed set of held-out crops and a score on them."""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from samzoo.training.data import CropSampler, TrainingPair
from samzoo.training.losses import ais_loss
from samzoo.training.prompts import random_points_in


def validation_crops(pairs: list[TrainingPair], crop_size: int, n_crops: int = 12,
                     target_diameter: float | None = None) -> list[tuple]:
    """``n_crops`` crops ``(image, labels, targets)`` of ``pairs``, the same ones on every call.

    The sampler is seeded, and so is the noise its augmentation draws from torch's global
    generator (without that, runs, resumed runs and scripts scoring a model afresh would each
    score slightly different pixels); the caller's random state is left as it was.
    """
    sampler = CropSampler(pairs, crop_size=crop_size, seed=1234, target_diameter=target_diameter)
    with torch.random.fork_rng():
        torch.manual_seed(1234)
        return [sampler.sample() for _ in range(n_crops)]


def make_validation(pairs: list[TrainingPair], crop_size: int, n_crops: int = 12,
                    target_diameter: float | None = None):
    """A fixed set of held-out crops and a function scoring a model on them.

    Score = mean IoU of one positive point per object (best of SAM's 3 masks by predicted IoU)
    minus the AIS loss; higher is better. The crops are drawn once (:func:`validation_crops`),
    so scores of different steps, runs and scripts compare the same pixels; with
    ``target_diameter`` their objects are brought to that size, as in diameter-normalised training.
    """
    crops = validation_crops(pairs, crop_size, n_crops, target_diameter)

    def validate(model) -> dict:
        ious, ais = [], []
        device = next(model.parameters()).device
        for image, labels, targets in crops:
            image, labels, targets = image.to(device), labels.to(device), targets.to(device)
            x = model.preprocess(image[None])
            emb = model.sam.image_encoder(x)
            pred = model.ais_decoder(emb, x)
            ais.append(ais_loss(pred, targets[None]).item())
            ids = torch.unique(labels)[1:]
            if len(ids) == 0:
                continue
            gt = labels[None] == ids[:, None, None]
            points = random_points_in(gt.cpu(), torch.Generator().manual_seed(0),
                                     weights=targets[2][None].expand(len(ids), -1, -1).cpu()).to(device)
            ones = torch.ones(len(ids), 1, dtype=torch.long, device=device)
            sparse, dense = model.sam.prompt_encoder(points=(points[:, None], ones),
                                                     boxes=None, masks=None)
            low, iou_pred = model.sam.mask_decoder(emb, model.sam.prompt_encoder.get_dense_pe(), sparse, dense, True)
            best = iou_pred.argmax(1)
            masks = F.interpolate(low, size=tuple(labels.shape), mode="bilinear")[torch.arange(len(ids)), best] > 0
            inter, union = (masks & gt).sum((1, 2)), (masks | gt).sum((1, 2)).clamp(min=1)
            ious += (inter / union).tolist()
        point_iou, ais_val = float(np.mean(ious)), float(np.mean(ais))
        return {"val_point_iou": point_iou, "val_ais_loss": ais_val, "score": point_iou - ais_val}

    return validate
