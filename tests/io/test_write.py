"""Outputs checked before any work (check_writable) and pixels summarised before segmenting (pixel_summary)."""

import os

import dask.array as da
import numpy as np
import pytest

import samzoo.io.write as write
from samzoo.errors import OutputError
from samzoo.io import read_image
from samzoo.io.image import pixel_summary
from samzoo.io.write import check_writable


def test_check_writable(tmp_path, monkeypatch):
    assert check_writable(tmp_path / "new" / "deeper" / "l.tif") == tmp_path / "new" / "deeper" / "l.tif"
    assert not (tmp_path / "new").exists()  # checking makes nothing
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="f is a file, not a folder"):
        check_writable(tmp_path / "f" / "a" / "l.tif")
    with pytest.raises(OutputError, match="f is a file, not a folder"):
        check_writable(tmp_path / "f", folder=True)
    check_writable(tmp_path, folder=True)
    monkeypatch.setattr(write.os, "access", lambda path, mode: False)  # root may write anywhere: pretend
    with pytest.raises(OutputError, match=f"cannot write {tmp_path / 'l.tif'}: (Permission denied|Read-only)"):
        check_writable(tmp_path / "l.tif")
    assert os.path.isdir(tmp_path)


@pytest.mark.parametrize("lazy", [False, True])
def test_pixel_summary(lazy):
    image = np.arange(24, dtype=np.float32).reshape(4, 6)
    image[0, :2] = [np.nan, -np.inf]
    array = read_image(da.from_array(image, chunks=(2, 3)) if lazy else image)
    summary = pixel_summary(array)
    assert (summary.pixels, summary.missing, summary.low, summary.high, summary.blank) == (24, 2, 2.0, 23.0, None)
    assert pixel_summary(read_image(np.full((3, 3), np.nan))).blank == "every pixel is NaN or infinite"
    assert pixel_summary(read_image(np.full((3, 3), 4, np.uint8))).blank == "every pixel has the value 4"
    colour = np.zeros((5, 5, 3), np.float32)
    colour[0, 0, 2] = np.nan  # one pixel, whatever its channels
    assert pixel_summary(read_image(colour)).missing == 1
