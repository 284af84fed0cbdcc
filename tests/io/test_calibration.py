"""Physical pixel sizes: read from OME-TIFF, ImageJ TIFF, OME-Zarr and samzoo's outputs, written with labels."""

import numpy as np
import pytest
import tifffile
import xarray as xr
import zarr

from samzoo.io import read_image, write_labels
from samzoo.io.calibration import ome_tiff_metadata, ome_zarr_sizes, tiff_calibration


def test_ome_tiff_volume(tmp_path):
    tifffile.imwrite(tmp_path / "v.ome.tif", np.zeros((3, 8, 9), np.uint16), ome=True,
                     metadata={"axes": "ZYX", "PhysicalSizeX": 0.2, "PhysicalSizeY": 0.2, "PhysicalSizeZ": 1.5,
                               "PhysicalSizeXUnit": "nm"})
    image = read_image(tmp_path / "v.ome.tif")
    assert image.dims == ("z", "y", "x")
    assert (image.attrs["pixel_size_z"], image.attrs["pixel_size_y"], image.attrs["pixel_unit"]) == (1.5, 0.2, "nm")
    assert tiff_calibration(tmp_path / "v.ome.tif")["pixel_size"] == (1.5, 0.2, 0.2)


def test_imagej_tiff_and_none(tmp_path):
    tifffile.imwrite(tmp_path / "ij.tif", np.zeros((8, 9), np.uint8), imagej=True, resolution=(1 / 0.65, 1 / 0.65),
                     metadata={"unit": "um"})
    attrs = read_image(tmp_path / "ij.tif").attrs
    assert attrs["pixel_size_x"] == pytest.approx(0.65) and attrs["pixel_unit"] == "µm"
    tifffile.imwrite(tmp_path / "plain.tif", np.zeros((8, 9), np.uint8))
    assert not any(k.startswith("pixel_") for k in read_image(tmp_path / "plain.tif").attrs)


def test_ome_zarr_scales_multiply_and_units_are_short():
    multiscales = [{"axes": [{"name": "t", "type": "time", "unit": "second"},
                             {"name": "y", "type": "space", "unit": "micrometer"},
                             {"name": "x", "type": "space", "unit": "micrometer"}],
                    "datasets": [{"path": "0",
                                  "coordinateTransformations": [{"type": "scale", "scale": [1, 0.5, 0.5]}]}],
                    "coordinateTransformations": [{"type": "scale", "scale": [60, 2, 2]}]}]
    assert ome_zarr_sizes(multiscales) == ({"y": 1.0, "x": 1.0}, "micrometer")
    assert ome_zarr_sizes([{"axes": ["y", "x"], "datasets": [{"path": "0"}]}]) == ({}, None)


def test_labels_keep_the_pixel_size_through_tiff_and_zarr(tmp_path):
    labels = xr.DataArray(np.arange(12, dtype=np.uint32).reshape(3, 4), dims=("y", "x"),
                          attrs={"pixel_size_y": 0.5, "pixel_size_x": 0.25, "pixel_unit": "µm", "model": "m"})
    for name in ("l.tif", "l.zarr"):
        back = read_image(write_labels(labels, tmp_path / name))
        assert (back.attrs["pixel_size_y"], back.attrs["pixel_size_x"], back.attrs["pixel_unit"]) == (0.5, 0.25, "µm")
    # a unit OME-XML does not know is not written in the wrong unit
    assert ome_tiff_metadata({"pixel_size_x": 2.0, "pixel_unit": "furlong"}) == {}
    group = zarr.open_group(str(tmp_path / "l.zarr"), mode="r")
    assert group["labels"].attrs["pixel_size_x"] == 0.25  # readable by any Zarr reader
