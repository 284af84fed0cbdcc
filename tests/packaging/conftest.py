"""Fixtures: one model packaged once per session, and the real image its test tensors come from."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from samzoo.models.load import load_model
from samzoo.models.model import ModelConfig, SamzooModel
from samzoo.packaging.builder import build_packages
from samzoo.zoo.registry import DEFAULT_MODEL

# CI packages samzoo's shipped default model once its weights are in samzoo/models/weights/;
# until then an untrained samzoo_tiny (the mechanics are the same, the masks are not meaningful).
PACKAGE_DEFAULT_MODEL = True


@pytest.fixture(scope="session")
def source_model(tmp_path_factory) -> SamzooModel:
    """The model under test, loaded from a file as users load it (so it has a weights hash)."""
    if PACKAGE_DEFAULT_MODEL:
        return load_model()
    torch.manual_seed(0)
    model = SamzooModel(ModelConfig("samzoo_tiny", 128, {"image_skip": True}, name="samzoo_tiny_untrained"))
    return load_model(model.save(tmp_path_factory.mktemp("model") / "untrained.safetensors"))


@pytest.fixture(scope="session")
def test_image(shared_data) -> np.ndarray:
    """A held-out HeLa frame (real data), cropped so that an image of it spans several tiles."""
    import tifffile

    return tifffile.imread(shared_data / "Fluo_Hela_02_img.tif", key=17)[100:700, 200:900]


@pytest.fixture(scope="session")
def packages(source_model, test_image, tmp_path_factory) -> dict:
    """``{"ais": zip, "prompt": zip}`` of the model under test, built once (tested by the tests)."""
    out = tmp_path_factory.mktemp("packages")
    name = DEFAULT_MODEL if PACKAGE_DEFAULT_MODEL else None  # the registry name selects the model card
    # a maintainer with a GitHub user, as `samzoo package --maintainer` gives one (bioimage.io's
    # FAIR hint); the bioimage.io bot is a GitHub user bioimageio.spec knows offline
    built = build_packages(source_model, out, name=name, image=test_image, image_description="a HeLa frame",
                           test=False, maintainers=[{"name": "bioimage.io bot", "github_user": "bioimageiobot"}])
    return {b.kind: b.path for b in built}
