"""No silent nothing: AIS finding no object in an image that clearly holds some is said, with a hint."""

import numpy as np
import pytest
import tifffile

from samzoo.cli.main import main


@pytest.fixture
def blind_model(monkeypatch):
    """AIS that finds nothing: what a model does on a kind of image it never saw."""
    import samzoo.segmentation.ais as ais

    monkeypatch.setattr(ais, "segment_ais", lambda model, image, **kw: np.zeros(image.shape[:2], np.int32))


def test_single_image_warns_with_a_hint(tmp_path, hela_frame, blind_model, capsys):
    image, _ = hela_frame
    tifffile.imwrite(tmp_path / "cells.tif", image[:256, :256])
    assert main(["segment", str(tmp_path / "cells.tif"), "-o", str(tmp_path / "labels.tif"), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "no object found in 1 of 1 plane(s)" in err and "--scale" in err


def test_a_batch_lists_the_images_at_the_end(tmp_path, hela_frame, blind_model, capsys):
    image, _ = hela_frame
    (tmp_path / "in").mkdir()
    tifffile.imwrite(tmp_path / "in" / "a.tif", image[:200, :200])
    tifffile.imwrite(tmp_path / "in" / "b.tif", image[200:400, 200:400])
    noise = np.random.default_rng(0).normal(100, 5, size=(200, 200)).astype(np.float32)
    tifffile.imwrite(tmp_path / "in" / "c_noise.tif", noise)
    assert main(["segment", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "no object found in 2 image(s)" in err and "a.tif, b.tif" in err
    assert "c_noise" not in err  # nothing there to find: an empty result is right


def test_no_warning_when_objects_are_found(tmp_path, hela_frame, capsys):
    image, _ = hela_frame
    tifffile.imwrite(tmp_path / "cells.tif", image[:256, :256])
    assert main(["segment", str(tmp_path / "cells.tif"), "-o", str(tmp_path / "labels.tif"), "--no-progress"]) == 0
    assert "warning:" not in capsys.readouterr().err  # (the tmp path itself holds "warning")
    assert tifffile.imread(tmp_path / "labels.tif").max() > 0
