import zipfile

import imageio.v3 as iio
import numpy as np
import pytest
import xarray as xr

from samzoo.io.normalize import to_model_input
from samzoo.models.load import load_model
from samzoo.packaging.builder import build_packages, validate_package
from samzoo.packaging.documentation import WATERSHED_DEFAULTS
from samzoo.packaging.reader import read_rdf, sha256_of
from samzoo.packaging.samples import square_crop
from samzoo.segmentation.ais import ais_maps, segment_ais
from samzoo.segmentation.embeddings import compute_embeddings
from samzoo.segmentation.predictor import Prompt, predict
from samzoo.segmentation.watershed import watershed_from_maps


def _source(entry) -> str:
    return entry["source"] if isinstance(entry, dict) else entry


def _rdf(package, tmp_path):
    with zipfile.ZipFile(package) as z:
        z.extractall(tmp_path)
    return read_rdf(tmp_path)[0]


def test_ais_package_contents(packages, source_model, tmp_path):
    rdf = _rdf(packages["ais"], tmp_path)
    assert rdf["format_version"].startswith("0.5")
    assert [t["id"] for t in rdf["inputs"]] == ["image"] and [t["id"] for t in rdf["outputs"]] == ["maps"]
    assert [a.get("channel_names") for a in rdf["outputs"][0]["axes"] if a["type"] == "channel"] == \
        [["foreground", "center_distance", "boundary_distance"]]
    # per-sample percentiles, unclipped (the network clips): every block of an image shares them
    scale_range, = [p for p in rdf["inputs"][0]["preprocessing"] if p["id"] != "ensure_dtype"]
    assert scale_range["id"] == "scale_range" and "batch" not in scale_range["kwargs"]["axes"]
    size, halo = source_model.input_size, source_model.input_size // 8
    spatial = [a for a in rdf["inputs"][0]["axes"] if a["type"] == "space"]
    assert [a["size"] for a in spatial] == [{"min": size, "step": halo}] * 2  # any size, not one fixed tile
    out_spatial = [a for a in rdf["outputs"][0]["axes"] if a["type"] == "space"]
    assert [(a["halo"], a["size"]["tensor_id"], a["size"]["axis_id"]) for a in out_spatial] == \
        [(halo, "image", "y"), (halo, "image", "x")]
    test_input = np.load(tmp_path / rdf["inputs"][0]["test_tensor"]["source"])
    assert test_input.shape[2] > size and test_input.shape[3] > test_input.shape[2]  # tiled, non-square
    assert rdf["config"]["samzoo"]["watershed"] == WATERSHED_DEFAULTS
    assert rdf["config"]["samzoo"]["tiling"] == {"tile_size": size, "halo": halo}
    assert set(rdf["weights"]) == {"pytorch_state_dict", "torchscript", "onnx"}
    arch = rdf["weights"]["pytorch_state_dict"]["architecture"]
    assert (arch["import_from"], arch["callable"]) == ("samzoo.packaging.networks", "AISNetwork")
    for entry in rdf["weights"].values():  # every weight file is hash-pinned
        assert entry["sha256"] == sha256_of(tmp_path / entry["source"])
    doc = (tmp_path / _source(rdf["documentation"])).read_text()
    assert "watershed(" in doc and "\n# Validation" in doc and "relabel_sequential" in doc
    cover = iio.imread(tmp_path / _source(rdf["covers"][0]))
    assert cover.shape[1] == 2 * cover.shape[0] and cover.shape[2] == 3  # image | overlay
    assert rdf["tags"] and rdf["cite"] and rdf["authors"] and rdf["license"]
    assert rdf["config"]["samzoo"]["model"]["architecture"] == source_model.config.architecture


def test_prompt_package_contents(packages, tmp_path):
    rdf = _rdf(packages["prompt"], tmp_path)
    assert [t["id"] for t in rdf["inputs"]] == ["image", "box_prompts", "point_prompts", "point_labels",
                                                 "mask_prompts", "embeddings"]
    assert [t.get("optional", False) for t in rdf["inputs"]] == [False] + [True] * 5
    assert [t["id"] for t in rdf["outputs"]] == ["masks", "scores", "embeddings"]
    assert set(rdf["weights"]) == {"pytorch_state_dict"}
    masks = np.load(tmp_path / rdf["outputs"][0]["test_tensor"]["source"])
    assert masks.shape[1] >= 1 and masks.any()  # real objects of the real test image were prompted


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["ais", "prompt"])
def test_packages_pass_bioimageio_test_offline(packages, kind):
    status, report = validate_package(packages[kind])
    assert status == "passed", report
    # no warning at all: sample tensors, tags, a Validation section, a maintainer with a GitHub user
    assert report == "", report


@pytest.mark.slow
def test_round_trip_ais(packages, source_model, test_image):
    """package -> load -> segment: the same maps and masks as the original model on a real image."""
    loaded = load_model(packages["ais"])
    expected = ais_maps(source_model, compute_embeddings(source_model, test_image, cache=False))
    got = ais_maps(loaded, compute_embeddings(loaded, test_image, cache=False))
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(segment_ais(loaded, test_image), watershed_from_maps(expected))


