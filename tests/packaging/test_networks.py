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
    # the package gives SAM's own masks: samzoo's border refinement (AIS foreground) is not in it
    result = predict(source_model, emb, prompts, multimask=False, refine=False, clip_to_box=False)
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


def test_tile_spans_follow_samzoo_tiling():
    from samzoo.packaging.networks import tile_spans
    from samzoo.segmentation.tiling import tile_grid

    for shape in [(100, 300), (256, 257), (700, 900), (64, 1000)]:
        tiles = tile_grid(shape, 256, 32)
        ys, xs = tile_spans(shape[0], 256, 32), tile_spans(shape[1], 256, 32)
        assert [t.inner for t in tiles] == [(y[0], x[0], y[1], x[1]) for y in ys for x in xs]
        assert [t.outer for t in tiles] == [(y[2], x[2], y[3], x[3]) for y in ys for x in xs]


def test_ais_network_any_size_and_mirror_padding(source_model, test_image, tmp_path):
    """Any height and width, tiled inside as samzoo tiles; a symmetric halo padding (what
    bioimageio.core adds before normalising) is recognised, the percentiles redone: samzoo's maps.
    The TorchScript export does the same."""
    from samzoo.packaging.ais_package import write_torchscript

    size = source_model.input_size
    crop = test_image[:size + 90, :size + 170]  # 2 x 2 tiles, sides no multiple of anything
    expected = ais_maps(source_model, compute_embeddings(source_model, crop, cache=False))
    net = _network(AISNetwork, source_model)
    halo = net.halo
    raw = crop.astype(np.float32)
    padded = np.pad(raw, halo, mode="symmetric")
    lo, hi = np.percentile(padded, [1, 99.8])  # the padded image's percentiles, as bioimageio.core has them
    scripted = torch.jit.load(str(write_torchscript(net, tmp_path / "ts.pt")))
    with torch.no_grad():
        whole = net(torch.from_numpy(percentile_normalize(crop))[None, None])[0].numpy()
        shifted = torch.from_numpy((padded - lo) / (hi - lo))[None, None]
        got = net(shifted)[0, :, halo:-halo, halo:-halo].numpy()
        got_ts = scripted(shifted)[0, :, halo:-halo, halo:-halo].numpy()
    assert whole.shape == expected.shape
    np.testing.assert_allclose(whole, expected, atol=1e-4)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    np.testing.assert_allclose(got_ts, expected, atol=1e-4)


def test_onnx_form_equals_the_scripted_tiling(source_model, test_image):
    """:class:`GatheredAIS` (fixed tensor operations, for ONNX) gives TiledAIS's maps, padded or not."""
    from samzoo.packaging.ais_package import _tile_network
    from samzoo.packaging.networks import TiledAIS
    from samzoo.packaging.onnx_network import GatheredAIS

    net = _network(AISNetwork, source_model)
    tile = _tile_network(net)
    scripted_rule, onnx_rule = TiledAIS(tile, net.input_size, net.halo), GatheredAIS(tile, net.input_size, net.halo)
    crop = test_image[:net.input_size + 90, :net.input_size + 170].astype(np.float32)
    lo, hi = np.percentile(crop, [1, 99.8])
    padded = np.pad(crop, net.halo, mode="symmetric")
    plo, phi = np.percentile(padded, [1, 99.8])
    with torch.no_grad():
        for x in ((crop - lo) / (hi - lo), (padded - plo) / (phi - plo), (crop[:100, :150] - lo) / (hi - lo)):
            x = torch.from_numpy(x)[None, None]
            torch.testing.assert_close(onnx_rule(x), scripted_rule(x), atol=1e-4, rtol=0)
