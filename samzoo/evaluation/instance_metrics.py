"""Instance segmentation metrics: segmentation accuracy (SA) and its mean over IoU thresholds.

SA at threshold t is TP / (TP + FP + FN), where a prediction and a ground-truth object match
(one-to-one) when their IoU is at least t; mSA averages SA over t = 0.50, 0.55, ..., 0.95, as
micro-sam and the cell-segmentation literature report it.

Matching is written here because no maintained dependency computes it from label images:
IoUs come from a sparse contingency table (scipy), the one-to-one assignment from
``scipy.optimize.linear_sum_assignment``. (For t >= 0.5 matches are unique anyway; the
assignment keeps lower thresholds correct too.)
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
from scipy import sparse
from scipy.optimize import linear_sum_assignment

THRESHOLDS = np.round(np.arange(0.5, 1.0, 0.05), 2)


def iou_matrix(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IoU of every predicted object with every ground-truth object.

    Parameters
    ----------
    pred, gt : ndarray of int, same shape (2D or 3D), 0 = background

    Returns
    -------
    iou : ndarray (n_pred, n_gt)
    pred_ids, gt_ids : ndarray
        The object ids of the rows and columns.
    """
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ in shape")
    pred_ids, pred_idx = np.unique(pred.ravel(), return_inverse=True)
    gt_ids, gt_idx = np.unique(gt.ravel(), return_inverse=True)
    table = sparse.coo_matrix((np.ones(pred_idx.size), (pred_idx, gt_idx)),
                              shape=(len(pred_ids), len(gt_ids))).toarray()
    area_pred, area_gt = table.sum(1, keepdims=True), table.sum(0, keepdims=True)
    iou = table / np.maximum(area_pred + area_gt - table, 1)
    keep_p, keep_g = pred_ids != 0, gt_ids != 0
    return iou[np.ix_(keep_p, keep_g)], pred_ids[keep_p], gt_ids[keep_g]


def _true_positives(iou: np.ndarray, threshold: float) -> int:
    if iou.size == 0:
        return 0
    rows, cols = linear_sum_assignment(-np.where(iou >= threshold, iou, 0))
    return int((iou[rows, cols] >= threshold).sum())


def match_counts(pred: np.ndarray, gt: np.ndarray, thresholds: Iterable[float] = THRESHOLDS) -> np.ndarray:
    """``(len(thresholds), 3)`` array of TP, FP, FN per threshold."""
    iou, pred_ids, gt_ids = iou_matrix(np.asarray(pred), np.asarray(gt))
    counts = []
    for t in thresholds:
        tp = _true_positives(iou, t)
        counts.append((tp, len(pred_ids) - tp, len(gt_ids) - tp))
    return np.array(counts)


def _scores(counts: np.ndarray) -> dict:
    """Metrics from TP/FP/FN counts per threshold (rows in THRESHOLDS order)."""
    tp, fp, fn = counts.T.astype(float)
    sa = np.where(tp + fp + fn > 0, tp / np.maximum(tp + fp + fn, 1), 1.0)
    n_pred, n_gt = tp[0] + fp[0], tp[0] + fn[0]
    return {"msa": float(sa.mean()), "sa50": float(sa[0]),
            "precision": float(tp[0] / n_pred) if n_pred else 1.0,
            "recall": float(tp[0] / n_gt) if n_gt else 1.0,
            "n_pred": int(n_pred), "n_gt": int(n_gt)}


def mean_segmentation_accuracy(pred: np.ndarray, gt: np.ndarray) -> float:
    """mSA: segmentation accuracy averaged over IoU thresholds 0.50:0.05:0.95 (1.0 if both are empty).

    Examples
    --------
    >>> gt = np.zeros((8, 8), int); gt[2:6, 2:6] = 1
    >>> mean_segmentation_accuracy(gt, gt)
    1.0
    """
    return _scores(match_counts(pred, gt))["msa"]


def evaluate_instances(pred: np.ndarray, gt: np.ndarray) -> dict:
    """``msa``, ``sa50``, ``precision`` and ``recall`` (at IoU 0.5), ``n_pred``, ``n_gt`` of one image."""
    return _scores(match_counts(pred, gt))


def evaluate_many(pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> tuple[list[dict], dict]:
    """Per-image metrics and overall metrics of ``(pred, gt)`` pairs.

    Overall metrics pool TP, FP and FN of all images per threshold before dividing, so every
    object counts once, whichever image it is in.
    """
    per_image, total = [], np.zeros((len(THRESHOLDS), 3))
    for pred, gt in pairs:
        counts = match_counts(pred, gt)
        per_image.append(_scores(counts))
        total += counts
    return per_image, _scores(total)
