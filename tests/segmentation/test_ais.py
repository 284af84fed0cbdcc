import numpy as np
import torch

from samzoo.segmentation.ais import ais_maps
from samzoo.segmentation.embeddings import compute_embeddings


def _reference_maps(model, embeddings):
    """The AIS decoder module itself on the one tile."""
    tile = embeddings.tiles[0]
    with torch.no_grad():
        x = model.preprocess(embeddings.tile_input(tile))
        out = model.ais_decoder(torch.from_numpy(embeddings.features[:1]), x)[0].numpy()
    return out[:, :tile.outer[2], :tile.outer[3]]


def test_ais_maps_follow_the_decoder_and_its_weight_changes(tiny_model, hela_frame):
    emb = compute_embeddings(tiny_model, hela_frame[0][:100, :120], cache=False)
    np.testing.assert_allclose(ais_maps(tiny_model, emb), _reference_maps(tiny_model, emb), atol=1e-5)
    # the fast copy is cached per decoder: an in-place weight update (as an optimizer makes)
    # must reach the maps all the same
    weight = tiny_model.ais_decoder.head.weight
    saved = weight.detach().clone()
    try:
        with torch.no_grad():
            weight.mul_(-2)
        changed = ais_maps(tiny_model, emb)
        np.testing.assert_allclose(changed, _reference_maps(tiny_model, emb), atol=1e-5)
    finally:
        with torch.no_grad():
            weight.copy_(saved)
    assert not np.allclose(changed, ais_maps(tiny_model, emb), atol=1e-3)


def test_ais_maps_of_a_model_built_under_inference_mode(hela_frame):
    from samzoo.models.model import ModelConfig, SamzooModel

    with torch.inference_mode():  # its tensors carry no version counters
        torch.manual_seed(0)
        model = SamzooModel(ModelConfig("samzoo_tiny", 128, {"image_skip": True}, name="test")).eval()
    emb = compute_embeddings(model, hela_frame[0][:100, :120], cache=False)
    np.testing.assert_allclose(ais_maps(model, emb), _reference_maps(model, emb), atol=1e-5)
