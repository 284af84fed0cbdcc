import numpy as np
import pytest

from samzoo.segmentation.tiling import owning_tile, owning_tiles, tile_grid


@pytest.mark.parametrize("shape", [(50, 60), (700, 1100), (128, 700), (129, 129)])
def test_inner_regions_partition_the_image(shape):
    tiles = tile_grid(shape, tile_size=128, halo=16)
    cover = np.zeros(shape, dtype=int)
    for t in tiles:
        cover[t.inner_slice] += 1
        h, w = t.outer[2] - t.outer[0], t.outer[3] - t.outer[1]
        assert h <= 128 and w <= 128
        # the inner region sits inside the outer one
        assert t.outer[0] <= t.inner[0] and t.inner[2] <= t.outer[2]
    assert (cover == 1).all()


def test_owning_tile_and_bad_halo():
    tiles = tile_grid((300, 300), tile_size=128, halo=16)
    for y, x in [(0, 0), (150, 299), (299, 97)]:
        t = owning_tile(tiles, y, x)
        assert t.inner[0] <= y < t.inner[2] and t.inner[1] <= x < t.inner[3]
    with pytest.raises(ValueError, match="halo"):
        tile_grid((300, 300), tile_size=128, halo=64)


def _owner_one_by_one(tiles, y, x):
    for i, t in enumerate(tiles):
        if t.inner[0] <= y < t.inner[2] and t.inner[1] <= x < t.inner[3]:
            return i
    centres = np.array([[(t.inner[0] + t.inner[2]) / 2, (t.inner[1] + t.inner[3]) / 2] for t in tiles])
    return int(np.argmin(((centres - [y, x]) ** 2).sum(1)))


def test_owning_tiles_of_many_points_at_once():
    tiles = tile_grid((300, 500), tile_size=128, halo=16)
    rng = np.random.default_rng(0)
    points = np.concatenate([rng.uniform(0, [300, 500], (5000, 2)), [[-5, -5], [310, 200], [0, 499.5]]])
    expected = [_owner_one_by_one(tiles, y, x) for y, x in points]  # the last three lie outside: the nearest
    assert owning_tiles(tiles, points).tolist() == expected
    assert [owning_tile(tiles, y, x).index for y, x in points[-3:]] == expected[-3:]
