"""Helpers shared by the tracking tests (not fixtures: plain functions)."""

from __future__ import annotations

import numpy as np


def disk(shape, center, radius):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return (yy - center[0]) ** 2 + (xx - center[1]) ** 2 <= radius ** 2


def shuffle_labels(masks: np.ndarray, seed: int = 0) -> np.ndarray:
    """The same objects with labels permuted independently in every frame (no track information)."""
    rng = np.random.default_rng(seed)
    out = np.zeros_like(masks)
    for t, frame in enumerate(masks):
        ids = np.unique(frame)[1:]
        lookup = np.zeros(int(frame.max()) + 1, dtype=masks.dtype)
        lookup[ids] = rng.permutation(len(ids)) + 1
        out[t] = lookup[frame]
    return out
