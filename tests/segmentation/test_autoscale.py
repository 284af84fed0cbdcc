"""scale="auto": the estimated scale brings real objects to the model's size, whatever their size."""

import numpy as np
import pytest
import tifffile

from samzoo.errors import InputError
from samzoo.segmentation.autoscale import estimate_scale, model_diameter, parse_scale, resolve_scale
from samzoo.segmentation.predictor import Prompt
from samzoo.segmentation.rescale import object_diameter, rescale_image


@pytest.fixture(scope="module")
def shipped_model():
    from samzoo.models.load import load_model

    return load_model(None)


def test_parse_scale():
    assert parse_scale("auto") == "auto" and parse_scale(" AUTO ") == "auto"
    assert parse_scale("2") == 2.0 and parse_scale(0.5) == 0.5
    assert parse_scale(None) is None  # the model's default
    for bad in ("big", "0", "9", ""):
        with pytest.raises(InputError, match="scale"):
            parse_scale(bad)


def test_object_diameter():
    labels = np.zeros((60, 60), int)
    labels[5:15, 5:15] = 1  # area 100: diameter 11.3
    labels[30:50, 30:50] = 2  # area 400: 22.6
    labels[55, 55] = 3  # a speck, left out
    assert object_diameter(labels) == pytest.approx((11.28 + 22.57) / 2, abs=0.05)
    assert np.isnan(object_diameter(np.zeros((5, 5), int)))


def test_boxes_give_the_scale_without_probing(shipped_model):
    target = model_diameter(shipped_model)
    boxes = {i: Prompt(box=[0, 0, 15, 15]) for i in range(3)}  # 16 px boxes: disks of ~14 px
    scale = estimate_scale(shipped_model, np.zeros((8, 8)), prompts=boxes)  # the image is never looked at
    assert scale == pytest.approx(target / (16 / 1.13), rel=0.05)


def test_the_same_nuclei_at_any_size_come_out_at_the_model_size(shared_data, shipped_model):
    """A held-out HeLa frame shown at half, native and double size: every estimate puts its
    nuclei (about 28 px across) within 25 % of the model's size."""
    image = tifffile.imread(shared_data / "Fluo_Hela_02_img.tif", key=17)[:400, :400]
    truth = tifffile.imread(shared_data / "Fluo_Hela_02_ERR_SEG.tif", key=17)[:400, :400]
    target = model_diameter(shipped_model)
    for shown in (0.5, 1.0, 2.0):
        scale = estimate_scale(shipped_model, rescale_image(image, shown))
        diameter = object_diameter(truth) * shown * scale  # the nuclei's size as the model sees them
        assert 0.75 < diameter / target < 1.25, (shown, scale, diameter)


def test_auto_is_one_where_size_cannot_or_must_not_be_estimated(shipped_model):
    assert resolve_scale(None, np.zeros((32, 32)), "auto") == 1.0  # classical: no preferred size
    assert resolve_scale(shipped_model, np.zeros((32, 32)), 1.5) == 1.5
    assert estimate_scale(shipped_model, np.zeros((300, 300), np.float32)) == 1.0  # nothing to see


def test_segment_auto_reports_its_scale(shared_data, shipped_model):
    import xarray as xr

    import samzoo

    image = tifffile.imread(shared_data / "nuclei3d_img.tif")[27]  # nuclei of ~10 px
    labels = samzoo.segment(xr.DataArray(image, dims=("y", "x")), shipped_model, scale="auto")
    assert labels.shape == image.shape and labels.attrs["scale"] > 2


def test_cli_scale_auto(tmp_path, hela_frame, capsys):
    from samzoo.cli.main import main

    tifffile.imwrite(tmp_path / "in.tif", hela_frame[0][:256, :256])
    assert main(["segment", str(tmp_path / "in.tif"), "-o", str(tmp_path / "out.tif"), "--scale", "auto"]) == 0
    assert "--scale auto chose" in capsys.readouterr().err
    assert tifffile.imread(tmp_path / "out.tif").max() > 3
    with pytest.raises(SystemExit):
        main(["segment", str(tmp_path / "in.tif"), "-o", str(tmp_path / "x.tif"), "--scale", "huge"])


def test_the_default_scale_follows_the_model(shipped_model, tiny_model):
    """None: "auto" for a model trained on objects brought to one size, 1 for the others."""
    from dataclasses import replace

    image = np.zeros((32, 32))
    assert resolve_scale(tiny_model, image, None) == 1.0  # no object_diameter recorded
    normalised = type(tiny_model)(replace(tiny_model.config, object_diameter=20.0))
    boxes = {1: Prompt(box=[0, 0, 9, 9])}  # 10 px boxes: the size is known without probing
    assert resolve_scale(normalised, image, None, prompts=boxes) == pytest.approx(20 / (10 / 1.13), rel=0.05)


def test_the_size_comes_from_the_probes_that_agree():
    from samzoo.segmentation.autoscale import diameter_from_probes

    # 60 px nuclei: whole at 0.5x and 1x, cut into model-sized pieces at 2x
    assert 55 < diameter_from_probes({0.5: 30.0, 1.0: 58.0, 2.0: 36.0}, 36.0) < 62
    # 14 px nuclei: merged into model-sized clumps at 0.5x, whole at 1x and 2x
    assert 13 < diameter_from_probes({0.5: 36.0, 1.0: 14.0, 2.0: 28.5}, 36.0) < 15
    # 8-12 px nuclei of a 3D stack (held-out slices, what the shipped model found): at 1x and 2x
    # the model sees clumps of its own size; only the 4x probe sees them near that size, and the
    # 2x / 4x pair gives 12.7 px (without the 4x probe: 19.8)
    probes = {1.0: 19.8, 2.0: 25.4, 4.0: 47.0}
    assert 12 < diameter_from_probes(probes, 36.0) < 13.5
    assert diameter_from_probes({k: v for k, v in probes.items() if k < 4}, 36.0) > 19
    assert diameter_from_probes({2.0: 30.0}, 36.0) == 15.0  # one probe found objects: its word
    assert diameter_from_probes({}, 36.0) is None
