"""Training on colour images with yx labels, and the generalist's strong augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch
from scipy import ndimage as ndi

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


def test_dim_some_objects_brings_chosen_objects_to_the_background(hela_frame):
    from samzoo.io.normalize import percentile_normalize
    from samzoo.training.data import dim_some_objects

    image = torch.from_numpy(percentile_normalize(hela_frame[0][:256, :256]).astype(np.float32)).clamp(0, 1)
    labels = torch.from_numpy(hela_frame[1][:256, :256].astype(np.int64))
    inside = torch.ones_like(labels, dtype=torch.bool)
    inside[:, 200:] = False  # padding stays as it is
    dimmed = dim_some_objects(image, labels, inside, np.random.default_rng(0), fraction=0.5, factor_range=(0.05, 0.1))
    level = image[inside & (labels == 0)].median()
    contrast = {}
    for i in torch.unique(labels[(labels > 0) & inside]).tolist():
        core = (labels == i) & inside
        before, after = (image[core] - level).abs().mean(), (dimmed[core] - level).abs().mean()
        contrast[i] = float(after / before)
    faint = [i for i, r in contrast.items() if r < 0.3]
    kept = [i for i, r in contrast.items() if r > 0.9]
    assert faint and kept and len(faint) + len(kept) >= 0.8 * len(contrast)  # objects are dimmed or left alone
    far = torch.from_numpy(ndi.distance_transform_edt(hela_frame[1][:256, :256] == 0) > 5)  # beyond the blur of the masks
    assert torch.allclose(dimmed[far & inside], image[far & inside], atol=1e-5)  # background away from objects: as it was
    assert torch.equal(dimmed[~inside], image[~inside])
    empty = torch.zeros_like(labels)
    assert torch.equal(dim_some_objects(image, empty, inside, np.random.default_rng(0)), image)


def test_paste_crop_objects_adds_whole_touching_objects_without_covering(hela_frame):
    from samzoo.io.normalize import percentile_normalize
    from samzoo.training.data import instance_targets, paste_crop_objects

    image = torch.from_numpy(percentile_normalize(hela_frame[0]).astype(np.float32)).clamp(0, 1)
    labels = torch.from_numpy(hela_frame[1].astype(np.int64))
    base_image, base_labels = image[:256, :256], labels[:256, :256].clone()
    donor_image, donor_labels = image[300:556, 500:756], labels[300:556, 500:756]
    inside = torch.ones_like(base_labels, dtype=torch.bool)
    inside[:, 220:] = False  # the padding of a small image gets nothing
    new_image, new_labels, targets = paste_crop_objects(base_image, base_labels, donor_image, donor_labels,
                                                        inside, np.random.default_rng(0), fraction=1.0)
    base_ids = set(torch.unique(base_labels[base_labels > 0]).tolist())
    pasted = sorted(set(torch.unique(new_labels[new_labels > 0]).tolist()) - base_ids)
    assert pasted, "some donor objects fit beside the crop's own"
    offset = int(base_labels.max())
    for i in pasted:
        where = new_labels == i
        donor_mask = donor_labels == i - offset
        assert int(where.sum()) == int((donor_mask & inside).sum())  # whole, where it was in the donor
        assert torch.allclose(new_image[where & (torch.from_numpy(
            ndi.binary_erosion(where.numpy(), iterations=2)))], donor_image[where & torch.from_numpy(
            ndi.binary_erosion(where.numpy(), iterations=2))])
        assert (base_labels[where] > 0).float().mean() < 0.1 and not (~inside)[where].any()
    for i in base_ids:  # the crop's objects keep at least 90 % of their pixels
        assert (new_labels == i).sum() >= 0.9 * (base_labels == i).sum()
    assert np.allclose(targets.numpy(), instance_targets(new_labels.numpy().astype(np.int32)))
    # nothing to paste: the crop is unchanged
    same = paste_crop_objects(base_image, base_labels, donor_image, torch.zeros_like(donor_labels), inside,
                              np.random.default_rng(0))
    assert torch.equal(same[0], base_image) and torch.equal(same[1], base_labels)


def test_sampler_with_pasted_objects_gives_more_objects(hela_frame):
    pair = make_pair(hela_frame[0][:, :300], hela_frame[1][:, :300])
    counts = {}
    for p in (0.0, 1.0):
        sampler = CropSampler([pair], crop_size=128, seed=3, visible_targets=True, paste_objects=p)
        counts[p] = np.mean([len(torch.unique(sampler.sample()[1])) for _ in range(12)])
    assert counts[1.0] > counts[0.0] * 1.15, counts
