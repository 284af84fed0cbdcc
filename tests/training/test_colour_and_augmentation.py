"""Training on colour images with yx labels, and the generalist's strong augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch

from samzoo.training.data import CropSampler, make_pair, pairs_from_files


@pytest.fixture(scope="module")
def rgb_pair(shared_data):
    import csv

    root = shared_data / "dsb2018"
    row = next(r for r in csv.DictReader(open(root / "index.csv")) if r["kind"] == "rgb")
    return tifffile.imread(root / f"{row['id']}_img.tif"), tifffile.imread(root / f"{row['id']}_mask.tif")


def test_colour_files_with_yx_labels_make_pairs(tmp_path, rgb_pair):
    image, labels = rgb_pair
    for i in range(2):
        tifffile.imwrite(tmp_path / f"img{i}.tif", image)
        tifffile.imwrite(tmp_path / f"lab{i}.tif", labels)
    pairs = pairs_from_files(str(tmp_path / "img*.tif"), str(tmp_path / "lab*.tif"))
    assert len(pairs) == 2 and pairs[0].image.shape == labels.shape
    # nuclei bright after the conversion, as at inference
    assert pairs[0].image[labels > 0].mean() > pairs[0].image[labels == 0].mean()


def test_finetune_cli_takes_colour_images(tmp_path, rgb_pair):
    from samzoo.cli.main import main

    image, labels = rgb_pair
    tifffile.imwrite(tmp_path / "img0.tif", image[:96, :96])
    tifffile.imwrite(tmp_path / "lab0.tif", labels[:96, :96])
    assert main(["finetune", "--images", str(tmp_path / "img*.tif"), "--labels", str(tmp_path / "lab*.tif"),
                 "--from-scratch", "samzoo_tiny", "--input-size", "64", "--steps", "1", "--batch-size", "1",
                 "-o", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "model.safetensors").exists()


def test_strong_augmentation_inverts_inside_the_image_only(hela_frame):
    image, labels = hela_frame
    pair = make_pair(image[:100, :100], labels[:100, :100])
    strong = CropSampler([pair], crop_size=128, seed=3, strong=True)
    dark = torch.full((64, 64), 0.1)  # a dark background inside the image, padding on the right
    inside = torch.zeros((64, 64), dtype=torch.bool)
    inside[:, :40] = True
    dark[~inside] = 0.0  # zero padding, as the sampler pads
    inverted = 0
    for _ in range(60):
        out = strong._jitter(dark.clone(), inside)
        inverted += int(out[inside].mean() > 0.5)
        assert out[~inside].mean() < 0.25  # padding: at most the brightness offset, never inverted
    assert 8 <= inverted <= 30  # about 30 % of the crops are inverted
    plain = CropSampler([make_pair(image, labels)], crop_size=128, seed=3, object_bias=1.0)
    for _ in range(10):
        img, lab, _ = plain.sample()
        assert img[0][lab > 0].mean() > img[0][lab == 0].mean()


def test_scale_range_zooms(hela_frame):
    image, labels = hela_frame
    pair = make_pair(image, labels)
    areas = {}
    for zoom in (0.5, 2.0):
        sampler = CropSampler([pair], crop_size=128, seed=0, scale_range=(zoom, zoom), object_bias=1.0)
        sizes = []
        for _ in range(10):
            _, lab, _ = sampler.sample()
            ids, counts = torch.unique(lab[lab > 0], return_counts=True)
            sizes += counts.tolist()
        areas[zoom] = np.median(sizes)
    assert areas[2.0] > 8 * areas[0.5]  # 16x in area, less what the crop's edge cuts


def test_target_diameter_brings_every_source_to_one_size(hela_frame, shared_data):
    """HeLa nuclei (~28 px) and 3D-nuclei slices (~10 px) come out of the sampler at one size."""
    from samzoo.segmentation.rescale import object_diameter

    small = make_pair(tifffile.imread(shared_data / "nuclei3d_img.tif")[15],
                      tifffile.imread(shared_data / "nuclei3d_mask.tif")[15])
    for pair in (make_pair(*hela_frame), small):
        sampler = CropSampler([pair], crop_size=128, seed=0, scale_range=(1, 1), object_bias=1.0,
                              target_diameter=40)
        seen = [object_diameter(sampler.sample()[1].numpy()) for _ in range(8)]
        # objects cut by the crop's edge look smaller: the median is a little under the target
        assert 28 < np.nanmedian(seen) < 46, (pair.name, seen)
