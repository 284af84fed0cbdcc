"""Property-based tests (hypothesis): any input gives a correct result or a clear :class:`SamzooError`.

Images (shapes, dtypes, NaN/inf, constant, one pixel), prompts (very many, outside the image,
negative), prompt CSVs (empty, malformed, binary), damaged TIFFs.
"""

import tempfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from samzoo.errors import InputError, SamzooError
from samzoo.io import read_boxes_csv, read_image, read_points_csv, to_model_input
from samzoo.io.normalize import percentile_normalize
from samzoo.segmentation.classical import classical_baseline
from samzoo.segmentation.embeddings import compute_embeddings
from samzoo.segmentation.predictor import Prompt, paint_labels, predict

DTYPES = [np.bool_, np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64,
          np.float16, np.float32, np.float64, np.complex64]
NUMERIC = [np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64, np.float16, np.float32,
           np.float64]
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MODEL = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                         HealthCheck.function_scoped_fixture])


def images(dtypes=NUMERIC, min_side=1, max_side=24, channels=False):
    """Arrays of any numeric dtype with every kind of value: extremes, NaN, inf."""
    shape = hnp.array_shapes(min_dims=2, max_dims=2, min_side=min_side, max_side=max_side)
    if channels:
        shape = st.tuples(st.integers(min_side, max_side), st.integers(min_side, max_side), st.integers(1, 3))
    return st.sampled_from(dtypes).flatmap(lambda dtype: hnp.arrays(np.dtype(dtype), shape))


@FAST
@given(data=st.sampled_from(DTYPES).flatmap(
           lambda d: hnp.arrays(np.dtype(d), hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=4))),
       axes=st.one_of(st.none(), st.text(alphabet="tzcyxq", max_size=6)))
def test_read_image_any_array(data, axes):
    try:
        image = read_image(data, axes=axes)
    except InputError:
        return
    assert "y" in image.dims and "x" in image.dims
    assert list(image.dims) == [d for d in "tzcyx" if d in image.dims]
    assert image.dtype.kind in "uif" and 0 not in image.shape


@FAST
@given(image=images(channels=True))
def test_model_input_is_finite_and_in_range(image):
    out = to_model_input(image)
    assert out.shape == (3,) + image.shape[:2] and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 255


@FAST
@given(image=images())
def test_percentile_normalize_keeps_order(image):
    """Brighter finite pixels never map below darker ones (normalisation is monotonic)."""
    out = percentile_normalize(image, 0, 100)
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    values = image.astype(np.float64)
    finite = np.isfinite(values)
    order = np.argsort(values[finite], kind="stable")
    assert (np.diff(out[finite][order]) >= 0).all()
    if finite.any() and values[finite].min() < values[finite].max():
        assert out[finite].max() == 1.0


@FAST
@given(value=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(0, 2**16 - 1)),
       shape=st.tuples(st.integers(1, 40), st.integers(1, 40)),
       dtype=st.sampled_from([np.float64, np.float32, np.uint16]))
def test_constant_image_is_valid_and_empty(value, shape, dtype):
    assume(np.dtype(dtype).kind == "f" or isinstance(value, int))
    with np.errstate(over="ignore", invalid="ignore"):
        image = np.full(shape, value).astype(dtype)
    assert read_image(image).shape == shape
    assert not to_model_input(image).any()
    assert not classical_baseline(image).any()


@FAST
@given(image=images(max_side=40))
def test_classical_baseline_any_image(image):
    labels = classical_baseline(image)
    assert labels.shape == image.shape and labels.min() >= 0


@pytest.fixture(scope="module")
def embeddings(tiny_model):
    image = np.random.default_rng(0).integers(0, 4000, (90, 200)).astype(np.uint16)  # two tiles
    return compute_embeddings(tiny_model, image, cache=False)


@MODEL
@given(points=hnp.arrays(np.float64, st.tuples(st.integers(1, 5), st.just(2)),
                         elements=st.floats(-1e6, 1e6, allow_nan=False)))
def test_points_anywhere(tiny_model, embeddings, points):
    height, width = embeddings.shape
    inside = ((points >= 0) & (points <= [height - 1, width - 1])).all()
    prompts = {3: Prompt(points=points, point_labels=np.ones(len(points), int))}
    if not inside:
        with pytest.raises(InputError, match="outside the image"):
            predict(tiny_model, embeddings, prompts)
        return
    labels = paint_labels(predict(tiny_model, embeddings, prompts), embeddings.shape)
    assert labels.shape == (height, width) and set(np.unique(labels)) <= {0, 3}


@MODEL
@given(box=st.lists(st.floats(-300, 300), min_size=4, max_size=4))
def test_boxes_anywhere(tiny_model, embeddings, box):
    height, width = embeddings.shape
    try:
        prompt = Prompt(box=box)
    except InputError:
        assert box[0] > box[2] or box[1] > box[3]
        return
    try:
        result = predict(tiny_model, embeddings, {1: prompt})
    except InputError as err:
        assert "outside the image" in str(err)
        assert min(box) < 0 or box[2] > height - 1 or box[3] > width - 1
        return
    assert result[1].full_mask(embeddings.shape).shape == (height, width)


