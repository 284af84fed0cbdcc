"""Colour input: stained tissue (dark nuclei on a bright background) and colour fluorescence."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import tifffile

from samzoo.errors import InputError
from samzoo.io.normalize import colour_to_grey, to_model_input


@pytest.fixture(scope="module")
def tissue(shared_data):
    """One real DSB2018 H&E-like tissue image (RGB) and its nuclei."""
    root = shared_data / "dsb2018"
    row = next(r for r in csv.DictReader(open(root / "index.csv")) if r["kind"] == "rgb")
    return tifffile.imread(root / f"{row['id']}_img.tif"), tifffile.imread(root / f"{row['id']}_mask.tif")


def test_stained_nuclei_come_out_bright(tissue):
    image, labels = tissue
    assert image.ndim == 3 and image.shape[-1] == 3
    grey = colour_to_grey(image)
    assert grey.shape == labels.shape
    # on the stored RGB the nuclei are darker than the background; after conversion brighter
    assert image.mean(-1)[labels > 0].mean() < image.mean(-1)[labels == 0].mean()
    assert grey[labels > 0].mean() > grey[labels == 0].mean()


def test_colour_fluorescence_is_not_inverted():
    image = np.zeros((32, 32, 3), np.uint8)
    image[10:20, 10:20, 2] = 200  # a blue (DAPI-like) nucleus on black
    grey = colour_to_grey(image)
    assert grey[15, 15] > grey[0, 0]


def test_rgba_drops_alpha_and_bad_shapes_are_named():
    image = np.zeros((8, 8, 4), np.uint8)
    image[..., 3] = 255
    image[2:5, 2:5, :3] = 100
    assert colour_to_grey(image)[3, 3] > colour_to_grey(image)[0, 0]
    with pytest.raises(InputError, match="colour image"):
        colour_to_grey(np.zeros((8, 8)))


def test_model_input_grey_or_rgb(tissue):
    image, _ = tissue
    rgb = to_model_input(image)  # SAM-family models: the RGB as it is
    np.testing.assert_array_equal(rgb, np.moveaxis(image, -1, 0).astype(np.float32))
    grey = to_model_input(image, grey=True)  # samzoo's own models: one channel, three times
    assert grey.shape == rgb.shape and np.array_equal(grey[0], grey[2]) and grey.max() == pytest.approx(255)
    plain = np.arange(64, dtype=np.uint16).reshape(8, 8)
    np.testing.assert_array_equal(to_model_input(plain, grey=True), to_model_input(plain))


def test_samzoo_models_see_grey_sam_models_see_rgb():
    from samzoo.models.model import ModelConfig, SamzooModel

    assert SamzooModel(ModelConfig("samzoo_tiny", 64)).grey_input
    assert not SamzooModel.grey_input.fget(type("M", (), {"config": ModelConfig("vit_b", 1024)})())
