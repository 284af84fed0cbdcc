"""Label movies that stay on disk: read and relabel them one frame at a time.

The tracking functions take masks ``(T, [Z,] Y, X)`` either as a numpy array or as any
*lazy* array-like with ``shape``, ``ndim``, ``dtype`` and ``masks[t]`` indexing (a Zarr array,
a dask array, :class:`RelabelledMasks`). A lazy movie is never converted as a whole: each
function reads ``masks[t]`` (or a crop of it) when it needs that frame, so a movie larger than
memory can be linked and exported with a few frames in memory at a time.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def is_lazy(masks) -> bool:
    """Whether ``masks`` is an array-like to read frame by frame (anything but a numpy array or a list)."""
    if isinstance(masks, np.ndarray):
        return False
    return all(hasattr(masks, name) for name in ("shape", "ndim", "dtype", "__getitem__"))


def editable(masks, in_place: bool, caller: str):
    """``masks`` to change: a copy, or with ``in_place`` the array itself (the only way for lazy masks).

    A lazy movie may be larger than memory, so it is never copied here: the caller changes it
    in place, on a copy on disk it made itself.
    """
    if in_place:
        return masks
    if is_lazy(masks):
        raise ValueError(f"{caller} changes lazy masks only in place: pass in_place=True (on a copy you may change)")
    return masks.copy()


def read_frame(masks, t: int) -> np.ndarray:
    """Frame ``t`` of a numpy or lazy movie as a numpy array."""
    return np.asarray(masks[t])


def relabel_frame(frame: np.ndarray, table: Mapping[int, int] | None) -> np.ndarray:
    """``frame`` with its labels replaced by ``table`` (old -> new); labels not in it become 0 (uint32)."""
    frame = np.asarray(frame)
    if not table:
        return np.zeros(frame.shape, dtype=np.uint32)
    top = int(frame.max(initial=0))
    lookup = np.zeros(top + 1, dtype=np.uint32)
    old = np.array(list(table), dtype=np.int64)
    keep = old <= top  # a graph label absent from this frame is simply not painted
    lookup[old[keep]] = np.array(list(table.values()), dtype=np.uint32)[keep]
    return lookup[frame]


class RelabelledMasks:
    """A read-only view of a label movie with every frame relabelled by ``mapping`` on reading.

    ``view[t]`` reads ``masks[t]`` and returns it relabelled (uint32); nothing is stored. This
    is what :func:`samzoo.tracking.lineage.relabel_tracks` returns for lazy masks, instead of a
    relabelled copy of the whole movie.

    Parameters
    ----------
    masks : array-like (T, [Z,] Y, X) int
    mapping : dict
        ``t -> {old label: new label}``; labels missing from a frame's table become 0.
    """

    dtype = np.dtype(np.uint32)

    def __init__(self, masks, mapping: Mapping[int, Mapping[int, int]]):
        self.masks = masks
        self.mapping = mapping
        self.shape = tuple(masks.shape)
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        t, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        if not isinstance(t, (int, np.integer)):
            raise TypeError("RelabelledMasks reads one frame at a time: index it with an integer frame first")
        t = int(t) + (len(self) if t < 0 else 0)
        frame = relabel_frame(read_frame(self.masks, t), self.mapping.get(t))
        return frame[rest] if rest else frame

    def __array__(self, dtype=None, copy=None):
        # an explicit np.asarray(view) materialises the whole movie: fine for small ones
        out = np.stack([self[t] for t in range(len(self))]) if len(self) else np.zeros(self.shape, self.dtype)
        return out if dtype is None else out.astype(dtype)

    def __repr__(self) -> str:
        return f"RelabelledMasks(shape={self.shape}, masks={type(self.masks).__name__})"
