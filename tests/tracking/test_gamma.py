"""gamma="auto": the steadier of two segmentations of a movie (samzoo.tracking.gamma)."""

from types import SimpleNamespace

import numpy as np
import pytest
import zarr

from samzoo.errors import InputError
from samzoo.tracking.gamma import AUTO_GAMMAS, most_consistent, resolve_gamma, temporal_consistency
from samzoo.tracking.track import track


def _still(n_frames: int = 4) -> np.ndarray:
    masks = np.zeros((n_frames, 20, 20), np.int32)
    masks[:, 2:8, 2:8] = 1
    masks[:, 10:18, 10:18] = 2
    return masks


def test_temporal_consistency_counts_what_breaks_between_frames(tmp_path):
    still = _still()
    assert temporal_consistency(still) == 1.0
    relabelled = still.copy()
    relabelled[1:3] = np.where(still[1:3] > 0, 3 - still[1:3], 0)  # new ids do not matter, only overlaps
    assert temporal_consistency(relabelled) == 1.0
    missed = still.copy()
    missed[1][missed[1] == 2] = 0  # object 2 missed in frame 1: frames 0-1 and 1-2 each lose one of two matches
    assert temporal_consistency(missed) == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    cut = still.copy()
    cut[2, 10:14, 10:18] = 5  # object 2 cut in half in frame 2: the halves overlap it by IoU 0.5 exactly
    cut[2, 14:18, 10:18] = 6
    assert temporal_consistency(cut) < temporal_consistency(still)
    assert np.isnan(temporal_consistency(still[:1]))  # one frame has no next one
    assert temporal_consistency(np.zeros((3, 5, 5), int)) == 1.0  # empty frames agree
    store = zarr.open(str(tmp_path / "m.zarr"), mode="w", shape=missed.shape, dtype=missed.dtype,
                      chunks=(1, 20, 20))
    store[:] = missed
    assert temporal_consistency(store) == temporal_consistency(missed)  # lazy masks, read frame by frame


def test_most_consistent_keeps_the_steadier_segmentation_and_the_first_on_a_tie():
    still, flicker = _still(), _still()
    flicker[1] = 0
    given = {1.0: flicker, 0.5: still}
    masks, gamma, consistency = most_consistent(given.__getitem__)
    assert gamma == 0.5 and masks is still
    assert consistency == {1.0: temporal_consistency(flicker), 0.5: 1.0}
    masks, gamma, _ = most_consistent({1.0: still, 0.5: still.copy()}.__getitem__)
    assert gamma == 1.0 and masks is still
    assert AUTO_GAMMAS[0] == 1.0  # a tie keeps the intensities as they are


def test_resolve_gamma_defaults_to_auto_where_it_was_measured():
    own = SimpleNamespace(config=SimpleNamespace(sam_input=False))
    sam_family = SimpleNamespace(config=SimpleNamespace(sam_input=True))
    assert resolve_gamma(None, None, "ais", zstack=False, on_disk=False) == "auto"  # the default model
    assert resolve_gamma(None, own, "ais", zstack=False, on_disk=False) == "auto"
    assert resolve_gamma(None, sam_family, "ais", zstack=False, on_disk=False) == 1.0
    assert resolve_gamma(None, own, "classical", zstack=False, on_disk=False) == 1.0
    assert resolve_gamma(None, own, "ais", zstack=True, on_disk=False) == 1.0
    assert resolve_gamma(None, own, "ais", zstack=False, on_disk=True) == 1.0
    assert resolve_gamma("AUTO", sam_family, "classical", zstack=True, on_disk=False) == "auto"  # asked for
    assert resolve_gamma(0.5, own, "ais", zstack=False, on_disk=True) == 0.5
    with pytest.raises(InputError, match="segments the movie twice in memory"):
        resolve_gamma("auto", own, "ais", zstack=False, on_disk=True)
    with pytest.raises(InputError, match="gamma must be a number"):
        resolve_gamma("bright", own, "ais", zstack=False, on_disk=False)


@pytest.mark.slow
def test_track_with_gamma_auto_segments_at_the_steadier_gamma(monkeypatch, small_movie, tmp_path):
    """The default model's default: gamma "auto", both segmentations of the movie and the steadier kept.

    Two simulated movies where the default model's segmentation is steadier at gamma 0.5 (seed 3:
    frame-to-frame consistency 0.935 against 0.917) and at gamma 1 (seed 9: 0.988 against 0.898).
    """
    import importlib

    track_module = importlib.import_module("samzoo.tracking.track")  # the module: samzoo.tracking.track is the function
    from samzoo.models.load import load_model
    from samzoo.tracking.simulate import simulate_movie

    model, seen = load_model(), []

    def spy(segment_at):
        seen.append(most_consistent(segment_at))
        return seen[-1]

    monkeypatch.setattr(track_module, "most_consistent", spy)
    chosen = {}
    for seed in (3, 9):
        images = simulate_movie(n_frames=6, shape=(160, 160), n_cells=8, seed=seed).images
        result = track(images, model=model, linker="overlap", scale=None)
        _, gamma, consistency = seen[-1]
        assert set(consistency) == set(AUTO_GAMMAS) and consistency[1.0] != consistency[0.5]
        assert result.gamma == gamma == max(AUTO_GAMMAS, key=consistency.get)
        chosen[seed] = gamma
    assert chosen == {3: 0.5, 9: 1.0}  # both ways
    fixed = track(images, model=model, linker="overlap", scale=None, gamma=1.0)
    np.testing.assert_array_equal(result.masks, fixed.masks)  # "auto" is then exactly that gamma's result
    assert fixed.gamma == 1.0 and len(seen) == 2  # a number segments once, without choosing
    assert track(images[:1], model=model, linker="overlap", scale=None).gamma == 1.0  # one frame: nothing to compare
    assert len(seen) == 2
    assert track(images, segmenter="classical", linker="overlap").gamma == 1.0  # the default for the baseline
    assert track(masks=small_movie.masks[:6], linker="overlap").gamma is None  # nothing segmented
    with pytest.raises(InputError, match="segments the movie twice in memory"):
        track(images, segmenter="classical", gamma="auto", workdir=tmp_path / "work")
    with pytest.raises(InputError, match="unknown linker"):  # refused before any segmentation
        track(images, segmenter="classical", gamma="auto", linker="nearest")
