"""micro-sam's UNETR decoder in samzoo: exact keys, outputs equal to micro-sam's, strict loading."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from samzoo.errors import CheckpointError
from samzoo.models.unetr import UNETRDecoder, load_unetr_state, postprocess_maps, unetr_config_from_state
import unetr_reference as ref  # tests/models/unetr_reference.py (pytest puts this folder on sys.path)

REFERENCE = np.load(Path(__file__).parent / "data" / "unetr_reference.npz")


@pytest.mark.parametrize("variant", ["transpose", "interpolate"])
def test_keys_and_outputs_equal_microsams(variant):
    """Reference made by micro-sam 1.8.14 / torch-em 0.10.9 (scripts/make_unetr_reference.py)."""
    keys = json.loads(str(REFERENCE[f"{variant}_keys"]))
    shapes = {k: tuple(s) for k, s in keys}
    state = ref.seeded_state(shapes)
    assert unetr_config_from_state(state) == {"embed_dim": 256, "use_conv_transpose": variant == "transpose"}
    decoder = UNETRDecoder(**unetr_config_from_state(state))
    assert [(k, tuple(v.shape)) for k, v in decoder.state_dict().items()] == list(shapes.items())
    load_unetr_state(decoder, state)
    decoder.eval()  # samzoo's models are in eval mode: BatchNorm must still use each image's statistics
    with torch.no_grad():
        maps = postprocess_maps(decoder(ref.seeded_embedding()), 1024, ref.INPUT_SHAPE, ref.ORIGINAL_SHAPE)[0]
    got = maps.numpy()[:, ::ref.STRIDE, ::ref.STRIDE]
    expected = REFERENCE[f"{variant}_maps"]
    assert expected.std() > 0.01  # not a trivial (constant) output
    np.testing.assert_allclose(got, expected, atol=2e-5)
    # the stored running statistics were not touched
    torch.testing.assert_close(decoder.deconv1.block[2].running_mean, state["deconv1.block.2.running_mean"])


def test_running_statistics_on_request_differ():
    shapes = {k: tuple(v.shape) for k, v in UNETRDecoder().state_dict().items()}
    decoder = UNETRDecoder(per_image_batchnorm=False)
    load_unetr_state(decoder, ref.seeded_state(shapes))
    embedding = ref.seeded_embedding()[..., :16, :16]  # a small grid keeps this cheap
    with torch.no_grad():
        running = decoder.eval()(embedding)
        decoder.per_image_batchnorm = True
        per_image = decoder(embedding)
    assert per_image.shape == (1, 3, 256, 256)
    assert (running - per_image).abs().max() > 1e-3


def test_strict_loading_names_the_keys():
    decoder = UNETRDecoder()
    state = decoder.state_dict()
    missing = {k: v for k, v in state.items() if k != "out_conv.bias"}
    with pytest.raises(CheckpointError, match=r"missing keys \(1\): out_conv.bias"):
        load_unetr_state(decoder, missing, "d.pt")
    with pytest.raises(CheckpointError, match=r"unexpected keys \(1\): encoder.pos_embed"):
        load_unetr_state(decoder, {**state, "encoder.pos_embed": torch.zeros(1)}, "d.pt")
    with pytest.raises(CheckpointError, match=r"shape mismatches \(1\): out_conv.weight \(2, 64, 1, 1\)"):
        load_unetr_state(decoder, {**state, "out_conv.weight": torch.zeros(2, 64, 1, 1)}, "d.pt")
    with pytest.raises(CheckpointError, match="not a micro-sam UNETR decoder state"):
        unetr_config_from_state({"head.weight": torch.zeros(1)})
