"""The AIS package in a zoo tool: bioimageio.core without samzoo, any image size, samzoo's maps and labels.

The consumer runs in a subprocess where ``import samzoo`` is blocked (``ais_consumer.py``);
the expected maps are samzoo's own, computed here.
"""

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile

from samzoo.packaging.reader import read_rdf
from samzoo.segmentation.ais import ais_maps
from samzoo.segmentation.embeddings import compute_embeddings

CONSUMER = Path(__file__).with_name("ais_consumer.py")
# measured (TorchScript / ONNX) 2.3e-5 / 1.8e-5 (512 x 512) and 1.7e-5 / 1.4e-5 (700 x 900): float
# rounding (the percentiles, the decoder with or without BatchNorm folded in, float16 embeddings)
MAPS_ATOL = 1e-4


@pytest.fixture(scope="module")
def real_images(shared_data, tmp_path_factory) -> dict:
    """512 x 512, 700 x 900 (sides no multiple of the tile) and 60 x 80 (less than a tile) crops of a
    held-out HeLa frame, as .npy."""
    frame = tifffile.imread(shared_data / "Fluo_Hela_02_img.tif", key=18)
    folder = tmp_path_factory.mktemp("consumer_inputs")
    images = {"square": frame[100:612, 300:812], "wide": frame[:700, 100:1000], "small": frame[300:360, 400:480]}
    for name, image in images.items():
        np.save(folder / f"{name}.npy", image)
    return {name: (folder / f"{name}.npy", image) for name, image in images.items()}


def _consume(package, images, tmp_path, weight_format="torchscript", blocksize="none") -> dict:
    out = tmp_path / f"maps_{weight_format}_{blocksize}"
    out.mkdir()
    run = subprocess.run([sys.executable, str(CONSUMER), str(package), weight_format, str(out), blocksize,
                          *[str(p) for p, _ in images.values()]], capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-4000:]
    return {name: np.load(out / path.name) for name, (path, _) in images.items()}


@pytest.fixture(scope="module")
def samzoo_maps(source_model, real_images) -> dict:
    return {name: ais_maps(source_model, compute_embeddings(source_model, image, cache=False))
            for name, (_, image) in real_images.items()}


@pytest.mark.slow
@pytest.mark.parametrize("weight_format", ["torchscript", "onnx"])
def test_bioimageio_core_without_samzoo_gives_samzoo_maps_at_any_size(packages, real_images, samzoo_maps, tmp_path,
                                                                     weight_format):
    """Whole-image prediction: maps of the image's own size, equal to samzoo's (so no seams, no crop),
    with either weights format a consumer without samzoo can run (onnxruntime for ONNX)."""
    got = _consume(packages["ais"], real_images, tmp_path, weight_format)
    for name, expected in samzoo_maps.items():
        assert got[name].shape == expected.shape == (3, *real_images[name][1].shape)
        np.testing.assert_allclose(got[name], expected, atol=MAPS_ATOL, err_msg=name)


@pytest.mark.slow
def test_blockwise_prediction_overlaps_blocks(packages, source_model, real_images, samzoo_maps, tmp_path):
    """Blocks of one tile with the declared halo (bioimageio.core's blockwise prediction, n = 0):
    samzoo's own tiles, so samzoo's maps, except in the last row and column of blocks, which
    bioimageio.core shifts to end at the image edge, off samzoo's grid."""
    images = {"wide": real_images["wide"]}
    got = _consume(packages["ais"], images, tmp_path, blocksize="0")["wide"]
    expected = samzoo_maps["wide"]
    assert got.shape == expected.shape and np.isfinite(got).all() and got.min() >= 0 and got.max() <= 1
    inner = source_model.input_size - 2 * (source_model.input_size // 8)
    on_grid = (slice(None), slice(0, expected.shape[1] - inner), slice(0, expected.shape[2] - inner))
    np.testing.assert_allclose(got[on_grid], expected[on_grid], atol=MAPS_ATOL)
    # off samzoo's grid the maps differ only as much as tiles placed elsewhere do (measured: mean 0.004)
    assert np.abs(got - expected).mean() < 0.02


def _documented_watershed(package, tmp_path):
    with zipfile.ZipFile(package) as z:
        z.extractall(tmp_path / "unpacked")
    rdf = read_rdf(tmp_path / "unpacked")[0]
    doc = (tmp_path / "unpacked" / rdf["documentation"]["source"]).read_text()
    section = doc.split("### Post-processing", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert "samzoo" not in code.replace("samzoo's", "")
    return code, rdf["config"]["samzoo"]["watershed"]


@pytest.mark.slow
def test_documented_watershed_gives_samzoo_segment_labels(packages, real_images, samzoo_maps, source_model, tmp_path):
    """The numpy + scikit-image snippet of the package documentation, run on the maps with the
    parameters in ``rdf.yaml``, gives the labels of ``samzoo segment --mode ais --views 1`` on the same image."""
    code, params = _documented_watershed(packages["ais"], tmp_path)
    path, image = real_images["wide"]
    tifffile.imwrite(tmp_path / "wide.tif", image)
    run = subprocess.run([sys.executable, "-m", "samzoo", "segment", str(tmp_path / "wide.tif"), "-o",
                          str(tmp_path / "labels.tif"), "--mode", "ais", "--scale", "1", "--views", "1", "--no-cache"],
                         capture_output=True, text=True)  # the package segments at the size it is given
    assert run.returncode == 0, run.stderr[-3000:]
    expected = tifffile.imread(tmp_path / "labels.tif")
    namespace = {"maps": samzoo_maps["wide"]}
    exec(compile(code, "documentation.md", "exec"), namespace)  # defines instances(), runs it on `maps`
    np.testing.assert_array_equal(namespace["labels"], expected)
    np.testing.assert_array_equal(namespace["instances"](samzoo_maps["wide"], **params), expected)
    assert expected.max() > 20  # a real segmentation of the HeLa nuclei, not an empty one
    # the documented two views: the maps of the quarter-turned image (the package gives samzoo's maps,
    # tested above) turned back, the larger foreground and the mean distances, then the same watershed
    turned = np.rot90(ais_maps(source_model, compute_embeddings(source_model, np.rot90(image), cache=False)), -1,
                      axes=(1, 2))
    both = np.concatenate([np.maximum(samzoo_maps["wide"][:1], turned[:1]), (samzoo_maps["wide"][1:] + turned[1:]) / 2])
    run = subprocess.run([sys.executable, "-m", "samzoo", "segment", str(tmp_path / "wide.tif"), "-o",
                          str(tmp_path / "two.tif"), "--mode", "ais", "--scale", "1", "--views", "2", "--no-cache"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    np.testing.assert_array_equal(namespace["instances"](both, **params), tifffile.imread(tmp_path / "two.tif"))
