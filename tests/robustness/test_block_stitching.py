"""Property: segmenting block by block and stitching gives the whole-image result, whatever the
block size, halo and object layout, as long as objects are smaller than the halo."""

from pathlib import Path
import tempfile

import numpy as np
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage as ndi

import samzoo.io.blocks as blocks
from samzoo.batch import run_batch
from samzoo.io import read_image


def _discs(shape, centres, radius):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    image = np.zeros(shape, np.uint8)
    for y, x in centres:
        image[(yy - y) ** 2 + (xx - x) ** 2 <= radius ** 2] = 1
    return image


def _components(block):
    return ndi.label(block > 0)[0]


@settings(max_examples=25, deadline=None)
@given(height=st.integers(40, 260), width=st.integers(40, 260), block=st.integers(64, 160),
       radius=st.integers(1, 6), seed=st.integers(0, 2**16), n=st.integers(0, 50), data=st.data())
def test_stitched_blocks_equal_the_whole_image(height, width, block, radius, seed, n, data):
    halo = data.draw(st.integers(2 * radius + 2, block // 4))  # the CLI allows up to a quarter
    rng = np.random.default_rng(seed)
    centres = []
    for y, x in rng.uniform([0, 0], [height, width], size=(n, 2)):
        # discs at least 2 px apart: objects never touch, so each is one component everywhere
        if all((y - cy) ** 2 + (x - cx) ** 2 > (2 * radius + 3) ** 2 for cy, cx in centres):
            centres.append((y, x))
    image = _discs((height, width), centres, radius)
    whole = _components(image)
    array = read_image(image)
    units = blocks.plan_blocks(array, "memory", None, block, halo)
    with tempfile.TemporaryDirectory() as tmp:
        parts = [Path(tmp) / u.name for u in units]
        original = blocks._open
        blocks._open = lambda source, axes: array
        try:
            run_batch(units, lambda u, p: blocks.segment_block(_components, u, p), parts, scheduler="synchronous",
                      progress=False)
        finally:
            blocks._open = original
        n_objects = blocks.stitch_blocks(units, parts, Path(tmp) / "out.zarr", array)
        stitched = np.asarray(zarr.open_group(str(Path(tmp) / "out.zarr"), mode="r")["labels"][:])
    assert n_objects == whole.max()
    # the same objects, numbered 1..n (ids may differ from the whole-image labelling)
    assert np.array_equal(stitched > 0, whole > 0)
    pairs = np.unique(np.stack([stitched[whole > 0], whole[whole > 0]]), axis=1)
    assert pairs.shape[1] == n_objects and len(np.unique(pairs[0])) == n_objects
    assert set(np.unique(stitched)) == set(range(n_objects + 1))


@settings(max_examples=60, deadline=None)
@given(height=st.integers(1, 400), width=st.integers(1, 400), block=st.integers(16, 120), data=st.data())
def test_overlapping_pairs_are_all_pairs(height, width, block, data):
    """The grid search for overlapping blocks finds exactly what comparing every pair finds."""
    import itertools

    halo = data.draw(st.integers(0, block // 4))
    units = blocks.plan_blocks(read_image(np.zeros((height, width), np.uint8)), "memory", None, block, halo)
    found = sorted((i, j) for i, j, _ in blocks._overlapping_pairs(units, list(range(len(units)))))
    every = [(i, j) for i, j in itertools.combinations(range(len(units)), 2)
             if blocks._overlap(units[i].tile, units[j].tile) is not None]
    assert found == every
