import pooch
import pytest
import torch

from samzoo.errors import CheckpointError, DownloadError, UnknownModelError
from samzoo.models import load as load_module
from samzoo.models.architectures import build_sam
from samzoo.models.load import load_model
from samzoo.models.model import ModelConfig, SamzooModel
from samzoo.zoo.registry import ModelSpec


def test_published_vit_t_layout_through_a_mirror(tmp_path, monkeypatch):
    """A micro-sam style vit_t checkpoint (weights under model_state) loads by registry name."""
    sam = build_sam("vit_t", 1024)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    torch.save({"model_state": sam.state_dict(), "epoch": 1}, mirror / "vit_t_test.pt")
    spec = ModelSpec("vit_t_test", "sam", "vit_t", "", "url", "http://127.0.0.1:9/x",
                     f"sha256:{pooch.file_hash(str(mirror / 'vit_t_test.pt'))}", "vit_t_test.pt", "")
    monkeypatch.setattr(load_module, "get_model_spec", lambda name: spec)
    model = load_model("vit_t_test", mirror=str(mirror), input_size=512)
    assert model.input_size == 512 and model.weights_hash == spec.hash
    torch.testing.assert_close(model.sam.mask_decoder.state_dict(), sam.mask_decoder.state_dict())


def test_samzoo_file_by_path(tmp_path):
    model = SamzooModel(ModelConfig("samzoo_tiny", 128, {"image_skip": True}))
    path = model.save(tmp_path / "m.safetensors")
    loaded = load_model(path, input_size=256)
    assert loaded.input_size == 256 and loaded.weights_hash.startswith("sha256:")


def test_errors(tmp_path):
    with pytest.raises(UnknownModelError):
        load_model("no_such_model")
    (tmp_path / "x.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="x.pt is truncated or not a PyTorch checkpoint"):
        load_model(tmp_path / "x.pt")
    (tmp_path / "folder").mkdir()
    with pytest.raises(CheckpointError, match="not a bioimage.io package"):
        load_model(tmp_path / "folder")
    with pytest.raises(CheckpointError, match="decoder file .*missing.pt does not exist"):
        load_model(tmp_path / "x.pt", decoder=tmp_path / "missing.pt")
    with pytest.raises(DownloadError, match="SAMZOO_MODEL_MIRROR"):
        load_model("vit_b_lm")  # offline, nothing cached
