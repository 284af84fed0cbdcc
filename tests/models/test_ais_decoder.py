import pytest
import torch
from torch import nn

from samzoo.models.ais_decoder import AISDecoder, inference_copy


def _decoder_with_batchnorm_statistics() -> AISDecoder:
    """A random decoder whose BatchNorms hold non-trivial running statistics and affine weights."""
    torch.manual_seed(0)
    decoder = AISDecoder(embed_dim=32, widths=(16, 8, 8, 4))
    for module in decoder.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
            nn.init.uniform_(module.weight, 0.5, 1.5)
            nn.init.uniform_(module.bias, -0.5, 0.5)
    return decoder.eval()


def test_inference_copy_gives_the_decoders_maps():
    decoder = _decoder_with_batchnorm_statistics()
    embedding, image = torch.randn(2, 32, 4, 4), torch.randn(2, 3, 64, 64)
    fast = inference_copy(decoder)
    with torch.no_grad():
        expected = decoder(embedding, image)
        got = fast(embedding.contiguous(memory_format=torch.channels_last),
                   image.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())
    # the original keeps its BatchNorms and parameter names: its weights still save and load
    assert any(isinstance(m, nn.BatchNorm2d) for m in decoder.modules())
    assert set(decoder.state_dict()) == set(AISDecoder(embed_dim=32, widths=(16, 8, 8, 4)).state_dict())


def test_inference_copy_needs_eval_mode():
    with pytest.raises(ValueError, match="eval mode"):
        inference_copy(AISDecoder(embed_dim=32, widths=(16, 8, 8, 4)).train())
