import pytest
import torch

from samzoo.models.model import ModelConfig, SamzooModel


@pytest.fixture(scope="module")
def tiny_model():
    """An untrained samzoo_tiny at 128 input: for mechanics and error paths, not quality."""
    torch.manual_seed(0)
    model = SamzooModel(ModelConfig("samzoo_tiny", 128, {"image_skip": True}, name="test")).eval()
    model.weights_hash = "sha256:test-model"
    return model


@pytest.fixture(scope="module")
def model_file(tiny_model, tmp_path_factory):
    """The same model as a samzoo .safetensors file, for the command line."""
    return tiny_model.save(tmp_path_factory.mktemp("model") / "untrained.safetensors")
