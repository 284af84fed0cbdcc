"""Images larger than memory: segmented block by block, stitched where blocks overlap, written to Zarr.

Every 2D plane is cut into *blocks* with a halo, by the same rule that cuts images into model
tiles (:func:`samzoo.segmentation.tiling.tile_grid`, at block scale). One block is one work
unit of :func:`samzoo.batch.run_batch`: its outer region is read lazily, segmented on its own
(any 2D segmentation, itself tiled at the model's input size), and its labels saved as one part
file, atomically. A killed job therefore resumes block by block.

Stitching: two neighbouring blocks both segment their overlap (twice the halo wide). Labels
of the two blocks that cover the same object there (IoU within the overlap at least
``iou_threshold``) are one object (union-find over ``(block, label)``). Each block then writes
only its inner region, relabelled to global ids numbered in block order, so the result does not
depend on the order in which blocks finished. An object narrower than the halo that crosses a
block border is seen whole by both blocks and joined; memory holds a few blocks at a time.
"""

from __future__ import annotations

import bisect
import itertools
import os
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Callable

import numpy as np
import xarray as xr

from samzoo.io.image import read_image
from samzoo.io.write import atomic_path
from samzoo.segmentation.tiling import Tile, tile_grid
from samzoo.segmentation.volume import find_root


@dataclass(frozen=True)
class BlockUnit:
    """One block of one plane: what a worker needs to read and segment it.

    Attributes
    ----------
    source : str
        The image file (read lazily by each worker).
    axes : str or None
        Axes to read it with.
    plane : tuple of int
        Index along the image's ``t``/``z`` dims (empty for a 2D image).
    tile : Tile
        The block's outer and inner region in plane pixels.
    """

    source: str
    axes: str | None
    plane: tuple[int, ...]
    tile: Tile

    @property
    def name(self) -> str:
        """File name of the block's part: plane and block index."""
        plane = "-".join(str(i) for i in self.plane) or "0"
        return f"p{plane}_b{self.tile.index:05d}.npy"


def plane_dims(image: xr.DataArray) -> list[str]:
    """The dims that index planes (``t``, ``z``)."""
    return [d for d in image.dims if d in ("t", "z")]


def plan_blocks(image: xr.DataArray, source: str, axes: str | None, block: int, halo: int) -> list[BlockUnit]:
    """Every block of every plane of ``image`` (read from ``source`` with ``axes``)."""
    tiles = tile_grid((image.sizes["y"], image.sizes["x"]), block, halo)
    planes = itertools.product(*[range(image.sizes[d]) for d in plane_dims(image)])
    return [BlockUnit(str(source), axes, plane, tile) for plane in planes for tile in tiles]


@lru_cache(maxsize=2)
def _open(source: str, axes: str | None) -> xr.DataArray:
    # Zarr opens lazily (cheap); other files are read whole, so keep the last ones per process
    return read_image(source, axes=axes)


def read_block(unit: BlockUnit) -> np.ndarray:
    """The outer region of a block, ``(h, w)`` or ``(h, w, c)``, read from its source."""
    image = _open(unit.source, unit.axes)
    selection = dict(zip(plane_dims(image), unit.plane))
    y, x = unit.tile.outer_slice
    region = image.isel(selection).isel(y=y, x=x).transpose("y", "x", ...)
    return np.asarray(region.values)


def segment_block(segment_fn: Callable[[np.ndarray], np.ndarray], unit: BlockUnit, out_path: Path) -> None:
    """A work function for :func:`samzoo.batch.run_batch`: segment one block, save its labels atomically."""
    labels = np.asarray(segment_fn(read_block(unit)))
    with atomic_path(out_path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, labels.astype(np.int32, copy=False))


def _overlap(a: Tile, b: Tile) -> tuple[int, int, int, int] | None:
    y0, x0 = max(a.outer[0], b.outer[0]), max(a.outer[1], b.outer[1])
    y1, x1 = min(a.outer[2], b.outer[2]), min(a.outer[3], b.outer[3])
    return (y0, x0, y1, x1) if y0 < y1 and x0 < x1 else None


