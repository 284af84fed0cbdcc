import numpy as np
import tifffile
from skimage.segmentation import relabel_sequential

from samzoo.evaluation import evaluate_instances
from samzoo.segmentation.predictor import Prompt
from samzoo.segmentation.volume import merge_slices, propagate_through_z


def test_merging_per_slice_labels_recovers_3d_nuclei(shared_data):
    gt = tifffile.imread(shared_data / "nuclei3d_mask.tif").astype(np.int32)
    # forget the 3D identities: number each slice's objects independently, from 1
    per_slice = np.stack([relabel_sequential(plane)[0] for plane in gt])
    merged = merge_slices(per_slice, min_z_extent=1)
    m = evaluate_instances(merged, gt)
    assert m["sa50"] > 0.75 and m["precision"] > 0.9, m  # measured: SA50 0.81, precision 0.98
    assert merge_slices(per_slice, min_z_extent=50).max() == 0  # nothing spans 50 slices


def test_propagation_stays_inside_the_volume(tiny_model, shared_data):
    volume = tifffile.imread(shared_data / "nuclei3d_img.tif")[:6]
    masks = propagate_through_z(tiny_model, volume, 2, Prompt(points=[[30, 28]], point_labels=[1]), min_score=-1,
                                max_area_change=1e9)
    assert masks.shape == volume.shape and masks.dtype == bool
