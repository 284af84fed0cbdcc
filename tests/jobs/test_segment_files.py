"""samzoo.segment_files: files in, label files out, a result instead of printed lines; bad inputs and outputs."""

import numpy as np
import pytest
import tifffile
import zarr

import samzoo
from samzoo.cli.main import main
from samzoo.errors import InputError, OutputError, option_style
from samzoo.io import read_image


@pytest.fixture
def crops(tmp_path, hela_frame):
    """Two real HeLa crops as TIFFs in a folder."""
    image, _ = hela_frame
    folder = tmp_path / "in"
    folder.mkdir()
    tifffile.imwrite(folder / "a.tif", image[100:260, 200:400])
    tifffile.imwrite(folder / "b.tif", image[300:460, 500:700])
    return folder


def test_one_image_a_batch_and_a_movie(tmp_path, crops):
    one = samzoo.segment_files(crops / "a.tif", tmp_path / "a.tif", mode="classical", overlay=True)
    labels = tifffile.imread(tmp_path / "a.tif")
    assert one.kind == "image" and one.outputs == [tmp_path / "a.tif"] and one.planes == 1
    assert one.objects == len(np.unique(labels)) - 1 > 3 and one.model == "classical baseline (no model)"
    assert one.overlay == tmp_path / "a_overlay.png" and one.overlay.is_file() and one.warnings == []

    batch = samzoo.segment_files([crops], tmp_path / "out", mode="classical", scheduler="synchronous")
    assert batch.kind == "batch" and (batch.units, batch.done, batch.skipped) == (2, 2, 0)
    assert [p.name for p in batch.outputs] == ["a.tif", "b.tif"] and batch.overlay is None
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out" / "a.tif"), labels)
    again = samzoo.segment_files(str(crops / "*.tif"), tmp_path / "out", mode="classical")
    assert (again.done, again.skipped) == (0, 2)  # a rerun resumes: nothing left to do
    with pytest.raises(InputError, match="other settings"):
        samzoo.segment_files(crops, tmp_path / "out", mode="classical", min_z_extent=3)

    movie = samzoo.segment_files(crops, tmp_path / "movie.zarr", mode="classical")  # the frames of one movie
    assert movie.kind == "movie" and movie.planes == 2 and movie.source == crops
    assert read_image(tmp_path / "movie.zarr").dims == ("t", "y", "x")


def test_options_are_named_as_the_caller_knows_them(tmp_path, crops):
    with pytest.raises(InputError, match="^block_halo must be from 0 to a quarter of block"):
        samzoo.segment_files(crops / "a.tif", tmp_path / "l.tif", mode="classical", block=256, block_halo=100)
    with option_style("cli"), pytest.raises(InputError, match="^--block-halo must be from 0 to a quarter of --block"):
        samzoo.segment_files(crops / "a.tif", tmp_path / "l.tif", mode="classical", block=256, block_halo=100)
    with pytest.raises(InputError, match="^scale must be 'auto' or from 0.125 to 8"):
        samzoo.segment_files(crops / "a.tif", tmp_path / "l.tif", mode="classical", scale=20)


def test_gamma_compresses_each_plane_before_segmenting(tmp_path, crops, capsys):
    from samzoo.io.normalize import compress_intensities
    from samzoo.segmentation.classical import classical_baseline

    image = tifffile.imread(crops / "a.tif")
    result = samzoo.segment_files(crops / "a.tif", tmp_path / "g.tif", mode="classical", gamma=0.3)
    labels = tifffile.imread(tmp_path / "g.tif")
    np.testing.assert_array_equal(labels > 0, classical_baseline(compress_intensities(image, 0.3)) > 0)
    assert not np.array_equal(labels > 0, classical_baseline(image) > 0)  # the gamma made a difference
    assert result.objects == len(np.unique(labels)) - 1
    np.testing.assert_array_equal(samzoo.segment(image, mode="classical", gamma=0.3) > 0, labels > 0)  # the Python route
    assert main(["segment", str(crops / "a.tif"), "--mode", "classical", "--gamma", "0.3",
                 "-o", str(tmp_path / "cli.tif")]) == 0
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "cli.tif"), labels)
    capsys.readouterr()
    assert main(["segment", str(crops / "a.tif"), "--gamma", "20", "-o", str(tmp_path / "bad.tif")]) == 1
    assert "gamma must be from 0.1 to 10" in capsys.readouterr().err
    # block by block, a plane's percentiles are unknown to each block: refused, not silently per block
    with option_style("cli"), pytest.raises(InputError, match="^--gamma needs each plane in memory, but a.tif is "
                                                               "segmented block by block"):
        samzoo.segment_files(crops / "a.tif", tmp_path / "b.zarr", mode="classical", block=128, block_halo=16,
                             gamma=0.5)


