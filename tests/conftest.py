"""Shared fixtures: where the real data lives (``../shared`` or ``$SAMZOO_SHARED``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    return Path(os.environ.get("SAMZOO_SHARED", REPO.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real microscopy TIFFs described in ``../shared/README.md``."""
    path = shared_dir() / "data"
    if not path.is_dir():
        pytest.fail(f"real test data not found at {path}; set SAMZOO_SHARED")
    return path


@pytest.fixture(scope="session")
def hela_frame(shared_data):
    """Frame 17 (held out from training) of the HeLa movie and its CTC segmentation, cropped."""
    import tifffile

    img = tifffile.imread(shared_data / "Fluo_Hela_02_img.tif", key=17)
    seg = tifffile.imread(shared_data / "Fluo_Hela_02_ERR_SEG.tif", key=17)
    return img, seg


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Never let a test touch the user's real model cache or mirror settings."""
    monkeypatch.setenv("SAMZOO_CACHE_DIR", str(tmp_path / "samzoo-cache"))
    monkeypatch.delenv("SAMZOO_MODEL_MIRROR", raising=False)


@pytest.fixture(scope="module")
def tiny_model():
    """An untrained samzoo_tiny at 128 input: for mechanics (shapes, tiles, cache, error paths), not quality."""
    import torch

    from samzoo.models.model import ModelConfig, SamzooModel

    torch.manual_seed(0)
    model = SamzooModel(ModelConfig("samzoo_tiny", 128, {"image_skip": True}, name="test")).eval()
    model.weights_hash = "sha256:test-model"
    return model


@pytest.fixture(scope="module")
def model_file(tiny_model, tmp_path_factory):
    """The same untrained model as a samzoo .safetensors file, for the command line."""
    return tiny_model.save(tmp_path_factory.mktemp("model") / "untrained.safetensors")
