"""Geometry of label images shared by the linkers: overlaps, shifts, global drift."""

from __future__ import annotations

import numpy as np


def overlaps(a: np.ndarray, b: np.ndarray, labels_a: np.ndarray, labels_b: np.ndarray) -> np.ndarray:
    """Pixel counts of every ``(labels_a[i], labels_b[j])`` intersection of two label images.

    Returns
    -------
    ndarray (len(labels_a), len(labels_b)) int64
    """
    both = (a > 0) & (b > 0)
    pa, pb = a[both].astype(np.int64), b[both].astype(np.int64)
    out = np.zeros((len(labels_a), len(labels_b)), dtype=np.int64)
    if pa.size == 0 or len(labels_a) == 0 or len(labels_b) == 0:
        return out
    index_a = np.full(int(max(pa.max(), labels_a.max())) + 1, -1)
    index_a[labels_a] = np.arange(len(labels_a))
    index_b = np.full(int(max(pb.max(), labels_b.max())) + 1, -1)
    index_b[labels_b] = np.arange(len(labels_b))
    ia, ib = index_a[pa], index_b[pb]
    keep = (ia >= 0) & (ib >= 0)
    np.add.at(out, (ia[keep], ib[keep]), 1)
    return out


def estimate_drift(a: np.ndarray, b: np.ndarray, *, min_iou: float = 0.5) -> np.ndarray:
    """Global translation of the objects from label image ``a`` to ``b`` (phase correlation of the foregrounds).

    Whole colonies or fields of view can move by more than an object diameter between frames
    (stage drift, flow); linking then compares positions after removing this shift.

    Parameters
    ----------
    a, b : ndarray (..., Y, X) int
    min_iou : float
        The shift is used only if the shifted foreground of ``a`` has at least this IoU with
        that of ``b`` (and 0.1 more than without the shift); otherwise there is no drift.

    Returns
    -------
    ndarray (ndim,) float, ``(dy, dx)`` or ``(dz, dy, dx)``: content at ``p`` in ``a`` is near
    ``p + drift`` in ``b``.
    """
    from skimage.registration import phase_cross_correlation

    fa, fb = (a > 0).astype(np.float32), (b > 0).astype(np.float32)
    if not fa.any() or not fb.any():
        return np.zeros(a.ndim)
    shift, _, _ = phase_cross_correlation(fa, fb, normalization=None)
    drift = -np.asarray(shift, dtype=float)
    # With few objects a correlation peak can be one object landing on another (e.g. a mother on
    # one daughter); accept the shift only if it makes the foregrounds agree well and better.
    def iou(x: np.ndarray) -> float:
        return float((x & (b > 0)).sum() / max((x | (b > 0)).sum(), 1))

    moved = iou(shift_labels(a > 0, drift))
    return drift if moved >= min_iou and moved >= iou(a > 0) + 0.1 else np.zeros(a.ndim)


def shift_labels(labels: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``labels`` moved by the integer-rounded ``shift`` (any number of axes); what leaves the array is lost."""
    out = np.zeros_like(labels)
    src, dst = [], []
    for size, s in zip(labels.shape, (int(round(v)) for v in shift)):
        src.append(slice(max(-s, 0), size - max(s, 0)))
        dst.append(slice(max(s, 0), size - max(-s, 0)))
    if all(d.stop > d.start for d in dst):
        out[tuple(dst)] = labels[tuple(src)]
    return out
