"""Movies larger than memory: tracked frame by frame from Zarr, with the same result as in memory."""

import importlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

from samzoo.cli.main import main
from samzoo.tracking.formats import to_ctc
from samzoo.tracking.frames import RelabelledMasks
from samzoo.tracking.lineage import relabel_tracks
from samzoo.tracking.linking import link_overlap
from samzoo.tracking.merged import split_late_divisions
from samzoo.tracking.simulate import shuffle_labels, simulate_movie
from samzoo.tracking.track import track, track_on_disk
from tracking_helpers import late_division_movie

# the module, not the function samzoo.tracking.track that shadows it in the package
track_module = importlib.import_module("samzoo.tracking.track")


class FrameOnly:
    """An array-like that serves single frames (or crops of one frame) and refuses whole-movie reads."""

    def __init__(self, array):
        self.array = array
        self.shape, self.ndim, self.dtype = tuple(array.shape), len(array.shape), array.dtype
        self.reads = 0

    def __len__(self):
        return self.shape[0]

    @staticmethod
    def _check(key):
        first = key[0] if isinstance(key, tuple) else key
        if not isinstance(first, (int, np.integer)):
            raise AssertionError(f"a read of more than one frame: {key!r}")

    def __getitem__(self, key):
        self._check(key)
        self.reads += 1
        return np.asarray(self.array[key])

    def __setitem__(self, key, value):
        self._check(key)
        self.array[key] = value

    def __array__(self, *args, **kwargs):
        raise AssertionError("the whole movie was converted to an array")


@pytest.fixture(scope="module")
def movie():
    return simulate_movie(n_frames=8, shape=(96, 96), n_cells=5, seed=3)


def _same_ctc(a, b):
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir()) and "res_track.txt" in names
    for name in names:
        if name.endswith(".tif"):
            assert np.array_equal(tifffile.imread(a / name), tifffile.imread(b / name)), name
        else:  # res_track.txt, napari_tracks.csv, napari_graph.json
            assert (a / name).read_text() == (b / name).read_text(), name


def _save_zarr(path, array):
    store = zarr.create_array(str(path), shape=array.shape, chunks=(1, *array.shape[1:]), dtype=array.dtype)
    store[:] = array
    return path


@pytest.mark.parametrize("source", ["masks", "classical"])
def test_cli_zarr_frame_by_frame_equals_tiff_in_memory(movie, source, tmp_path, monkeypatch):
    masks = shuffle_labels(movie.masks, seed=1).astype(np.uint16)
    tifffile.imwrite(tmp_path / "movie.tif", movie.images)
    tifffile.imwrite(tmp_path / "masks.tif", masks)
    _save_zarr(tmp_path / "movie.zarr", movie.images)
    _save_zarr(tmp_path / "masks.zarr", masks)
    on_disk = []
    monkeypatch.setattr(track_module, "track_on_disk",
                        lambda *a, **k: on_disk.append(1) or track_on_disk(*a, **k))

    def run(movie_name, out, *extra):
        argv = ["track", str(tmp_path / movie_name), "--axes", "tyx", "-o", str(tmp_path / out), "--linker",
                "overlap", "--format", "ctc,napari", *extra]
        if source == "masks":  # masks.tif with movie.tif, masks.zarr with movie.zarr
            argv += ["--masks", str(tmp_path / ("masks" + Path(movie_name).suffix))]
        else:
            argv += ["--segmenter", "classical"]
        assert main(argv) == 0

    run("movie.tif", "tiff")
    assert not on_disk
    run("movie.zarr", "zarr", "--max-memory", "0")
    assert on_disk == [1]  # the Zarr movie took the frame-by-frame path
    _same_ctc(tmp_path / "tiff", tmp_path / "zarr")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # the working folder is gone
    run("movie.zarr", "zarr_in_memory")  # a small Zarr movie stays in memory (default --max-memory)
    assert on_disk == [1]
    _same_ctc(tmp_path / "tiff", tmp_path / "zarr_in_memory")


