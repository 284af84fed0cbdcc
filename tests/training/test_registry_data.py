"""The unseen held-out sources read from PyPI archives (``scripts/registry_data.py``), on small archives built here."""

from __future__ import annotations

import io
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
from skimage.io import imsave

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import registry_data  # noqa: E402


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _tif(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array)
    return buffer.getvalue()


def test_colour_coded_masks_become_instance_labels():
    rgba = np.zeros((4, 5, 4), np.uint8)
    rgba[0, :2] = (255, 1, 2, 255)
    rgba[2:, 3:] = (255, 1, 3, 255)  # differs from the first colour in blue only
    labels = registry_data.colour_coded_labels(rgba)
    assert labels.dtype == np.int32 and set(np.unique(labels)) == {0, 1, 2}
    assert labels[0, 0] == labels[0, 1] != labels[3, 4] and labels[1, 1] == 0


def test_unseen_planes_pair_images_and_labels_of_each_layout(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    mask = np.zeros((12, 10, 4), np.uint8)
    mask[2:5, 2:5] = (255, 0, 7, 255)
    mask[7:10, 5:9] = (255, 4, 0, 255)
    png = io.BytesIO()
    imsave(png, mask, format="png", check_contrast=False)
    archive = tmp_path / "fake.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for split in ("training", "test"):
            _add(tar, f"pkg/src/mnfinder/{split}-data/set_a/images/1.tif", _tif(rng.integers(0, 999, (12, 10), np.uint16)))
            _add(tar, f"pkg/src/mnfinder/{split}-data/set_a/images/1.png", b"a copy, not read")
            _add(tar, f"pkg/src/mnfinder/{split}-data/set_a/nucleus_masks/1.png", png.getvalue())
            _add(tar, f"pkg/src/mnfinder/{split}-data/set_a/mn_masks/1.png", png.getvalue())
        for t in (0, 1):
            _add(tar, f"pkg/examples/sample_data/PhC-C2DL-PSC/02/t00{t}.tif", _tif(np.full((6, 7), t, np.uint8)))
            _add(tar, f"pkg/examples/sample_data/PhC-C2DL-PSC/02_ST/SEG/man_seg00{t}.tif",
                 _tif(np.full((6, 7), t + 1, np.uint16)))
        _add(tar, "pkg/docs/examples/napari_interactive_fix_data/example_images.tif", _tif(np.zeros((3, 8, 8), np.uint16)))
        _add(tar, "pkg/docs/examples/napari_interactive_fix_data/example_label.tif", _tif(np.ones((3, 8, 8), np.uint16)))
    monkeypatch.setattr(registry_data, "fetch_archive", lambda name: archive)

    nuclei = registry_data.unseen_planes("mnfinder")
    assert [n for _, _, n in nuclei] == ["mnfinder/set_a/1", "mnfinder/set_a/1"]  # training and test folders
    image, labels, _ = nuclei[0]
    assert image.shape == labels.shape == (12, 10) and labels.max() == 2 and (labels[3, 3] != labels[8, 6])
    psc = registry_data.unseen_planes("psc")
    assert [(int(i.max()), int(lab.max())) for i, lab, _ in psc] == [(0, 1), (1, 2)]  # frame t with its own labels
    assert len(registry_data.unseen_planes("laptrack_nuclei")) == 3
    with pytest.raises(KeyError, match="unknown unseen source"):
        registry_data.unseen_planes("nothing")


def test_an_unreachable_archive_says_where_to_put_it(tmp_path, monkeypatch):
    import requests

    from samzoo.errors import DownloadError

    def offline(*args, **kwargs):
        raise requests.exceptions.ConnectionError("no network")

    monkeypatch.setenv("SAMZOO_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(registry_data.pooch, "retrieve", offline)
    with pytest.raises(DownloadError, match=r"psc.*put that file into .*data.*sha256 8c4984c0"):
        registry_data.fetch_archive("psc")