def _crop(labels: np.ndarray, tile: Tile, region: tuple[int, int, int, int]) -> np.ndarray:
    y0, x0, y1, x1 = region
    return labels[y0 - tile.outer[0]:y1 - tile.outer[0], x0 - tile.outer[1]:x1 - tile.outer[1]]


def _overlapping_pairs(units: list[BlockUnit], indices: list[int]):
    """``(i, j, overlap)`` for the blocks of one plane whose outer regions overlap, ``i < j``.

    Blocks form a grid (rows share their inner ``y0``); only rows whose outer regions overlap
    are compared, and within them only blocks whose outer ``x`` ranges overlap, so the cost
    grows with the number of blocks, not with its square.
    """
    rows: dict[int, list[int]] = {}
    for i in indices:
        rows.setdefault(units[i].tile.inner[0], []).append(i)
    keys = sorted(rows)
    for r, key in enumerate(keys):
        bottom = units[rows[key][0]].tile.outer[2]
        for other in keys[r:]:
            if units[rows[other][0]].tile.outer[0] >= bottom:
                break  # rows further down start below this row's outer region
            # outer starts and ends both increase along a row: bisect for the overlapping run
            starts = [units[j].tile.outer[1] for j in rows[other]]
            ends = [units[j].tile.outer[3] for j in rows[other]]
            for i in rows[key]:
                tile = units[i].tile
                first, stop = bisect.bisect_right(ends, tile.outer[1]), bisect.bisect_left(starts, tile.outer[3])
                for j in rows[other][first:stop]:
                    if other == key and j <= i:
                        continue
                    region = _overlap(tile, units[j].tile)
                    if region is not None:
                        yield min(i, j), max(i, j), region


def matching_pairs(a: np.ndarray, b: np.ndarray, iou_threshold: float) -> list[tuple[int, int]]:
    """Label pairs ``(la, lb)`` of two segmentations of the same pixels with IoU >= ``iou_threshold``.

    Examples
    --------
    >>> a = np.array([[1, 1, 0, 2]]); b = np.array([[5, 5, 0, 0]])
    >>> matching_pairs(a, b, 0.5)
    [(1, 5)]
    """
    a, b = a.ravel().astype(np.int64), b.ravel().astype(np.int64)
    both = (a > 0) & (b > 0)
    if not both.any():
        return []
    pairs, counts = np.unique(np.stack([a[both], b[both]]), axis=1, return_counts=True)
    la, ca = np.unique(a[a > 0], return_counts=True)
    lb, cb = np.unique(b[b > 0], return_counts=True)
    area_a, area_b = dict(zip(la.tolist(), ca.tolist())), dict(zip(lb.tolist(), cb.tolist()))
    return [(int(x), int(y)) for (x, y), c in zip(pairs.T.tolist(), counts.tolist())
            if c / (area_a[x] + area_b[y] - c) >= iou_threshold]


