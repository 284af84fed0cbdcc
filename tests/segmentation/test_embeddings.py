import numpy as np
import zarr

from samzoo.segmentation.embeddings import compute_embeddings, default_cache_dir


class CountingEncoder:
    def __init__(self, model):
        self.model, self.calls = model, 0
        self.forward = model.sam.image_encoder.forward

    def __enter__(self):
        def counted(x):
            self.calls += 1
            return self.forward(x)
        self.model.sam.image_encoder.forward = counted
        return self

    def __exit__(self, *exc):
        self.model.sam.image_encoder.forward = self.forward


def test_tiled_embeddings_are_cached_and_reused(tiny_model, hela_frame):
    image = hela_frame[0][:200, :300]
    with CountingEncoder(tiny_model) as enc:
        first = compute_embeddings(tiny_model, image, halo=16)
        n_tiles = len(first.tiles)
        assert n_tiles > 1 and enc.calls == n_tiles
        assert first.features.shape == (n_tiles, 256, 8, 8)
        second = compute_embeddings(tiny_model, image, halo=16)
        assert enc.calls == n_tiles  # read from the cache, no encoder call
        np.testing.assert_array_equal(first.features, second.features)
        compute_embeddings(tiny_model, image, halo=24)  # other tiling -> other entry
        assert enc.calls > n_tiles
        calls = enc.calls
        compute_embeddings(tiny_model, image[::-1].copy(), halo=16)  # other content -> other entry
        assert enc.calls > calls


def test_incomplete_cache_entry_is_not_read(tiny_model, hela_frame):
    image = hela_frame[0][:100, :100]
    first = compute_embeddings(tiny_model, image)
    entry = default_cache_dir() / f"{first.key}.zarr"
    assert entry.exists()
    zarr.open_array(str(entry), mode="r+").attrs["complete"] = False  # as if a writer died midway
    with CountingEncoder(tiny_model) as enc:
        compute_embeddings(tiny_model, image)
        assert enc.calls == 1
    assert not [p for p in entry.parent.iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_sam_family_embeddings_stay_float32_fresh_and_cached(hela_frame, tmp_path):
    """micro-sam keeps float32 embeddings; rounded to float16, AMG's near-threshold masks differ from its own."""
    import torch

    from samzoo.models.model import ModelConfig, SamzooModel

    torch.manual_seed(0)
    model = SamzooModel(ModelConfig("samzoo_tiny", 128, ais_decoder=None, sam_input=True)).eval()
    model.weights_hash = "sha256:test-sam-family"
    image = hela_frame[0][:100, :100]
    fresh = compute_embeddings(model, image, cache=tmp_path)
    assert (fresh.features != fresh.features.astype(np.float16).astype(np.float32)).any()
    cached = compute_embeddings(model, image, cache=tmp_path)
    np.testing.assert_array_equal(cached.features, fresh.features)
    assert zarr.open_array(str(tmp_path / f"{fresh.key}.zarr"), mode="r").dtype == np.float32
