import numpy as np
import pytest

from samzoo.errors import InputError
from samzoo.tracking.lineage import divisions, graph_from_tracks, node_index
from samzoo.tracking.linking import assign, link_overlap
from samzoo.tracking.metrics import evaluate_tracking
from samzoo.tracking.simulate import shuffle_labels

from tracking_helpers import disk

INF = np.inf


def test_assign_links_the_cheapest_pairs():
    links, divs = assign(np.array([[0.1, 0.9], [0.8, 0.2]]), np.full((2, 2), INF), 0.75, 0.75)
    assert links == [(0, 0), (1, 1)] and divs == []


def test_assign_divides_when_cheaper_than_a_birth():
    link = np.array([[0.1, 0.2]])
    links, divs = assign(link, link + 0.25, 0.75, 0.75)
    assert sorted(links) == [(0, 0), (0, 1)] and divs == [(0, 1)]
    # a second child that costs more than an appearance is born instead
    links, divs = assign(link, link + 1.0, 0.75, 0.75)
    assert links == [(0, 0)] and divs == []


def test_assign_ends_and_starts_tracks():
    links, _ = assign(np.array([[INF], [0.3]]), np.full((2, 1), INF), 0.75, 0.75)
    assert links == [(1, 0)]
    links, _ = assign(np.array([[1.9]]), np.array([[INF]]), 0.75, 0.75)  # death + birth (1.5) is cheaper
    assert links == []
    assert assign(np.zeros((0, 3)), np.zeros((0, 3)), 1, 1) == ([], [])


def test_link_overlap_recovers_a_division(division_movie):
    masks, tracks = division_movie
    shuffled = shuffle_labels(masks, seed=3)
    graph = link_overlap(shuffled)
    scores = evaluate_tracking((graph, shuffled), (graph_from_tracks(masks, tracks), masks))
    assert scores["TRA"] == 1.0 and scores["div_F1"] == 1.0


def test_link_overlap_on_a_simulated_movie(small_movie, small_movie_gt):
    shuffled = shuffle_labels(small_movie.masks, seed=1)
    scores = evaluate_tracking((link_overlap(shuffled), shuffled), small_movie_gt)
    assert scores["TRA"] >= 0.98 and scores["div_F1"] >= 0.9, scores


def test_drift_correction_links_a_field_that_jumps():
    shape = (80, 200)
    masks = np.zeros((4,) + shape, dtype=np.int32)
    for t in range(4):  # two nuclei moving together 30 px per frame (2.5 diameters)
        masks[t][disk(shape, (25, 20 + 30 * t), 6)] = 1
        masks[t][disk(shape, (55, 30 + 30 * t), 6)] = 2
    corrected = link_overlap(masks)
    assert corrected.number_of_edges() == 6
    idx = node_index(corrected)
    assert all(corrected.has_edge(idx[(t, k)], idx[(t + 1, k)]) for t in range(3) for k in (1, 2))
    assert link_overlap(masks, correct_drift=False).number_of_edges() == 0


def test_divisions_with_daughters_clear_of_the_mother():
    shape = (80, 80)
    masks = np.zeros((2,) + shape, dtype=np.int32)
    masks[0][disk(shape, (40, 40), 8)] = 1
    masks[1][disk(shape, (40, 24), 6)] = 1  # daughters 16 px either side, no overlap with the mother
    masks[1][disk(shape, (40, 56), 6)] = 2
    assert len(divisions(link_overlap(masks))) == 1
    assert len(divisions(link_overlap(masks, rescue_divisions=False))) == 0


def test_link_overlap_rejects_bad_parameters(division_movie):
    with pytest.raises(InputError, match="max_distance"):
        link_overlap(division_movie[0], max_distance=0)


def test_one_missing_frame_is_bridged_and_exported_as_a_ctc_gap(tmp_path):
    from traccuracy.loaders import load_ctc_data

    from samzoo.tracking.formats import to_ctc

    shape = (60, 60)
    masks = np.zeros((5,) + shape, dtype=np.int32)
    for t in range(5):
        if t != 2:  # the segmentation missed the nucleus in frame 2
            masks[t][disk(shape, (30, 15 + 6 * t), 6)] = 1
    graph = link_overlap(masks)
    idx = node_index(graph)
    assert graph.has_edge(idx[(1, 1)], idx[(3, 1)]) and graph.number_of_edges() == 3
    assert link_overlap(masks, close_gaps=False).number_of_edges() == 2
    to_ctc(graph, masks, tmp_path)
    assert (tmp_path / "res_track.txt").read_text().splitlines() == ["1 0 1 0", "2 3 4 1"]
    load_ctc_data(str(tmp_path), run_checks=True)  # traccuracy accepts it as valid CTC


def test_a_merge_that_comes_apart_is_not_a_division():
    shape = (60, 80)
    masks = np.zeros((4,) + shape, dtype=np.int32)
    for t in (0, 2, 3):
        masks[t][disk(shape, (30, 30), 7)] = 1
        masks[t][disk(shape, (30, 45), 7)] = 2
    masks[1][disk(shape, (30, 30), 7) | disk(shape, (30, 45), 7)] = 1  # the segmentation merged them in frame 1
    graph = link_overlap(masks)
    assert divisions(graph) == []
    bridged = [(u, v) for u, v in graph.edges if graph.nodes[v]["t"] - graph.nodes[u]["t"] == 2]
    assert len(bridged) == 1
    u, v = bridged[0]
    assert np.linalg.norm(np.subtract(graph.nodes[u]["centroid"], graph.nodes[v]["centroid"])) < 2
    assert len(divisions(link_overlap(masks, close_gaps=False))) == 1  # what it looks like otherwise
