import pytest
import torch

from samzoo.models.model import ModelConfig, SamzooModel


@pytest.fixture(scope="module")
def tiny_model():
    """An untrained samzoo_tiny at 128 input: for mechanics (shapes, tiles, cache), not quality."""
    torch.manual_seed(0)
    model = SamzooModel(ModelConfig("samzoo_tiny", 128, {"image_skip": True}, name="test")).eval()
    model.weights_hash = "sha256:test-model"
    return model
