"""Losses for SAM masks and AIS maps."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def dice_loss(prob: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Soft dice loss per item: ``prob``/``target`` ``(N, ...)`` -> ``(N,)``."""
    prob, target = prob.flatten(1), target.flatten(1)
    inter = (prob * target).sum(1)
    return 1 - (2 * inter + eps) / (prob.sum(1) + target.sum(1) + eps)


def mask_losses(logits: torch.Tensor, gt: torch.Tensor, iou_pred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Losses of SAM mask predictions, choosing the best of several masks per object.

    Parameters
    ----------
    logits : Tensor (K, M, H, W)
        M candidate masks per object (M = 3 with multimask output, else 1).
    gt : Tensor (K, H, W) float in [0, 1]
        Ground truth at the logits' resolution (soft where downsampled).
    iou_pred : Tensor (K, M)
        The decoder's IoU predictions.

    Returns
    -------
    mask_loss : scalar, dice + BCE of the best candidate per object (as SAM trains).
    iou_loss : scalar, MSE between predicted and true IoU of every candidate.
    best : Tensor (K,) int64, the index of the best candidate.
    """
    k, m = logits.shape[:2]
    target = gt[:, None].float().expand(-1, m, -1, -1)
    hard_target = target > 0.5
    prob = torch.sigmoid(logits)
    per_mask = dice_loss(prob.reshape(k * m, -1), target.reshape(k * m, -1)).reshape(k, m)
    per_mask = per_mask + F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean((2, 3))
    best = per_mask.argmin(dim=1)
    mask_loss = per_mask.gather(1, best[:, None]).mean()
    with torch.no_grad():
        hard = logits > 0
        inter = (hard & hard_target).sum((2, 3)).float()
        union = (hard | hard_target).sum((2, 3)).float().clamp(min=1)
        true_iou = inter / union
    iou_loss = F.mse_loss(iou_pred, true_iou)
    return mask_loss, iou_loss, best


def ais_loss(pred: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """AIS loss: dice + BCE on foreground, MSE on the distance maps inside objects.

    ``pred`` and ``targets`` are ``(B, 3, H, W)`` (foreground, centre, boundary distance).
    The distances are only defined inside objects, and only used there at inference.
    """
    fg_pred, fg = pred[:, 0], targets[:, 0]
    loss = dice_loss(fg_pred, fg).mean() + F.binary_cross_entropy(fg_pred.clamp(1e-6, 1 - 1e-6), fg)
    return loss + _distance_loss(pred, targets)


def ais_distillation_loss(pred: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """How far AIS maps are from a teacher decoder's maps, both ``(B, 3, H, W)`` in [0, 1].

    BCE against the teacher's (soft) foreground, MSE on the distance maps weighted by the
    teacher's foreground: the watershed reads the distances only where the foreground is, so
    they need not agree elsewhere. Used to train a cheaper decoder to reproduce a trained one,
    so that the watershed thresholds chosen for the teacher's maps carry over.
    """
    loss = F.binary_cross_entropy(pred[:, 0].clamp(1e-6, 1 - 1e-6), teacher[:, 0])
    return loss + _distance_loss(pred, teacher)


def _distance_loss(pred: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """MSE of the two distance maps (channels 1, 2), weighted by the reference's foreground (channel 0)."""
    weight = reference[:, :1].expand(-1, 2, -1, -1)
    sq = (pred[:, 1:] - reference[:, 1:]) ** 2
    return 2.0 * (sq * weight).sum() / weight.sum().clamp(min=1)
