import pytest
import torch

from samzoo.errors import UnknownModelError
from samzoo.models.architectures import build_sam
from samzoo.models.model import ModelConfig, SamzooModel, load_samzoo_file, read_config


def test_samzoo_tiny_any_input_size_same_weights():
    small, large = build_sam("samzoo_tiny", 128), build_sam("samzoo_tiny", 256)
    # the TinyViT weights do not depend on the input size: one state dict fits both
    large.load_state_dict(small.state_dict())
    with torch.no_grad():
        out = large.image_encoder(torch.randn(1, 3, 256, 256))
    assert out.shape == (1, 256, 16, 16)
    assert large.prompt_encoder.image_embedding_size == (16, 16)


def test_vit_t_builds_below_1024():
    # MobileSAM hard-codes a 64x64 token grid; samzoo's encoder takes it from the input
    sam = build_sam("vit_t", 256)
    with torch.no_grad():
        assert sam.image_encoder(torch.randn(1, 3, 256, 256)).shape == (1, 256, 16, 16)


def test_bad_architecture_and_sizes():
    with pytest.raises(UnknownModelError, match="vit_q"):
        build_sam("vit_q")
    with pytest.raises(ValueError, match="multiple of 64"):
        build_sam("samzoo_tiny", 100)
    with pytest.raises(ValueError, match="1024"):
        build_sam("vit_b", 512)


def test_save_load_roundtrip(tmp_path):
    model = SamzooModel(ModelConfig("samzoo_tiny", 128, {"image_skip": True}, name="t")).eval()
    path = model.save(tmp_path / "m.safetensors", half=False)
    assert read_config(path).input_size == 128
    loaded = load_samzoo_file(path)
    x = model.preprocess(torch.rand(1, 3, 100, 120) * 255)
    with torch.no_grad():
        a = model.ais_decoder(model.sam.image_encoder(x), x)
        b = loaded.ais_decoder(loaded.sam.image_encoder(x), x)
    assert a.shape == (1, 3, 128, 128)
    torch.testing.assert_close(a, b)
    assert not list(tmp_path.glob("*.tmp"))


def test_preprocess_rejects_too_large():
    model = SamzooModel(ModelConfig("samzoo_tiny", 64, None))
    with pytest.raises(ValueError, match="larger than the model input"):
        model.preprocess(torch.zeros(1, 3, 65, 10))


def test_weights_loaded_in_eval_mode_take_effect_everywhere():
    """TinyViT caches attention biases on eval(); loading weights afterwards must refresh them."""
    import torch

    from samzoo.models.model import ModelConfig, SamzooModel

    config = ModelConfig("samzoo_tiny", 64, None)
    torch.manual_seed(0)
    trained = SamzooModel(config)
    with torch.no_grad():
        for name, p in trained.named_parameters():
            if "attention_biases" in name:
                p.normal_(0, 3)
    trained.eval()
    torch.manual_seed(1)
    fresh = SamzooModel(config).eval()  # eval first, as a consumer or a package builder might do
    fresh.load_state_dict(trained.state_dict())
    x = torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad():
        torch.testing.assert_close(fresh.sam.image_encoder(fresh.preprocess(x)),
                                   trained.sam.image_encoder(trained.preprocess(x)))
