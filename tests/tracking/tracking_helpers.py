"""Helpers shared by the tracking tests (not fixtures: plain functions)."""

from __future__ import annotations

from pathlib import Path

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


def ctc_subset(sequence: Path, dst: Path, frames: range) -> Path:
    """A small CTC sequence from some frames of a real one: ``dst/01`` and ``dst/01_GT`` (TRA, SEG).

    Frames keep their numbers; tracks are clipped to the frames, and a parent that ends before
    them is dropped (its daughters start the lineage), as the CTC numbers a sequence's own start.
    """
    import shutil

    first, last = frames[0], frames[-1]
    for sub in ("01", "01_GT/TRA", "01_GT/SEG"):
        (dst / sub).mkdir(parents=True, exist_ok=True)
    for t in frames:
        shutil.copy(sequence / "01" / f"t{t:03d}.tif", dst / "01")
        shutil.copy(sequence / "01_GT" / "TRA" / f"man_track{t:03d}.tif", dst / "01_GT" / "TRA")
        seg = sequence / "01_GT" / "SEG" / f"man_seg{t:03d}.tif"
        if seg.exists():
            shutil.copy(seg, dst / "01_GT" / "SEG")
    rows = np.loadtxt(sequence / "01_GT" / "TRA" / "man_track.txt", dtype=np.int64, ndmin=2)
    rows = rows[(rows[:, 1] <= last) & (rows[:, 2] >= first)]
    rows[:, 1], rows[:, 2] = np.maximum(rows[:, 1], first), np.minimum(rows[:, 2], last)
    rows[~np.isin(rows[:, 3], rows[:, 0]), 3] = 0
    np.savetxt(dst / "01_GT" / "TRA" / "man_track.txt", rows, fmt="%d")
    return dst
