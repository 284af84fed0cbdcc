"""Helpers shared by the tracking tests (not fixtures: plain functions)."""

from __future__ import annotations

import numpy as np


def disk(shape, center, radius):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return (yy - center[0]) ** 2 + (xx - center[1]) ** 2 <= radius ** 2


def late_division_movie():
    """A nucleus (frames 0-1) divides; its daughters touch in frames 2-3 (one object in the
    'segmentation', two in the truth) and are apart in frames 4-5."""
    shape = (64, 80)
    truth = np.zeros((6,) + shape, dtype=np.uint16)
    truth[0][disk(shape, (32, 38), 9)] = 1
    truth[1][disk(shape, (32, 40), 9)] = 1
    for t, gap in zip(range(2, 6), (7, 8, 11, 13)):
        truth[t][disk(shape, (32, 40 - gap), 7)] = 2
        truth[t][disk(shape, (32, 40 + gap), 7) & (truth[t] == 0)] = 3
    tracks = np.array([[1, 0, 1, 0], [2, 2, 5, 1], [3, 2, 5, 1]])
    merged = truth.copy()
    merged[2:4][merged[2:4] > 0] = 2  # the segmentation sees one peanut-shaped object
    return merged, truth, tracks
