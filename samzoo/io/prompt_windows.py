"""Prompts on images larger than memory: each group of nearby objects is segmented in a window around it.

An embedding of a whole 10k x 10k slide costs hundreds of encoder passes; a few prompted objects
need only the model tiles around them. Objects are grouped by the cell of a ``block``-sized grid
their anchor (box centre or mean positive point, :meth:`Prompt.anchor`) falls in. A group's
*window* is the bounding box of its prompts, grown by ``margin`` pixels on every side (so an object
reaching beyond its prompts is still seen whole) and shifted, not shrunk, where it would reach
outside the image. One window is one work unit of :func:`samzoo.batch.run_batch`: read lazily, segmented
with its (shifted) prompts, its labels saved as one part file, atomically, so a killed job
resumes window by window. :func:`paste_windows` then writes every window's objects into one Zarr
label image, in window order (an object overlapping an earlier window's object wins its pixels,
as in :func:`samzoo.segmentation.predictor.paint_labels` within one window).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import xarray as xr

from samzoo.errors import InputError
from samzoo.io.blocks import BlockUnit, read_block
from samzoo.io.write import atomic_path
from samzoo.segmentation.predictor import Prompt, check_prompts
from samzoo.segmentation.tiling import Tile


@dataclass(frozen=True)
class PromptWindow:
    """One window of a large 2D image and the prompts of the objects in it (window pixels).

    Attributes
    ----------
    unit : BlockUnit
        The window as a block (its ``tile.outer`` is the window; read with :func:`read_block`).
    prompts : tuple of (int, Prompt)
        Object id and prompt, coordinates relative to the window's top-left corner.
    """

    unit: BlockUnit
    prompts: tuple[tuple[int, Prompt], ...]

    @property
    def name(self) -> str:
        """File name of the window's part."""
        return f"window_{self.unit.tile.index:05d}.npy"


def plan_windows(shape: tuple[int, int], prompts: Mapping[int, Prompt], source: str, axes: str | None, *,
                 block: int, margin: int) -> list[PromptWindow]:
    """Group ``prompts`` (image pixels) into windows of an image of ``shape`` ``(H, W)``.

    Parameters
    ----------
    shape : tuple of int
        ``(H, W)`` of the image.
    prompts : mapping of object id -> Prompt
        No mask prompts (they would be whole-image arrays).
    source, axes : str
        The image file and its axes, for the workers that read the windows.
    block : int
        Objects whose anchors share a cell of this size are segmented in one window.
    margin : int
        Pixels added around a group's prompts; use at least the model's tile size.

    Returns
    -------
    list of PromptWindow, ordered by grid cell (row-major).

    Examples
    --------
    >>> windows = plan_windows((4000, 4000), {1: Prompt(points=[[100, 100]], point_labels=[1]),
    ...                                       2: Prompt(box=[3000, 3000, 3050, 3080])},
    ...                        "big.zarr", None, block=2048, margin=256)
    >>> [w.unit.tile.outer for w in windows]
    [(0, 0, 513, 513), (2744, 2744, 3307, 3337)]
    """
    check_prompts(prompts, shape)
    groups: dict[tuple[int, int], list[int]] = {}
    for object_id, prompt in prompts.items():
        if prompt.mask is not None:
            raise InputError(f"object {object_id}: mask prompts are not supported on images this large")
        y, x = prompt.anchor()
        groups.setdefault((int(y) // block, int(x) // block), []).append(object_id)
    windows = []
    for index, cell in enumerate(sorted(groups)):
        ids = groups[cell]
        corners = np.concatenate([_corners(prompts[i]) for i in ids])
        (y0, x0), (y1, x1) = corners.min(0), corners.max(0) + 1
        (y0, y1), (x0, x1) = _clip(y0 - margin, y1 + margin, shape[0]), _clip(x0 - margin, x1 + margin, shape[1])
        outer = (y0, x0, y1, x1)
        tile = Tile(index=index, outer=outer, inner=outer)
        shifted = tuple((i, _shift(prompts[i], outer[0], outer[1])) for i in ids)
        windows.append(PromptWindow(BlockUnit(source, axes, (), tile), shifted))
    return windows


def _corners(prompt: Prompt) -> np.ndarray:
    points = [prompt.points] + ([prompt.box.reshape(2, 2)] if prompt.box is not None else [])
    return np.concatenate(points).astype(int)


def _clip(start: int, stop: int, size: int) -> tuple[int, int]:
    """``[start, stop)`` shifted (not shrunk) to lie inside ``[0, size)`` where it fits."""
    start, stop = int(start), int(stop)
    if stop > size:
        start, stop = start - (stop - size), size
    if start < 0:
        start, stop = 0, min(stop - start, size)
    return start, stop


def _shift(prompt: Prompt, dy: int, dx: int) -> Prompt:
    box = None if prompt.box is None else prompt.box - (dy, dx, dy, dx)
    return replace(prompt, points=prompt.points - (dy, dx), box=box)


def segment_window(segment_fn: Callable[[np.ndarray, dict], np.ndarray], window: PromptWindow, out_path: Path) -> None:
    """A work function for :func:`samzoo.batch.run_batch`: segment one window's objects, save its labels atomically.

    ``segment_fn(image, prompts)`` returns the labels ``(h, w)`` of the window image.
    """
    labels = np.asarray(segment_fn(read_block(window.unit), dict(window.prompts)))
    with atomic_path(out_path, directory=False) as tmp, open(tmp, "wb") as handle:
        np.save(handle, labels.astype(np.uint32, copy=False))


def paste_windows(windows: list[PromptWindow], parts: list[Path], out_path: str | os.PathLike, image: xr.DataArray,
                  *, chunk: int = 1024, attrs: dict | None = None) -> int:
    """Write every window's objects into one ``.zarr`` label image of ``image``'s shape, atomically.

    Returns
    -------
    int, the number of objects found (prompted objects whose mask came out empty are missing).
    """
    import zarr

    ids = sorted({i for window in windows for i, _ in window.prompts})
    dtype = next(t for t in (np.uint8, np.uint16, np.uint32, np.uint64) if max(ids, default=0) <= np.iinfo(t).max)
    shape = (image.sizes["y"], image.sizes["x"])
    found = set()
    with atomic_path(out_path, directory=True) as tmp:
        group = zarr.open_group(str(tmp), mode="w")
        array = group.create_array("labels", shape=shape, dtype=dtype, chunks=(min(chunk, shape[0]), min(chunk, shape[1])),
                                   fill_value=0, dimension_names=["y", "x"])
        array.attrs.update({k: v for k, v in (attrs or {}).items() if isinstance(v, (str, int, float, bool))})
        for window, part in zip(windows, parts):
            labels = np.load(part)
            region = window.unit.tile.outer_slice
            current = array[region]
            current[labels > 0] = labels[labels > 0]
            array[region] = current
            found.update(np.unique(labels[labels > 0]).tolist())
    return len(found)