def stitch_blocks(units: list[BlockUnit], parts: list[Path], out_path: str | os.PathLike, image: xr.DataArray,
                  *, iou_threshold: float = 0.5, attrs: dict | None = None, progress: bool = False) -> int:
    """Join the block labels into one label image in Zarr, atomically.

    Parameters
    ----------
    units, parts : list
        The blocks (from :func:`plan_blocks`) and their part files, in the same order.
    out_path : path
        A ``.zarr`` folder: a group with one array ``labels`` (dims stored as the array's
        dimension names), which :func:`samzoo.io.read_image` and ``xarray.open_zarr`` read.
    image : DataArray
        The (lazy) input, for its shape and dims.
    iou_threshold : float
        Labels of neighbouring blocks with at least this IoU within their overlap are one object.
    attrs : dict, optional
        Stored on the output array (e.g. the model name).

    Returns
    -------
    int, the number of objects.
    """
    import zarr
    from tqdm import tqdm

    load = lru_cache(maxsize=8)(lambda p: np.load(p))
    parent: dict[tuple[int, int], tuple[int, int]] = {}

    find = partial(find_root, parent)

    by_plane: dict[tuple[int, ...], list[int]] = {}
    for i, unit in enumerate(units):
        by_plane.setdefault(unit.plane, []).append(i)
    for indices in by_plane.values():
        for i, j, region in _overlapping_pairs(units, indices):
            a = _crop(load(parts[i]), units[i].tile, region)
            b = _crop(load(parts[j]), units[j].tile, region)
            for la, lb in matching_pairs(a, b, iou_threshold):
                ra, rb = find((i, la)), find((j, lb))
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)  # the earliest block's label is the root
    # global ids, numbered by first appearance in block order: independent of finishing order
    ids: dict[tuple[int, int], int] = {}
    for i, unit in enumerate(units):
        for label in np.unique(load(parts[i])[unit.tile.inner_in_outer]).tolist():
            if label:
                ids.setdefault(find((i, label)), len(ids) + 1)
    dtype = next(t for t in (np.uint8, np.uint16, np.uint32, np.uint64) if len(ids) <= np.iinfo(t).max)
    dims = [d for d in image.dims if d != "c"]
    shape = tuple(image.sizes[d] for d in dims)
    tile0 = units[0].tile
    chunk = (max(tile0.inner[2] - tile0.inner[0], 1), max(tile0.inner[3] - tile0.inner[1], 1))
    with atomic_path(out_path, directory=True) as tmp:
        group = zarr.open_group(str(tmp), mode="w")
        array = group.create_array("labels", shape=shape, dtype=dtype, chunks=(1,) * (len(shape) - 2) + chunk,
                                   fill_value=0, dimension_names=dims)
        array.attrs.update({k: v for k, v in (attrs or {}).items() if isinstance(v, (str, int, float, bool))})
        for i, unit in enumerate(tqdm(units, desc="stitching", unit="block", disable=not progress, leave=False)):
            inner = load(parts[i])[unit.tile.inner_in_outer]
            lut = np.zeros(int(inner.max()) + 1 if inner.size else 1, dtype=dtype)
            for label in np.unique(inner).tolist():
                if label:
                    lut[label] = ids[find((i, label))]
            array[unit.plane + unit.tile.inner_slice] = lut[inner]
    return len(ids)


class _ZStack:
    """One z-stack of a Zarr label array, read and written slice by slice (zarr has no views)."""

    def __init__(self, array, z_axis: int, index: tuple[int, ...]):
        self.array, self.z_axis, self.index = array, z_axis, index

    def __len__(self) -> int:
        return self.array.shape[self.z_axis]

    def _key(self, z: int) -> tuple:
        return self.index[:self.z_axis] + (z,) + self.index[self.z_axis:]

    def __getitem__(self, z: int) -> np.ndarray:
        return self.array[self._key(z)]

    def __setitem__(self, z: int, plane: np.ndarray) -> None:
        self.array[self._key(z)] = plane


def merge_z_zarr(source: str | os.PathLike, out_path: str | os.PathLike, *, min_z_extent: int = 2,
                 progress: bool = False) -> int:
    """Join the per-slice labels of a stitched ``.zarr`` (from :func:`stitch_blocks`) into 3D objects.

    The same rule as in memory (:func:`samzoo.segmentation.volume.merge_slices`), reading two
    slices at a time, so volumes larger than memory merge as long as one slice fits. Each time
    point's volume is numbered from 1. Written atomically to ``out_path`` (same dims, chunks and
    attributes as ``source``).

    Returns
    -------
    int, the number of 3D objects (summed over time points).
    """
    import zarr
    from tqdm import tqdm

    from samzoo.segmentation.volume import merge_slices

    labels = zarr.open_group(str(source), mode="r")["labels"]
    dims = list(labels.metadata.dimension_names)
    z_axis = dims.index("z")
    others = [range(n) for d, n in zip(dims[:-2], labels.shape[:-2]) if d != "z"]
    n = 0
    with atomic_path(out_path, directory=True) as tmp:
        group = zarr.open_group(str(tmp), mode="w")
        merged = group.create_array("labels", shape=labels.shape, dtype=labels.dtype, chunks=labels.chunks,
                                    fill_value=0, dimension_names=dims)
        merged.attrs.update(dict(labels.attrs))
        for index in tqdm(list(itertools.product(*others)), desc="merging z", unit="volume",
                          disable=not progress, leave=False):
            result = merge_slices(_ZStack(labels, z_axis, index), out=_ZStack(merged, z_axis, index),
                                  min_z_extent=min_z_extent)
            n += int(max((np.max(result[z]) for z in range(len(result))), default=0))
    return n
