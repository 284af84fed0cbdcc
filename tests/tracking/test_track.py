import numpy as np
import pytest

from samzoo.errors import DownloadError, InputError
from samzoo.tracking.track import segment_movie, track


def test_given_masks_use_the_overlap_linker_offline(small_movie):
    result = track(small_movie.images, small_movie.masks)
    assert result.linker == "overlap"
    # CTC labels: every track segment keeps one label, and graph labels match the pixels
    assert set(np.unique(result.masks)[1:].tolist()) == set(result.tracks[:, 0].tolist())
    for _, d in result.graph.nodes(data=True):
        assert (result.masks[d["t"]] == d["label"]).sum() == d["area"]


def test_auto_takes_trackastra_when_its_model_is_at_hand(small_movie, trackastra_folder):
    images, masks = small_movie.images[:4], small_movie.masks[:4]
    assert track(images, masks, trackastra_model=trackastra_folder).linker == f"trackastra:{trackastra_folder.name}"
    assert track(images, masks, linker="overlap", trackastra_model=trackastra_folder).linker == "overlap"
    assert track(None, masks, trackastra_model=trackastra_folder).linker == "overlap"  # no images: cannot


def test_explicit_trackastra_fails_clearly_offline(small_movie, tmp_path, monkeypatch):
    monkeypatch.setenv("SAMZOO_MODEL_MIRROR", str(tmp_path))  # an empty mirror: nothing to fetch
    with pytest.raises(DownloadError, match="trackastra_general_2d.zip"):
        track(small_movie.images[:3], small_movie.masks[:3], linker="trackastra")
    # linker="auto" with the same (empty) mirror falls back to the overlap linker
    assert track(small_movie.images[:3], small_movie.masks[:3]).linker == "overlap"
    with pytest.raises(InputError, match="needs the images"):
        track(None, small_movie.masks[:3], linker="trackastra")


def test_3d_movies_segment_per_slice_and_link():
    movie = np.zeros((3, 6, 40, 40), dtype=np.float32)
    zz, yy, xx = np.mgrid[:6, :40, :40]
    for t in range(3):
        movie[t][(zz - 3) ** 2 / 4 + (yy - 15) ** 2 / 25 + (xx - 12 - 3 * t) ** 2 / 25 <= 1] = 1
        movie[t][(zz - 3) ** 2 / 4 + (yy - 28) ** 2 / 25 + (xx - 28) ** 2 / 25 <= 1] = 1
    labels = segment_movie(movie, segmenter="classical", zstack=True)
    assert labels.shape == movie.shape and all(len(np.unique(v)) - 1 == 2 for v in labels)
    result = track(movie, segmenter="classical", zstack=True)
    assert len(result.tracks) == 2 and result.graph.number_of_edges() == 4


def test_bad_requests():
    with pytest.raises(InputError, match="segmenter"):
        segment_movie(np.zeros((2, 8, 8)), segmenter="magic")
    with pytest.raises(InputError, match="mode"):
        track(np.zeros((2, 8, 8)), np.zeros((2, 8, 8), int), mode="psychic")
    with pytest.raises(InputError, match="2D movies"):
        track(np.zeros((2, 3, 8, 8)), mode="propagate", start=np.ones((8, 8), int), zstack=True)
    with pytest.raises(InputError, match="do not match"):
        track(np.zeros((2, 9, 8)), np.zeros((2, 8, 8), int))
    with pytest.raises(InputError, match="gamma"):
        track(np.zeros((2, 8, 8)), mode="propagate", start=np.ones((8, 8), int), gamma=0.5)
    with pytest.raises(InputError, match="gamma must be"):
        segment_movie(np.zeros((2, 8, 8)), segmenter="classical", gamma=-1)


def test_ais_tracking_keeps_objects_leaving_the_field_of_view(tmp_path):
    """Border regions are added where they continue an object, in memory and frame by frame alike."""
    from samzoo.models.load import load_model
    from samzoo.tracking import simulate_movie

    model = load_model(None)
    movie = simulate_movie(n_frames=12, shape=(128, 128), n_cells=8, seed=2)
    # one view: the border regions of one set of maps (two views' larger foreground widens them by a
    # pixel or two into the background, 0.70 of the added pixels on nuclei here; the views' own test is below)
    plain = segment_movie(movie.images, model=model, views=1)
    border = segment_movie(movie.images, model=model, border_objects=True, views=1)
    assert np.array_equal(border[plain > 0], plain[plain > 0])  # objects found anyway stay as they are
    added = (border > 0) & (plain == 0)
    assert added.any()
    # what is added lies on true nuclei
    assert (movie.masks[added] > 0).mean() > 0.9
    in_memory = track(movie.images, model=model, linker="overlap")
    on_disk = track(movie.images, model=model, linker="overlap", workdir=tmp_path / "work")
    assert np.array_equal(np.asarray(in_memory.masks), np.stack([on_disk.masks[t] for t in range(12)]))
    with pytest.raises(InputError, match="border_objects"):
        segment_movie(movie.images, segmenter="classical", border_objects=True)


def test_views_reach_each_frames_ais(hela_frame):
    """views=N segments every frame from its AIS maps averaged over N views, with or without border objects."""
    from samzoo import load_model
    from samzoo.segmentation.ais import multi_view_maps
    from samzoo.segmentation.watershed import watershed_from_maps

    model = load_model()
    frames = np.stack([hela_frame[0][100:260, 200:400], hela_frame[0][300:460, 500:700]])
    two = segment_movie(frames, model=model, views=2)
    for frame, labels in zip(frames, two):
        np.testing.assert_array_equal(labels, watershed_from_maps(multi_view_maps(model, frame, 2)))
    np.testing.assert_array_equal(segment_movie(frames, model=model), two)  # two views by default
    assert not np.array_equal(two, segment_movie(frames, model=model, views=1))
    kept = segment_movie(frames, model=model, views=2, border_objects=True)
    assert np.all(kept[two > 0] > 0)  # the border objects come on top of the same labels
    with pytest.raises(InputError, match="views 2 applies to AIS only"):
        segment_movie(frames, segmenter="classical", views=2)