def test_segment_link_and_write_never_read_the_whole_movie(movie, tmp_path, monkeypatch):
    stores = []
    original = track_module._frames_to_zarr

    def guarded(*a, **k):  # the label store track_on_disk makes, guarded like the inputs
        stores.append(FrameOnly(original(*a, **k)))
        return stores[-1]

    monkeypatch.setattr(track_module, "_frames_to_zarr", guarded)
    images = FrameOnly(movie.images)
    result = track(images, workdir=tmp_path / "work", segmenter="classical")
    assert isinstance(result.masks, RelabelledMasks) and result.linker == "overlap"
    to_ctc(result.graph, result.masks, tmp_path / "disk")
    assert images.reads == len(movie.images)  # each frame read once, by the segmentation
    assert stores and stores[0].reads > 0
    expected = track(movie.images, segmenter="classical", linker="overlap")
    to_ctc(expected.graph, expected.masks, tmp_path / "memory")
    _same_ctc(tmp_path / "memory", tmp_path / "disk")
    np.testing.assert_array_equal(result.tracks, expected.tracks)


def test_given_masks_are_cut_in_a_copy_frame_by_frame(tmp_path):
    merged, _, _ = late_division_movie()
    given = FrameOnly(merged.copy())
    result = track_on_disk(None, given, tmp_path / "work", split_merged=True)
    expected = track(masks=merged, split_merged=True, linker="overlap")
    np.testing.assert_array_equal(np.asarray(result.masks), expected.masks)
    np.testing.assert_array_equal(result.tracks, expected.tracks)
    assert len(result.tracks) == 3  # the late division was moved back (one mother, two daughters)
    np.testing.assert_array_equal(given.array, merged)  # the given masks are left as they were
    graph = link_overlap(given)
    with pytest.raises(ValueError, match="in_place"):
        split_late_divisions(graph, given)
    _, relabelled, _ = relabel_tracks(graph, given)
    assert isinstance(relabelled, RelabelledMasks) and relabelled[0].dtype == np.uint32


def test_cli_frame_by_frame_refuses_propagate_and_trackastra(movie, tmp_path, capsys):
    _save_zarr(tmp_path / "movie.zarr", movie.images)
    prompts = tmp_path / "p.csv"
    prompts.write_text("object_id,y,x,positive\n1,40,40,1\n")
    base = ["track", str(tmp_path / "movie.zarr"), "--axes", "tyx", "-o", str(tmp_path / "o"), "--max-memory", "0"]
    assert main(base + ["--mode", "propagate", "--prompts", str(prompts)]) == 1
    assert "--mode propagate needs the whole movie in memory" in capsys.readouterr().err
    assert main(base + ["--linker", "trackastra", "--segmenter", "classical"]) == 1
    assert "--linker trackastra needs the whole movie in memory" in capsys.readouterr().err
    assert main(base + ["--gamma", "auto", "--segmenter", "classical"]) == 1
    assert "--gamma auto segments the movie twice in memory" in capsys.readouterr().err
    assert main(base + ["--max-memory", "-1"]) == 1
    assert "--max-memory must be 0 or more" in capsys.readouterr().err


def test_repairs_change_lazy_masks_only_in_place(tmp_path):
    from samzoo.tracking.temporal import split_by_neighbours

    masks = np.zeros((3, 16, 16), np.uint16)
    masks[:, 4:10, 4:10] = 1
    store = zarr.open(str(tmp_path / "m.zarr"), mode="w", shape=masks.shape, dtype=masks.dtype, chunks=(1, 16, 16))
    store[:] = masks
    with pytest.raises(ValueError, match="in_place=True"):
        split_by_neighbours(store)
    with pytest.raises(ValueError, match="in_place=True"):
        split_late_divisions(link_overlap(masks), store)
    assert split_by_neighbours(masks) is not masks  # numpy: a copy unless asked otherwise
