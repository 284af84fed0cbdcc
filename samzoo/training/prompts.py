"""Prompts simulated from ground truth, as SAM and micro-sam train and evaluate interactively.

All coordinates follow SAM's convention: points are ``(x, y)`` pixel positions, boxes
``(x0, y0, x1, y1)``, in the model-input frame.
"""

from __future__ import annotations

import torch


def sample_objects(labels: torch.Tensor, n_objects: int, min_area: int = 16,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Pick up to ``n_objects`` random object ids of at least ``min_area`` pixels.

    Parameters
    ----------
    labels : Tensor (H, W) int
        Instance labels, 0 = background.

    Returns
    -------
    Tensor (K,) int64, K <= n_objects (empty when no object qualifies).
    """
    ids, counts = torch.unique(labels, return_counts=True)
    ids = ids[(ids != 0) & (counts >= min_area)]
    order = torch.randperm(len(ids), generator=generator)
    return ids[order[:n_objects]]


def random_points_in(masks: torch.Tensor, generator: torch.Generator | None = None,
                     weights: torch.Tensor | None = None) -> torch.Tensor:
    """One random pixel ``(x, y)`` inside each mask; ``(K, 2)`` float.

    ``masks`` is ``(K, H, W)`` bool, every mask non-empty. ``weights`` (``(K, H, W)``, >= 0),
    when given, makes some pixels likelier (e.g. the distance to the boundary, for points away
    from the edge as a person would click).
    """
    k, h, w = masks.shape
    p = masks.float().reshape(k, -1)
    if weights is not None:
        p = p * weights.reshape(k, -1) + p * 1e-3  # fall back to uniform if weights vanish
    flat = torch.multinomial(p, 1, generator=generator)[:, 0]
    return torch.stack([flat % w, flat // w], dim=1).float()


def boxes_of(masks: torch.Tensor, jitter: float = 0.0,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """Bounding boxes ``(K, 4)`` as ``(x0, y0, x1, y1)`` of non-empty ``(K, H, W)`` masks.

    ``jitter`` moves each side by a Gaussian fraction of the box size (0.1 = 10 %), as a
    person's box is never exact.
    """
    k, h, w = masks.shape
    rows, cols = masks.any(dim=2), masks.any(dim=1)
    ar_h, ar_w = torch.arange(h), torch.arange(w)
    y0 = torch.where(rows, ar_h, h).min(dim=1).values
    y1 = torch.where(rows, ar_h, -1).max(dim=1).values
    x0 = torch.where(cols, ar_w, w).min(dim=1).values
    x1 = torch.where(cols, ar_w, -1).max(dim=1).values
    boxes = torch.stack([x0, y0, x1, y1], dim=1).float()
    if jitter > 0:
        size = torch.stack([x1 - x0, y1 - y0, x1 - x0, y1 - y0], dim=1).float() + 1
        boxes = boxes + torch.randn(boxes.shape, generator=generator) * jitter * size
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w - 1)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h - 1)
    return boxes


def corrective_points(pred: torch.Tensor, gt: torch.Tensor,
                      generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One corrective click per object from the error of the current prediction.

    Where the prediction missed more pixels than it wrongly added, a positive point in the
    missed region; otherwise a negative point in the wrongly added region. Objects predicted
    perfectly get a positive point inside the object (a harmless confirmation).

    Parameters
    ----------
    pred, gt : Tensor (K, H, W) bool

    Returns
    -------
    points : Tensor (K, 2) float, ``(x, y)``
    labels : Tensor (K,) int64, 1 = positive, 0 = negative
    """
    missed, added = gt & ~pred, pred & ~gt
    positive = missed.sum(dim=(1, 2)) >= added.sum(dim=(1, 2))
    region = torch.where(positive[:, None, None], missed, added)
    empty = ~region.any(dim=(1, 2))
    region[empty] = gt[empty]
    positive = positive | empty
    return random_points_in(region, generator), positive.long()
