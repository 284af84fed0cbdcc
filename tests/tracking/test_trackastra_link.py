import zipfile

import numpy as np
import pytest

from samzoo.errors import DownloadError, InputError
from samzoo.tracking.trackastra_link import fetch_trackastra_model, link_trackastra


def _check_lineage(graph, masks):
    assert graph.number_of_nodes() == sum(len(np.unique(f)) - 1 for f in masks)
    assert max((d for _, d in graph.in_degree()), default=0) <= 1
    assert max((d for _, d in graph.out_degree()), default=0) <= 2
    assert all(graph.nodes[v]["t"] == graph.nodes[u]["t"] + 1 for u, v in graph.edges)


def test_link_trackastra_from_a_local_folder(trackastra_folder, small_movie):
    graph = link_trackastra(small_movie.images[:6], small_movie.masks[:6], model=trackastra_folder)
    _check_lineage(graph, small_movie.masks[:6])


def test_trackastra_models_come_through_the_mirror(trackastra_folder, small_movie, tmp_path, monkeypatch):
    empty = tmp_path / "empty-mirror"
    empty.mkdir()
    with pytest.raises(DownloadError, match="trackastra_general_2d.zip"):
        fetch_trackastra_model("general_2d", mirror=str(empty))
    with pytest.raises(InputError, match="unknown trackastra model"):
        fetch_trackastra_model("no_such_model")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    with zipfile.ZipFile(mirror / "trackastra_general_2d.zip", "w") as zf:  # laid out like the upstream zip
        for f in trackastra_folder.iterdir():
            zf.write(f, f"general_2d/{f.name}")
    monkeypatch.setenv("SAMZOO_MODEL_MIRROR", str(mirror))
    folder = fetch_trackastra_model("general_2d")
    assert (folder / "model.pt").is_file() and (folder / "train_config.yaml").is_file()
    graph = link_trackastra(small_movie.images[:4], small_movie.masks[:4], model="general_2d")
    _check_lineage(graph, small_movie.masks[:4])