def test_views_average_ais_over_turned_images(tmp_path, crops, capsys):
    """--views N: AIS maps averaged over N views; the default for samzoo's models is 2, in the job record."""
    import json

    model = samzoo.load_model()  # the shipped model: an untrained one finds nothing to compare
    image = tifffile.imread(crops / "a.tif")
    assert main(["segment", str(crops / "a.tif"), "--scale", "1", "--views", "4", "-o", str(tmp_path / "four.tif")]) == 0
    four = tifffile.imread(tmp_path / "four.tif")
    np.testing.assert_array_equal(four, samzoo.segment(image, model, scale=1, views=4, cache=False))
    assert four.max() > 3 and not np.array_equal(samzoo.segment(image, model, scale=1, views=1, cache=False), four)
    batch = samzoo.segment_files(crops, tmp_path / "out", scale=1, scheduler="synchronous")
    record = json.loads((tmp_path / "out" / ".samzoo-job.json").read_text())
    assert record["views"] == 2 and batch.done == 2
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out" / "a.tif"),
                                  samzoo.segment(image, model, scale=1, views=2, cache=False))
    with pytest.raises(InputError, match="other settings"):  # a rerun with another number of views is refused
        samzoo.segment_files(crops, tmp_path / "out", scale=1, views=1)
    capsys.readouterr()
    with pytest.raises(SystemExit):  # argparse: only 1, 2, 4, 8
        main(["segment", str(crops / "a.tif"), "--views", "3", "-o", str(tmp_path / "bad.tif")])
    assert "invalid choice: 3" in capsys.readouterr().err
    with option_style("cli"), pytest.raises(InputError, match="^--views 2 applies to AIS only, not to 'amg'"):
        samzoo.segment_files(crops / "a.tif", tmp_path / "amg.tif", mode="amg", views=2)
    with pytest.raises(InputError, match="^views 2 applies to AIS only, not to 'classical'"):
        samzoo.segment_files(crops / "a.tif", tmp_path / "c.tif", mode="classical", views=2)
    with pytest.raises(InputError, match="^views 4 applies to AIS only, not to 'prompts'"):
        samzoo.segment(image, model, prompts={1: samzoo.Prompt(points=[[20, 20]], point_labels=[1])}, views=4)


def test_blocks_resolve_auto_scale_once(tmp_path, hela_frame, monkeypatch):
    import samzoo.jobs.segment_large as large

    calls = []
    monkeypatch.setattr(large, "resolve_scale", lambda model, image, scale, prompts=None: calls.append(scale) or 0.5)
    image = hela_frame[0][:300, :400]
    source = tmp_path / "big.zarr"
    zarr.create_array(str(source), shape=image.shape, dtype=image.dtype, chunks=(128, 128),
                      dimension_names=["y", "x"])[:] = image
    result = samzoo.segment_files(source, tmp_path / "labels.zarr", mode="classical", scale="auto", block=160,
                                  block_halo=16)
    assert result.kind == "blocks" and result.units == result.done == 12 and result.skipped == 0
    assert calls == ["auto"] and result.scale == 0.5  # one estimate for all twelve blocks
    labels = np.asarray(read_image(tmp_path / "labels.zarr").values)
    assert labels.shape == image.shape and result.objects == len(np.unique(labels)) - 1 > 5


