import numpy as np
import pytest
import torch

from samzoo.io.normalize import percentile_normalize
from samzoo.packaging.networks import AISNetwork, PromptNetwork
from samzoo.segmentation.ais import ais_maps
from samzoo.segmentation.embeddings import compute_embeddings
from samzoo.segmentation.predictor import Prompt, predict


def _network(cls, model, **kwargs):
    c = model.config
    net = cls(c.architecture, c.input_size, c.ais_decoder, name=c.name, **kwargs).eval()
    net.load_state_dict(model.state_dict())
    return net


def test_ais_network_reproduces_samzoo_maps(source_model, test_image):
    size = source_model.input_size
    crop = test_image[:size, :size]
    expected = ais_maps(source_model, compute_embeddings(source_model, crop, cache=False))
    net = _network(AISNetwork, source_model)
    with torch.no_grad():
        got = net(torch.from_numpy(percentile_normalize(crop))[None, None])[0].numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_prompt_network_matches_samzoo_predict(source_model, test_image):
    """Same prompts, (x, y) in the package and (y, x) in samzoo: the same masks and scores."""
    size = source_model.input_size
    crop = test_image[:size, :size]
    emb = compute_embeddings(source_model, crop, cache=False)
    prompts = {1: Prompt(points=[[40, 50], [10, 12]], point_labels=[1, 0], box=[30, 35, 60, 70]),
               2: Prompt(points=[[90, 100], [100, 120]], point_labels=[1, 1], box=[80, 90, 110, 125])}
    result = predict(source_model, emb, prompts, multimask=False)
    net = _network(PromptNetwork, source_model)
    image = torch.from_numpy(emb.image)[None]
    boxes = torch.tensor([[[35, 30, 70, 60], [90, 80, 125, 110]]], dtype=torch.float32)
    points = torch.tensor([[[[50, 40], [12, 10]], [[100, 90], [120, 100]]]], dtype=torch.float32)
    labels = torch.tensor([[[1, 0], [1, 1]]])
    masks, scores, embeddings = net(image, boxes, points, labels)
    assert masks.shape == (1, 2, 1, size, size) and masks.dtype == torch.uint8
    for i, object_id in enumerate((1, 2)):
        np.testing.assert_array_equal(masks[0, i, 0].numpy().astype(bool), result[object_id].mask)
        assert scores[0, i, 0].item() == pytest.approx(result[object_id].score, abs=1e-5)
    np.testing.assert_array_equal(embeddings[0].numpy(), emb.features[0])


def test_prompt_network_optional_inputs(source_model):
    net = _network(PromptNetwork, source_model)
    image = torch.rand(1, 3, 100, 140) * 255
    masks, scores, embeddings = net(image)  # image alone: no objects, but the embedding
    assert masks.shape == (1, 0, 1, 100, 140) and scores.shape == (1, 0, 1)
    again, _, _ = net(image, torch.tensor([[[10.0, 10, 60, 50]]]), embeddings=embeddings)
    fresh, _, _ = net(image, torch.tensor([[[10.0, 10, 60, 50]]]))
    assert again.shape == (1, 1, 1, 100, 140)
    torch.testing.assert_close(again, fresh)  # a passed-back embedding equals recomputing it
    with pytest.raises(ValueError, match="point_labels"):
        net(image, point_prompts=torch.zeros(1, 1, 1, 2))
    with pytest.raises(ValueError, match="number of objects"):
        net(image, torch.zeros(1, 2, 4), torch.zeros(1, 1, 1, 2), torch.ones(1, 1, 1))


def test_ais_network_needs_a_decoder():
    with pytest.raises(ValueError, match="AIS decoder"):
        AISNetwork("samzoo_tiny", 128, None)
