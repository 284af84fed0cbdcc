import networkx as nx
import numpy as np
import pytest

from samzoo.errors import InputError
from samzoo.tracking.formats import read_ctc, read_geff, to_ctc, to_geff, to_napari, write_ctc
from samzoo.tracking.lineage import graph_from_tracks, node_index


def test_ctc_round_trip(division_movie, tmp_path):
    masks, tracks = division_movie
    graph = graph_from_tracks(masks, tracks)
    to_ctc(graph, masks, tmp_path / "res")
    names = sorted(p.name for p in (tmp_path / "res").iterdir())
    assert names == ["mask000.tif", "mask001.tif", "mask002.tif", "mask003.tif", "res_track.txt"]
    assert (tmp_path / "res" / "res_track.txt").read_text().splitlines() == ["1 0 1 0", "2 2 3 1", "3 2 3 1", "4 2 3 0"]
    back, back_masks, back_tracks = read_ctc(tmp_path / "res")
    assert np.array_equal(back_masks, masks) and np.array_equal(back_tracks, tracks)
    assert nx.is_isomorphic(back, graph)


def test_rewriting_a_shorter_result_removes_stale_frames(division_movie, tmp_path):
    masks, tracks = division_movie
    write_ctc(tmp_path, masks, tracks)
    write_ctc(tmp_path, masks[:2], tracks[:1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mask000.tif", "mask001.tif", "res_track.txt"]


def test_read_ctc_errors(division_movie, tmp_path):
    masks, tracks = division_movie
    with pytest.raises(InputError, match="not a folder"):
        read_ctc(tmp_path / "missing")
    write_ctc(tmp_path / "a", masks, tracks[:3])  # label 4 has no row
    with pytest.raises(InputError, match=r"labels \[4\]"):
        read_ctc(tmp_path / "a")
    (tmp_path / "b").mkdir()
    with pytest.raises(InputError, match="exactly one"):
        read_ctc(tmp_path / "b")


def test_napari_tracks(division_movie):
    masks, tracks = division_movie
    data, parents = to_napari(graph_from_tracks(masks, tracks), masks)
    assert data.shape == (8, 4)
    assert data[:, 0].tolist() == [1, 1, 2, 2, 3, 3, 4, 4]
    assert np.allclose(data[0, 1:], (0, 20, 20)) and np.allclose(data[-1, 1:], (3, 50, 52))
    assert parents == {2: [1], 3: [1]}


def test_geff_round_trip(division_movie, tmp_path):
    masks, tracks = division_movie
    graph = graph_from_tracks(masks, tracks)
    to_geff(graph, tmp_path / "tracks.geff", masks=masks)
    back = read_geff(tmp_path / "tracks.geff")
    assert back.number_of_nodes() == graph.number_of_nodes() and back.number_of_edges() == graph.number_of_edges()
    idx = node_index(graph)
    mother = back.nodes[idx[(1, 1)]]
    assert mother["t"] == 1 and mother["track_id"] == 1 and np.allclose(mother["centroid"], (20, 23))
    assert {back.nodes[c]["track_id"] for c in back.successors(idx[(1, 1)])} == {2, 3}


def test_exports_pass_traccuracys_ctc_checks(small_movie, tmp_path):
    from traccuracy.loaders import load_ctc_data

    from samzoo.tracking.linking import link_overlap

    graph = link_overlap(small_movie.masks)
    to_ctc(graph, small_movie.masks, tmp_path)
    loaded = load_ctc_data(str(tmp_path), run_checks=True)
    assert loaded.graph.number_of_nodes() == graph.number_of_nodes()


def test_ctc_files_are_numbered_like_the_input_frames(division_movie, tmp_path):
    import tifffile

    masks, tracks = division_movie
    write_ctc(tmp_path / "res", masks, tracks, first_frame=17)
    names = sorted(p.name for p in (tmp_path / "res").iterdir())
    assert names == ["mask017.tif", "mask018.tif", "mask019.tif", "mask020.tif", "res_track.txt"]
    assert (tmp_path / "res" / "res_track.txt").read_text().splitlines()[1] == "2 19 20 1"
    with tifffile.TiffFile(tmp_path / "res" / "mask018.tif") as tif:  # what the CTC tools read
        page = tif.pages[0]
        assert page.dtype == np.uint16 and page.shape == masks.shape[1:] and page.compression == 5  # LZW
    back, back_masks, back_tracks = read_ctc(tmp_path / "res")  # frames counted from the first file
    assert np.array_equal(back_masks, masks) and np.array_equal(back_tracks, tracks)
    # numbered otherwise now: the earlier files go
    write_ctc(tmp_path / "res", masks, tracks, first_frame=998)
    assert sorted(p.name for p in (tmp_path / "res").glob("mask*")) == [
        "mask0998.tif", "mask0999.tif", "mask1000.tif", "mask1001.tif"]


def test_read_ctc_needs_consecutive_frames(division_movie, tmp_path):
    masks, tracks = division_movie
    write_ctc(tmp_path, masks, tracks)
    (tmp_path / "mask002.tif").unlink()
    with pytest.raises(InputError, match="not numbered consecutively"):
        read_ctc(tmp_path)