def test_nan_and_infinite_pixels_are_background_with_a_warning(tmp_path, hela_frame, tiny_model, capsys):
    from scipy import ndimage as ndi

    from samzoo.api import segment_plane

    image = hela_frame[0][100:228, 200:328].astype(np.float32)
    clean = segment_plane(None, image, mode="classical")
    y, x = np.unravel_index(np.argmax(ndi.distance_transform_edt(clean > 0)), clean.shape)  # inside a nucleus
    image[y - 5:y + 5, x - 5:x + 5] = np.nan
    image[5, 100:110] = np.inf
    missing = ~np.isfinite(image)
    assert segment_plane(None, image, mode="classical")[missing].any()  # the segmentation itself would claim them
    tifffile.imwrite(tmp_path / "holes.tif", image)
    for model, mode in ((None, "classical"), (tiny_model, "ais")):
        result = samzoo.segment_files(tmp_path / "holes.tif", tmp_path / f"{mode}.tif", model=model, mode=mode)
        labels = tifffile.imread(tmp_path / f"{mode}.tif")
        assert not labels[missing].any()
        assert len(result.warnings) == 1
        assert f"{missing.sum()} of 16384 pixels are NaN or infinite" in result.warnings[0]
        if mode == "classical":
            assert labels.any()  # the rest is segmented
    assert main(["segment", str(tmp_path / "holes.tif"), "-o", str(tmp_path / "cli.tif"), "--mode", "classical"]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("samzoo segment: warning: ") and "NaN or infinite" in err


def test_blank_image_is_an_error_alone_and_a_warning_in_a_batch(tmp_path, crops, capsys):
    tifffile.imwrite(crops / "c_nan.tif", np.full((50, 60), np.nan, np.float32))
    with pytest.raises(InputError, match="c_nan.tif: every pixel is NaN or infinite: there is nothing to segment"):
        samzoo.segment_files(crops / "c_nan.tif", tmp_path / "l.tif", mode="classical")
    tifffile.imwrite(crops / "d_flat.tif", np.full((50, 60), 7, np.uint16))
    with pytest.raises(InputError, match="d_flat.tif: every pixel has the value 7"):
        samzoo.segment_files(crops / "d_flat.tif", tmp_path / "l.tif")
    assert not (tmp_path / "l.tif").exists()

    result = samzoo.segment_files(crops, tmp_path / "out", mode="classical", scheduler="synchronous")
    assert result.done == 4 and [p.name for p in result.blank] == ["c_nan.tif", "d_flat.tif"]
    assert result.warnings == ["c_nan.tif: every pixel is NaN or infinite: nothing to segment, its labels are empty",
                               "d_flat.tif: every pixel has the value 7: nothing to segment, its labels are empty"]
    assert not tifffile.imread(tmp_path / "out" / "c_nan.tif").any()
    assert tifffile.imread(tmp_path / "out" / "c_nan.tif").shape == (50, 60)
    assert tifffile.imread(tmp_path / "out" / "a.tif").max() > 3
    assert main(["segment", str(crops), "-o", str(tmp_path / "cli"), "--mode", "classical", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert err.count("samzoo segment: warning: ") == 2 and "d_flat.tif: every pixel has the value 7" in err


def test_outputs_are_checked_before_any_work(tmp_path, crops, monkeypatch, capsys):
    import samzoo.jobs.segment_jobs as jobs

    monkeypatch.setattr(jobs, "segment", lambda *a, **k: pytest.fail("segmented before the output was checked"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match=r"cannot write .*file/l.tif: .*file is a file, not a folder"):
        samzoo.segment_files(crops / "a.tif", tmp_path / "file" / "l.tif")
    with pytest.raises(OutputError, match=r"file is a file, not a folder"):
        samzoo.segment_files(crops / "a.tif", tmp_path / "l.tif", overlay=tmp_path / "file" / "o.png")
    with pytest.raises(OutputError, match=r"cannot write .*file/deeper/out/.samzoo-job.json"):
        samzoo.segment_files(crops, tmp_path / "file" / "deeper" / "out", mode="classical")
    with pytest.raises(OutputError, match="unsupported output type '.png'"):
        samzoo.segment_files(crops / "a.tif", tmp_path / "l.png", mode="classical")
    assert main(["segment", str(crops / "a.tif"), "-o", str(tmp_path / "file" / "l.tif")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("samzoo: error: cannot write") and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "samzoo-cache") == ["file", "in"]  # nothing written


def test_ome_tiff_pixel_size_reaches_the_labels(tmp_path, crops):
    """PhysicalSizeX/Y of an OME-TIFF input are in the labels the command line writes, TIFF or Zarr."""
    image = tifffile.imread(crops / "a.tif")
    tifffile.imwrite(tmp_path / "cells.ome.tif", image, ome=True,
                     metadata={"axes": "YX", "PhysicalSizeX": 0.325, "PhysicalSizeY": 0.4, "PhysicalSizeXUnit": "µm",
                               "PhysicalSizeYUnit": "µm"})
    for out in ("labels.tif", "labels.zarr"):
        assert main(["segment", str(tmp_path / "cells.ome.tif"), "-o", str(tmp_path / out), "--mode", "classical"]) == 0
        back = read_image(tmp_path / out)
        assert (back.attrs["pixel_size_x"], back.attrs["pixel_size_y"], back.attrs["pixel_unit"]) == (0.325, 0.4, "µm")
    with tifffile.TiffFile(tmp_path / "labels.tif") as tif:  # other tools read it too: plain OME-XML
        pixels = tifffile.xml2dict(tif.ome_metadata)["OME"]["Image"]["Pixels"]
    assert (pixels["PhysicalSizeX"], pixels["PhysicalSizeY"], pixels["PhysicalSizeXUnit"]) == (0.325, 0.4, "µm")


def test_ome_zarr_pixel_size_reaches_block_labels(tmp_path, hela_frame):
    frame = hela_frame[0][:300, :400]
    group = zarr.open_group(str(tmp_path / "image.ome.zarr"), mode="w")
    group.attrs["multiscales"] = [{"version": "0.4", "axes": [{"name": "y", "type": "space", "unit": "micrometer"},
                                                             {"name": "x", "type": "space", "unit": "micrometer"}],
                                   "datasets": [{"path": "0", "coordinateTransformations": [
                                       {"type": "scale", "scale": [0.65, 0.5]}]}]}]
    group.create_array("0", shape=frame.shape, dtype=frame.dtype, chunks=(128, 128))[:] = frame
    result = samzoo.segment_files(tmp_path / "image.ome.zarr", tmp_path / "labels.zarr", mode="classical",
                                  block=256, block_halo=32)
    assert result.kind == "blocks"
    back = read_image(tmp_path / "labels.zarr")
    assert (back.attrs["pixel_size_y"], back.attrs["pixel_size_x"], back.attrs["pixel_unit"]) == (0.65, 0.5, "µm")
