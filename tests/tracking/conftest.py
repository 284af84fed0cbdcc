"""Small movies with known tracks for the tracking tests."""

from __future__ import annotations

import numpy as np
import pytest

from samzoo.tracking.lineage import graph_from_tracks
from samzoo.tracking.simulate import simulate_movie
from tracking_helpers import disk


@pytest.fixture
def division_movie():
    """4 frames, 64x64: object 1 moves right and divides after frame 1 into 2 and 3; object 4
    appears in frame 2 far away. Returns (masks, tracks) in CTC labels."""
    shape = (64, 64)
    masks = np.zeros((4,) + shape, dtype=np.uint16)
    masks[0][disk(shape, (20, 20), 7)] = 1
    masks[1][disk(shape, (20, 23), 7)] = 1
    masks[2][disk(shape, (15, 26), 5)] = 2
    masks[2][disk(shape, (27, 26), 5)] = 3
    masks[3][disk(shape, (13, 28), 5)] = 2
    masks[3][disk(shape, (29, 28), 5)] = 3
    masks[2][disk(shape, (50, 50), 5)] = 4
    masks[3][disk(shape, (50, 52), 5)] = 4
    tracks = np.array([[1, 0, 1, 0], [2, 2, 3, 1], [3, 2, 3, 1], [4, 2, 3, 0]])
    return masks, tracks


@pytest.fixture(scope="session")
def small_movie():
    """A 20-frame simulated movie with divisions (ground truth in CTC labels)."""
    movie = simulate_movie(n_frames=20, shape=(160, 160), n_cells=8, seed=7)
    assert movie.n_divisions >= 3, "the fixture must contain divisions"
    return movie


@pytest.fixture(scope="session")
def small_movie_gt(small_movie):
    return graph_from_tracks(small_movie.masks, small_movie.tracks), small_movie.masks


@pytest.fixture(scope="session")
def trackastra_folder(tmp_path_factory):
    """An untrained, tiny trackastra model saved the way trackastra saves its models."""
    import torch
    import yaml
    from trackastra.model.model import TrackingTransformer

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("trackastra") / "tiny"
    TrackingTransformer(coord_dim=2, feat_dim=7, d_model=16, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
                        window=4, pos_embed_per_dim=8, attn_positional_bias_n_spatial=4).save(folder)
    (folder / "train_config.yaml").write_text(yaml.safe_dump({"features": "wrfeat"}))
    return folder