def test_very_many_prompts(tiny_model, embeddings):
    rng = np.random.default_rng(1)
    height, width = embeddings.shape
    points = rng.uniform([0, 0], [height - 1, width - 1], size=(2000, 2))
    prompts = {i + 1: Prompt(points=[p], point_labels=[1]) for i, p in enumerate(points)}
    prompts[5000] = Prompt(points=points, point_labels=rng.integers(0, 2, len(points)))  # one object, 2000 points
    results = predict(tiny_model, embeddings, prompts)
    assert len(results) == 2001
    labels = paint_labels(results, embeddings.shape)
    assert labels.shape == (height, width) and labels.max() <= 5000


def test_non_finite_prompt_coordinates_are_refused(tiny_model, embeddings):
    with pytest.raises(InputError):
        predict(tiny_model, embeddings, {1: Prompt(points=[[np.nan, 10]], point_labels=[1])})
    with pytest.raises(InputError):
        predict(tiny_model, embeddings, {1: Prompt(box=[0, 0, np.inf, 10])})


CSV_TOKENS = st.sampled_from(["1", "0", "-1", "2.5", "17", "nan", "inf", "-inf", "1e400", "", " 3 ", '"4"', "a",
                              "4294967296", "1e10", ",", "\n", '"', "\x00", "\ufeff", "\r\n"])


def _write(content) -> Path:
    path = Path(tempfile.mkdtemp()) / "prompts.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
    return path


@FAST
@given(header=st.sampled_from(["object_id,y,x,positive", "object_id,ymin,xmin,ymax,xmax", "\ufeffobject_id,y,x,positive",
                               "y,x", "object_id, y , x ,positive", ""]),
       rows=st.lists(st.lists(CSV_TOKENS, max_size=6).map(",".join), max_size=5))
def test_prompt_csv_structured_fuzz(header, rows):
    path = _write("\n".join([header] + rows) + "\n")
    for reader in (read_points_csv, read_boxes_csv):
        try:
            result = reader(path)
        except InputError:
            continue
        assert result and all(isinstance(k, int) and 1 <= k < 2**32 for k in result)
        for value in result.values():
            arrays = value if isinstance(value, tuple) else (value,)
            assert all(np.isfinite(np.asarray(a, dtype=float)).all() for a in arrays)


@FAST
@given(content=st.one_of(st.binary(max_size=200), st.text(max_size=200)))
def test_prompt_csv_any_bytes(content):
    for reader in (read_points_csv, read_boxes_csv):
        try:
            reader(_write(content))
        except InputError:
            pass


@pytest.fixture(scope="module")
def tiff_bytes(tmp_path_factory, shared_data):
    path = tmp_path_factory.mktemp("tiff") / "crop.tif"
    crop = tifffile.imread(shared_data / "Fluo_Hela_02_img.tif", key=3)[:64, :80]
    tifffile.imwrite(path, crop, compression="zlib", metadata={"axes": "YX"})
    return path.read_bytes(), crop


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.floats(0, 1), flips=st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)), max_size=4))
def test_damaged_tiff(tiff_bytes, cut, flips):
    """Truncated and bit-flipped real TIFFs: the image, a clear error, or (undetectable damage) an image."""
    good, crop = tiff_bytes
    data = bytearray(good[:max(int(cut * len(good)), 0)] if cut < 0.999 else good)
    for where, mask in flips:
        if data:
            data[min(int(where * len(data)), len(data) - 1)] ^= mask
    path = _write(bytes(data)).with_suffix(".tif")
    path.write_bytes(bytes(data))
    try:
        image = read_image(path)
    except InputError as err:
        assert str(path) in str(err)
        return
    assert "y" in image.dims and "x" in image.dims
    if bytes(data) == good:
        np.testing.assert_array_equal(image.values, crop)


def test_tiff_declaring_a_huge_image(tmp_path):
    """A few bytes declaring 2^31 x 2^31 pixels: refused before any allocation."""
    path = tmp_path / "bomb.tif"
    tifffile.imwrite(path, np.zeros((8, 8), np.uint16), compression="zlib")
    with tifffile.TiffFile(path, mode="r+b") as tif:
        tif.pages[0].tags["ImageWidth"].overwrite(2**31 - 1)
        tif.pages[0].tags["ImageLength"].overwrite(2**31 - 1)
    with pytest.raises(InputError, match="convert it to Zarr"):
        read_image(path)


def test_samzoo_errors_are_value_errors_for_input():
    """Scripts catching ValueError for bad input keep working."""
    assert issubclass(InputError, ValueError) and issubclass(InputError, SamzooError)
