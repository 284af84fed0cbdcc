import pytest
import torch
from torch import nn

from samzoo.models.ais_decoder import AISDecoder, copy_matching_weights, inference_copy


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


def test_output_stride_2_predicts_full_size_maps_without_a_full_resolution_stage():
    torch.manual_seed(0)
    decoder = AISDecoder(embed_dim=32, widths=(16, 8, 8), output_stride=2).eval()
    assert not hasattr(decoder, "stem1") and not hasattr(decoder, "up1")
    embedding, image = torch.randn(2, 32, 4, 4), torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        out = decoder(embedding, image)
        # what the head sees is at stride 2: the output is its bilinear upsampling
        logits = decoder.head(decoder.up2(decoder.up4(decoder.up8(embedding), decoder.stem4(decoder.stem2(image))),
                                          decoder.stem2(image)))
    assert out.shape == (2, 3, 64, 64) and logits.shape == (2, 3, 32, 32)
    expected = torch.sigmoid(nn.functional.interpolate(logits, size=(64, 64), mode="bilinear", align_corners=False))
    torch.testing.assert_close(out, expected)
    assert AISDecoder(embed_dim=32, widths=(16, 8, 8), output_stride=2, image_skip=False)(embedding).shape == out.shape


def test_output_stride_1_keeps_the_original_parameter_names():
    """Checkpoints written before ``output_stride`` existed (the shipped model's) load unchanged."""
    names = set(AISDecoder().state_dict())
    assert {"stem1.0.weight", "stem2.1.0.weight", "up1.up.weight", "up1.conv.3.weight", "head.weight"} <= names
    assert AISDecoder().head.in_channels == 8 and AISDecoder(output_stride=2).head.in_channels == 16


@pytest.mark.parametrize("output_stride, widths", [(1, (16, 8, 8)), (2, (16, 8, 8, 4)), (3, (16, 8, 8))])
def test_bad_configurations_are_refused(output_stride, widths):
    with pytest.raises(ValueError, match="output_stride"):
        AISDecoder(widths=widths, output_stride=output_stride)


def test_inference_copy_of_a_stride_2_decoder():
    torch.manual_seed(0)
    decoder = AISDecoder(embed_dim=32, widths=(16, 8, 8), output_stride=2)
    for module in decoder.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
    decoder.eval()
    embedding, image = torch.randn(1, 32, 4, 4), torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = decoder(embedding, image)
        got = inference_copy(decoder)(embedding.contiguous(memory_format=torch.channels_last),
                                      image.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


def test_copy_matching_weights_starts_a_new_configuration_from_a_trained_decoder():
    torch.manual_seed(0)
    old = AISDecoder(embed_dim=32, widths=(16, 8, 8, 4))
    new = AISDecoder(embed_dim=32, widths=(16, 8, 8), output_stride=2)
    before = {k: v.clone() for k, v in new.state_dict().items()}
    copied = copy_matching_weights(new, old.state_dict())
    # stages at strides 8 and 4 are the same blocks; the stride-2 stem now reads the image (3 channels,
    # not 4) and the head reads 8 channels at stride 2 instead of 4 at stride 1
    assert {"up8.up.weight", "up4.conv.0.weight", "up2.conv.3.weight", "stem4.1.0.weight"} <= set(copied)
    assert "stem2.0.weight" not in copied and "head.weight" not in copied
    assert not any(k.endswith("num_batches_tracked") for k in copied)
    state = new.state_dict()
    for name, value in state.items():
        if name in copied:
            torch.testing.assert_close(value, old.state_dict()[name])
        else:
            torch.testing.assert_close(value, before[name])
