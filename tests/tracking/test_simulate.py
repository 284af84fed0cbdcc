import numpy as np
import pytest

from samzoo.errors import InputError
from samzoo.tracking.formats import read_ctc
from samzoo.tracking.simulate import simulate_movie


def test_tracks_agree_with_the_masks(small_movie):
    masks, tracks = small_movie.masks, small_movie.tracks
    assert small_movie.images.shape == masks.shape and small_movie.images.dtype == np.uint16
    present = {int(l): [t for t in range(len(masks)) if (masks[t] == l).any()] for l in np.unique(masks)[1:]}
    assert set(present) == set(tracks[:, 0].tolist())
    for label, begin, end, parent in tracks.tolist():
        assert present[label] == list(range(begin, end + 1))  # contiguous, exactly B..E
        if parent:
            assert tracks[tracks[:, 0] == parent, 2][0] == begin - 1  # daughters start right after the mother


def test_divisions_give_two_smaller_daughters(small_movie):
    masks, tracks = small_movie.masks, small_movie.tracks
    mothers, n_daughters = np.unique(tracks[tracks[:, 3] > 0, 3], return_counts=True)
    assert (n_daughters == 2).sum() == small_movie.n_divisions >= 3
    for mother in mothers:
        daughters = tracks[tracks[:, 3] == mother]
        end = tracks[tracks[:, 0] == mother, 2][0]
        mother_mask = masks[end] == mother
        assert len(daughters) in (1, 2)  # one may be lost at the border
        if mother_mask[[0, -1]].any() or mother_mask[:, [0, -1]].any():
            continue  # a mother cut by the border may look smaller than a daughter
        mother_area = mother_mask.sum()
        for label, begin, _, _ in daughters:
            assert (masks[begin] == label).sum() < mother_area


def test_nuclei_are_brighter_than_background(small_movie):
    inside = small_movie.images[small_movie.masks > 0].mean()
    outside = small_movie.images[small_movie.masks == 0].mean()
    assert inside > outside + 100


def test_same_seed_same_movie_and_cells_enter():
    a = simulate_movie(n_frames=8, shape=(96, 96), n_cells=4, seed=3, enter_rate=1.0)
    b = simulate_movie(n_frames=8, shape=(96, 96), n_cells=4, seed=3, enter_rate=1.0)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.tracks, b.tracks)
    assert ((a.tracks[:, 1] > 0) & (a.tracks[:, 3] == 0)).any()  # new tracks without a mother: entries
    c = simulate_movie(n_frames=8, shape=(96, 96), n_cells=4, seed=4)
    assert not np.array_equal(a.images, c.images)


def test_save_ctc_layout_reads_back(small_movie, tmp_path):
    gt_dir = small_movie.save_ctc(tmp_path)
    assert (tmp_path / "01" / "t000.tif").is_file() and (gt_dir / "man_track.txt").is_file()
    _, masks, tracks = read_ctc(gt_dir)
    assert np.array_equal(masks, small_movie.masks) and np.array_equal(tracks, small_movie.tracks)


def test_rejects_impossible_settings():
    with pytest.raises(InputError, match="radii"):
        simulate_movie(n_frames=3, shape=(20, 20), radius=9)


def _rim_profile(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Median brightness (over background) 1, 2, 3 px inside each object, relative to >= 6 px deep."""
    from scipy import ndimage as ndi

    background = np.median(image[labels == 0])
    rows = []
    for label, box in enumerate(ndi.find_objects(labels), 1):
        if box is None:
            continue
        box = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in box)
        inside = labels[box] == label
        depth = ndi.distance_transform_edt(inside)[inside]
        if inside.sum() < 80 or depth.max() < 6:
            continue
        values = image[box][inside].astype(float) - background
        rows.append([values[np.floor(depth) == d].mean() / values[depth >= 6].mean() for d in (1, 2, 3)])
    return np.median(rows, axis=0)


def test_nuclei_are_domed_like_real_hela_nuclei(shared_data):
    """Real nuclei are dimmer at the rim; the simulator (dome=0.5) matches HeLa there, flat nuclei do not."""
    import tifffile

    real = _rim_profile(tifffile.imread(shared_data / "Fluo_Hela_02_img.tif", key=0),
                        tifffile.imread(shared_data / "Fluo_Hela_02_ERR_SEG.tif", key=0))
    movie = simulate_movie(n_frames=12, seed=1)
    simulated = np.median([_rim_profile(movie.images[t], movie.masks[t]) for t in (5, 11)], axis=0)
    flat_movie = simulate_movie(n_frames=12, seed=1, dome=0.0)
    flat = np.median([_rim_profile(flat_movie.images[t], flat_movie.masks[t]) for t in (5, 11)], axis=0)
    assert np.array_equal(movie.masks, flat_movie.masks)  # the dome changes brightness only
    assert np.abs(simulated - real).max() < 0.08, (simulated, real)
    assert np.abs(flat - real).max() > 0.1, (flat, real)
