"""Segmenting at another scale: labels back on the original grid, prompts moved along, small objects found."""

import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi
from skimage.measure import label

from samzoo.errors import InputError
from samzoo.evaluation.instance_metrics import evaluate_many
from samzoo.segmentation.predictor import Prompt
from samzoo.segmentation.rescale import rescale_prompts, segment_rescaled


@pytest.fixture(scope="module")
def shipped_model():
    from samzoo.models.load import load_model

    return load_model(None)


def test_labels_come_back_on_the_original_grid():
    image = np.zeros((50, 70))
    image[10:20, 10:20] = image[30:44, 40:60] = 1
    for scale in (0.5, 1.0, 1.7, 3.0):
        labels = segment_rescaled(lambda im: ndi.label(im > 0.5)[0], image, scale)
        assert labels.shape == image.shape and labels.max() == 2
        assert (labels > 0).sum() == pytest.approx((image > 0).sum(), rel=0.1)


def test_prompts_are_moved_with_the_image():
    seen = {}

    def record(image, prompts):
        seen.update(prompts)
        return np.zeros(image.shape[:2], dtype=np.int32)

    prompts = {1: Prompt(points=[[10, 20]], point_labels=[1]), 2: Prompt(box=[0, 0, 49, 69])}
    segment_rescaled(record, np.zeros((50, 70)), 2.0, prompts=prompts)
    assert seen[1].points.tolist() == [[20.5, 40.5]]  # pixel centre 10 spans 20..21 at twice the size
    assert seen[2].box.tolist() == [0, 0, 99, 139]  # the whole image stays the whole image
    with pytest.raises(InputError, match="mask prompts"):
        rescale_prompts({1: Prompt(mask=np.ones((5, 5), bool))}, 2.0)


def test_small_nuclei_are_found_when_enlarged(shared_data, shipped_model):
    """Held-out 3D-nuclei slices (~11 px across): the shipped model finds them better at twice the size."""
    from samzoo.segmentation.ais import segment_ais

    image = tifffile.imread(shared_data / "nuclei3d_img.tif")[25:31]
    truth = tifffile.imread(shared_data / "nuclei3d_mask.tif")[25:31]

    def msa(scale):
        pairs = [(segment_rescaled(lambda im: segment_ais(shipped_model, im), plane, scale), label(gt))
                 for plane, gt in zip(image, truth)]
        return evaluate_many(pairs)[1]["msa"]

    native, enlarged = msa(1.0), msa(2.0)
    assert enlarged > native + 0.02, (native, enlarged)


def test_cli_scale(tmp_path, hela_frame):
    """`samzoo segment --scale` gives what segment_rescaled gives, on the original grid."""
    from samzoo.cli.main import main
    from samzoo.segmentation.classical import classical_baseline

    image = hela_frame[0][:200, :300]
    tifffile.imwrite(tmp_path / "in.tif", image)
    assert main(["segment", str(tmp_path / "in.tif"), "-o", str(tmp_path / "out.tif"), "--mode", "classical",
                 "--scale", "0.5"]) == 0
    labels = tifffile.imread(tmp_path / "out.tif")
    expected = segment_rescaled(classical_baseline, image, 0.5)
    assert labels.shape == image.shape and np.array_equal(labels > 0, expected > 0) and labels.max() > 5