@pytest.mark.slow
def test_round_trip_prompts(packages, source_model, test_image):
    loaded = load_model(packages["prompt"])
    prompts = {1: Prompt(points=[[120, 300]], point_labels=[1]), 2: Prompt(box=[300, 100, 360, 170])}
    before = predict(source_model, compute_embeddings(source_model, test_image, cache=False), prompts)
    after = predict(loaded, compute_embeddings(loaded, test_image, cache=False), prompts)
    assert any(r.mask.any() for r in before.values())
    for object_id in prompts:
        np.testing.assert_array_equal(after[object_id].mask, before[object_id].mask)


@pytest.mark.slow
def test_torchscript_consumer_reproduces_samzoo_segmentation(packages, source_model, test_image):
    """bioimageio.core with the TorchScript weights (no samzoo code) + the documented watershed."""
    from bioimageio.core import predict as bioimageio_predict
    from bioimageio.core import create_prediction_pipeline
    from bioimageio.spec import load_description

    crop = square_crop(test_image, source_model.input_size)
    descr = load_description(packages["ais"])
    # no `with`: predict() enters (and unloads) the pipeline itself; a second unload would hang
    pipeline = create_prediction_pipeline(descr, devices=["cpu"], weight_format="torchscript")
    out = bioimageio_predict(model=pipeline, inputs={"image": xr.DataArray(crop[None, None].astype("float32"),
                                                                           dims=("batch", "channel", "y", "x"))})
    maps = out.members["maps"].data.values[0]
    expected = ais_maps(source_model, compute_embeddings(source_model, crop, cache=False))
    np.testing.assert_allclose(maps, expected, atol=1e-4)
    np.testing.assert_array_equal(watershed_from_maps(maps), watershed_from_maps(expected))


@pytest.mark.slow
def test_prompt_package_optional_inputs_in_bioimageio_core(packages, source_model, test_image):
    """What works in bioimageio.core: image plus any subset of the prompts; image alone."""
    from bioimageio.core import create_prediction_pipeline
    from bioimageio.core.digest_spec import create_sample_for_model
    from bioimageio.spec import load_description

    size = source_model.input_size
    crop = square_crop(test_image, size)
    emb = compute_embeddings(source_model, crop, cache=False)
    prompts = {1: Prompt(points=[[40, 50], [45, 70]], point_labels=[1, 0]), 2: Prompt(box=[60, 20, 100, 64])}
    points = xr.DataArray(np.array([[[[50, 40], [70, 45]], [[0, 0], [0, 0]]]], np.float32),
                          dims=("batch", "object", "point", "channel"))
    labels = xr.DataArray(np.array([[[1, 0], [-1, -1]]], np.int64), dims=("batch", "object", "point"))
    image = xr.DataArray(to_model_input(crop)[None], dims=("batch", "channel", "y", "x"))
    descr = load_description(packages["prompt"])
    with create_prediction_pipeline(descr, devices=["cpu"]) as pipeline:
        def run(**inputs):
            sample = create_sample_for_model(model=descr, inputs={"image": image, **inputs})
            return pipeline.predict_sample_without_blocking(sample).members

        only_points = run(point_prompts=points[:, :1], point_labels=labels[:, :1])["masks"].data.values
        only_box = run(box_prompts=xr.DataArray(np.array([[[20, 60, 64, 100]]], np.float32),
                                                dims=("batch", "object", "channel")))["masks"].data.values
        image_only = run()
    expected = predict(source_model, emb, prompts, multimask=False, refine=False, clip_to_box=False)  # SAM's masks, as packaged
    np.testing.assert_array_equal(only_points[0, 0, 0].astype(bool), expected[1].mask)
    np.testing.assert_array_equal(only_box[0, 0, 0].astype(bool), expected[2].mask)
    assert image_only["masks"].data.shape[1] == 0
    np.testing.assert_array_equal(image_only["embeddings"].data.values[0], emb.features[0])


@pytest.mark.slow
def test_rgb_ais_package(source_model, test_image, tmp_path):
    """uint8 RGB is used as it is by SAM-family models (no percentile normalisation): so does their
    package. samzoo's own models see colour as grey: their package takes the grey image."""
    grey = (to_model_input(test_image)[0]).astype(np.uint8)
    rgb = np.stack([grey, grey // 2, 255 - grey], axis=-1)
    built = build_packages(source_model, tmp_path, name="rgb", image=rgb, kinds=("ais",))
    assert built[0].test_status == "passed", built[0].test_report
    rdf = _rdf(built[0].path, tmp_path / "unpacked")
    steps = [p["id"] for p in rdf["inputs"][0]["preprocessing"] if p["id"] != "ensure_dtype"]
    channels = [a for a in rdf["inputs"][0]["axes"] if a["type"] == "channel"][0]["channel_names"]
    if getattr(source_model, "grey_input", False):
        assert (steps, channels) == (["scale_range"], ["intensity"])
    else:
        assert (steps, channels) == (["scale_linear"], ["red", "green", "blue"])
