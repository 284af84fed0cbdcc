import networkx as nx
import numpy as np
import pytest

from samzoo.errors import InputError
from samzoo.tracking.lineage import (add_edges, check_masks, detections, divisions, graph_from_tracks, lineage_trees,
                                     node_index, relabel_tracks, track_table, tracklets)


def test_detections_have_the_documented_attributes(division_movie):
    masks, _ = division_movie
    graph = detections(masks)
    assert graph.number_of_nodes() == 1 + 1 + 3 + 3 and graph.number_of_edges() == 0
    first = graph.nodes[node_index(graph)[(0, 1)]]
    assert first["t"] == 0 and first["label"] == 1
    assert np.allclose(first["centroid"], (20, 20)) and first["area"] == int((masks[0] == 1).sum())
    assert len(first["bbox"]) == 4


def test_graph_from_tracks_links_frames_and_divisions(division_movie):
    masks, tracks = division_movie
    graph = graph_from_tracks(masks, tracks)
    idx = node_index(graph)
    assert graph.has_edge(idx[(0, 1)], idx[(1, 1)])
    assert set(graph.successors(idx[(1, 1)])) == {idx[(2, 2)], idx[(2, 3)]}
    assert graph.in_degree(idx[(2, 4)]) == 0
    assert divisions(graph) == [(idx[(1, 1)], sorted([idx[(2, 2)], idx[(2, 3)]]))]
    trees = lineage_trees(graph)
    assert [t.number_of_nodes() for t in trees] == [6, 2]


def test_tracklets_and_track_table_follow_ctc(division_movie):
    masks, tracks = division_movie
    graph = graph_from_tracks(masks, tracks)
    chains = tracklets(graph)
    assert [len(c) for c in chains] == [2, 2, 2, 2]
    table = track_table(graph, chains)
    # labels are renumbered 1..N in (first frame, first label) order; parents follow
    assert table.tolist() == [[1, 0, 1, 0], [2, 2, 3, 1], [3, 2, 3, 1], [4, 2, 3, 0]]


def test_relabel_tracks_gives_one_label_per_track(division_movie):
    masks, tracks = division_movie
    graph = graph_from_tracks(masks, tracks)
    scrambled = masks.copy()
    scrambled[1][masks[1] == 1] = 9  # same object, another label in frame 1
    graph.nodes[node_index(graph)[(1, 1)]]["label"] = 9
    new_graph, relabelled, table = relabel_tracks(graph, scrambled)
    assert np.array_equal(relabelled, masks)
    assert table.tolist() == tracks.tolist()
    for _, d in new_graph.nodes(data=True):
        assert d["label"] == d["track_id"] == relabelled[d["t"]][tuple(int(round(c)) for c in d["centroid"])]


def test_relabel_drops_objects_missing_from_the_graph(division_movie):
    masks, tracks = division_movie
    graph = graph_from_tracks(masks, tracks)
    graph.remove_nodes_from([n for n, d in graph.nodes(data=True) if d["label"] == 4])
    _, relabelled, table = relabel_tracks(graph, masks)
    assert len(table) == 3 and not relabelled[2][50, 50]


def test_merge_has_no_parent_in_ctc():
    graph = nx.DiGraph()
    for n, (t, label) in enumerate([(0, 1), (0, 2), (1, 1)]):
        graph.add_node(n, t=t, label=label, centroid=(0.0, 0.0), area=1, bbox=(0, 0, 1, 1))
    graph.add_edges_from([(0, 2), (1, 2)])
    assert track_table(graph)[:, 3].tolist() == [0, 0, 0]


def test_bad_inputs_raise_input_error(division_movie):
    masks, tracks = division_movie
    with pytest.raises(InputError, match="shape"):
        check_masks(masks[0])
    with pytest.raises(InputError, match="integers"):
        check_masks(masks.astype(float))
    with pytest.raises(InputError, match="parent 7"):
        graph_from_tracks(masks, np.r_[tracks, [[5, 0, 0, 7]]])
    graph = detections(masks)
    idx = node_index(graph)
    with pytest.raises(InputError, match="frame"):
        add_edges(graph, [(idx[(1, 1)], idx[(0, 1)])])
