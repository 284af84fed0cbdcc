import numpy as np
import pytest
import tifffile
import xarray as xr

from samzoo.errors import InputError, OutputError
from samzoo.io import read_image, to_model_input, write_labels


def test_real_movie_needs_axes_then_reads(shared_data):
    path = shared_data / "Fluo-N3DH-CHO_02_img.tif"  # tifffile axes QQYX: no real axes
    with pytest.raises(InputError, match="axes"):
        read_image(path)
    image = read_image(path, axes="tzyx")
    assert image.dims == ("t", "z", "y", "x") and image.shape == (20, 5, 443, 512)
    assert image.attrs["source"] == str(path)


@pytest.mark.parametrize("axes, shape, dims", [("yxc", (8, 9, 3), ("c", "y", "x")),
                                                 ("xy", (8, 9), ("y", "x")),
                                                 ("cyx", (2, 8, 9), ("c", "y", "x"))])
def test_axes_are_canonical(axes, shape, dims):
    assert read_image(np.zeros(shape, np.uint8), axes=axes).dims == dims


@pytest.mark.parametrize("data, axes, match", [
    (np.zeros((0, 5)), None, "empty"),
    (np.zeros((4, 5), bool), None, "dtype"),
    (np.zeros((4, 5)), "yy", "at most once"),
    (np.zeros((4, 5)), "tyx", "3 letters"),
    (np.zeros((4, 5, 6)), None, "axes"),
])
def test_bad_input(data, axes, match):
    with pytest.raises(InputError, match=match):
        read_image(data, axes=axes)


def test_model_input_dtypes():
    for image in [np.random.default_rng(0).integers(0, 60000, (20, 30)).astype(np.uint16),
                  np.random.default_rng(0).random((20, 30)).astype(np.float32)]:
        out = to_model_input(image)
        assert out.shape == (3, 20, 30) and out.dtype == np.float32
        assert out.min() == 0 and out.max() == 255
    nan = np.ones((5, 5)); nan[0, 0] = np.nan; nan[1, 1] = 3
    assert np.isfinite(to_model_input(nan)).all()
    assert to_model_input(np.full((5, 5), 7, np.uint16)).max() == 0  # constant image: no division by zero
    rgb = np.zeros((4, 4, 3), np.uint8); rgb[0, 0] = (10, 20, 30)
    np.testing.assert_array_equal(to_model_input(rgb)[:, 0, 0], [10, 20, 30])


@pytest.mark.parametrize("suffix", [".tif", ".zarr"])
def test_labels_round_trip(tmp_path, hela_frame, suffix):
    seg = hela_frame[1]
    labels = xr.DataArray(np.stack([seg, seg]), dims=("t", "y", "x"), coords={"t": [3, 4]})
    path = write_labels(labels, tmp_path / f"out{suffix}")
    back = read_image(path) if suffix == ".tif" else xr.open_zarr(path)["labels"]
    assert back.dims == ("t", "y", "x")
    np.testing.assert_array_equal(np.asarray(back.values), labels.values)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary leftovers


def test_failed_write_leaves_nothing_and_keeps_old(tmp_path, monkeypatch):
    path = tmp_path / "out.tif"
    write_labels(np.ones((4, 4), np.uint16), path)
    old = path.read_bytes()

    def broken(tmp, *a, **k):
        open(tmp, "wb").write(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tifffile, "imwrite", broken)
    with pytest.raises(OutputError, match="No space left"):
        write_labels(np.zeros((4, 4), np.uint16), path)
    assert path.read_bytes() == old and [p.name for p in tmp_path.iterdir()] == ["out.tif"]
