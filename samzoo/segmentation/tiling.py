"""Tiles with halo: how an image larger than the model input is cut up and put back together.

Each tile has an *inner* region, the part of the image it is responsible for (the inner
regions partition the image), and an *outer* region, the inner region grown by ``halo``
pixels on each side and clipped to the image; the model sees the outer region. An object up to
``halo`` pixels across that touches an inner border is therefore whole in the tile that owns it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tile:
    """One tile: ``outer`` and ``inner`` as ``(y0, x0, y1, x1)`` in image pixels."""

    index: int
    outer: tuple[int, int, int, int]
    inner: tuple[int, int, int, int]

    @property
    def outer_slice(self) -> tuple[slice, slice]:
        y0, x0, y1, x1 = self.outer
        return slice(y0, y1), slice(x0, x1)

    @property
    def inner_slice(self) -> tuple[slice, slice]:
        y0, x0, y1, x1 = self.inner
        return slice(y0, y1), slice(x0, x1)

    @property
    def inner_in_outer(self) -> tuple[slice, slice]:
        """The inner region in the tile's own (outer) coordinates."""
        return (slice(self.inner[0] - self.outer[0], self.inner[2] - self.outer[0]),
                slice(self.inner[1] - self.outer[1], self.inner[3] - self.outer[1]))


def tile_grid(shape: tuple[int, int], tile_size: int, halo: int) -> list[Tile]:
    """Cut an image of ``shape`` ``(H, W)`` into tiles whose outer region fits ``tile_size``.

    Parameters
    ----------
    shape : (int, int)
        Image height and width.
    tile_size : int
        The model input size; every outer region is at most this large.
    halo : int
        Overlap on each side, ``0 <= 2 * halo < tile_size``. Ignored when the image fits one tile.

    Returns
    -------
    list of Tile, in row-major order.

    Examples
    --------
    >>> [t.inner for t in tile_grid((100, 300), tile_size=128, halo=16)][:2]
    [(0, 0, 100, 96), (0, 96, 100, 192)]
    """
    if not 0 <= 2 * halo < tile_size:
        raise ValueError(f"halo must satisfy 0 <= 2 * halo < tile_size, got halo={halo}, tile_size={tile_size}")
    height, width = shape
    if height <= tile_size and width <= tile_size:
        return [Tile(0, (0, 0, height, width), (0, 0, height, width))]
    tiles = []
    for y0, y1 in _spans(height, tile_size, halo):
        for x0, x1 in _spans(width, tile_size, halo):
            outer = (max(y0 - halo, 0), max(x0 - halo, 0), min(y1 + halo, height), min(x1 + halo, width))
            tiles.append(Tile(len(tiles), outer, (y0, x0, y1, x1)))
    return tiles


def _spans(length: int, tile_size: int, halo: int) -> list[tuple[int, int]]:
    """Inner ``(start, stop)`` along one axis; an axis that fits the input is one span."""
    if length <= tile_size:
        return [(0, length)]
    step = tile_size - 2 * halo
    return [(start, min(start + step, length)) for start in range(0, length, step)]


def owning_tiles(tiles: list[Tile], points: np.ndarray) -> np.ndarray:
    """Per ``(y, x)`` row of ``points``, the position in ``tiles`` of the tile whose inner region holds it.

    A point outside every inner region (outside the image) belongs to the tile whose inner
    region's centre is nearest.
    """
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    inner = np.array([t.inner for t in tiles], dtype=float)  # (T, 4)
    centres = np.stack([(inner[:, 0] + inner[:, 2]) / 2, (inner[:, 1] + inner[:, 3]) / 2], -1)
    out = np.empty(len(points), dtype=int)
    for start in range(0, len(points), 4096):  # (points, tiles) arrays of bounded size
        p = points[start:start + 4096]
        y, x = p[:, :1], p[:, 1:]
        inside = (inner[:, 0] <= y) & (y < inner[:, 2]) & (inner[:, 1] <= x) & (x < inner[:, 3])
        nearest = ((p[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
        out[start:start + 4096] = np.where(inside.any(1), inside.argmax(1), nearest)
    return out


def owning_tile(tiles: list[Tile], y: float, x: float) -> Tile:
    """The tile whose inner region contains the pixel ``(y, x)`` (the nearest one for a pixel outside the image)."""
    return tiles[int(owning_tiles(tiles, [(y, x)])[0])]
