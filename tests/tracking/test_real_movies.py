"""End to end on the real movies in ../shared/data (no track ground truth): the lineages must be
plausible. Slow: whole movies."""

import numpy as np
import pytest
import tifffile

from samzoo.cli.main import main
from samzoo.tracking.formats import read_ctc
from samzoo.tracking.lineage import divisions, lineage_trees

pytestmark = pytest.mark.slow


def _run(shared_data, tmp_path, image, masks, axes="tyx"):
    out = tmp_path / "out"
    assert main(["track", str(shared_data / image), "--axes", axes, "--masks", str(shared_data / masks),
                 "-o", str(out), "--format", "ctc,geff", "--lineage-plot", str(tmp_path / "lineage.png")]) == 0
    assert (tmp_path / "lineage.png").stat().st_size > 1000
    graph, result, tracks = read_ctc(out)
    given = tifffile.imread(shared_data / masks)
    assert np.array_equal(result > 0, given > 0)  # every given object is in the result
    return graph, result, tracks


def test_bacteria_form_two_complete_lineage_trees(shared_data, tmp_path):
    graph, result, _ = _run(shared_data, tmp_path, "trpL_150310-11_img.tif", "trpL_150310-11_mask.tif")
    # the colony grows from the two cells of frame 0 (it drifts ~100 px per frame at first)
    assert len(lineage_trees(graph)) == len(np.unique(result[0])) - 1 == 2
    assert all(graph.in_degree(n) == 1 for n in graph if graph.nodes[n]["t"] > 0)
    n_last = len(np.unique(result[-1])) - 1
    assert len(divisions(graph)) == n_last - 2  # every new cell came from a division


def test_hela_nuclei_divide_and_persist(shared_data, tmp_path):
    graph, result, tracks = _run(shared_data, tmp_path, "Fluo_Hela_02_img.tif", "Fluo_Hela_02_ERR_SEG.tif")
    last = len(result) - 1
    earlier = [n for n in graph if graph.nodes[n]["t"] < last]
    assert np.mean([graph.out_degree(n) > 0 for n in earlier]) >= 0.95
    growth = (len(np.unique(result[-1])) - 1) - (len(np.unique(result[0])) - 1)
    found = divisions(graph)
    # most of the growth (124 -> 195 nuclei) comes from mitoses, a few nuclei enter the field
    assert 0.5 * growth <= len(found) <= growth
    for mother, daughters in found:
        assert len(daughters) == 2
        gap = np.linalg.norm(np.subtract(graph.nodes[daughters[0]]["centroid"], graph.nodes[daughters[1]]["centroid"]))
        assert gap < 80  # sisters stay close


def test_cho_3d_movie_runs(shared_data, tmp_path):
    graph, result, tracks = _run(shared_data, tmp_path, "Fluo-N3DH-CHO_02_img.tif", "Fluo-N3DH-CHO_02_ERR_SEG.tif",
                                 axes="tzyx")
    assert result.ndim == 4 and len(graph.nodes[next(iter(graph))]["centroid"]) == 3
    assert np.mean([graph.out_degree(n) > 0 for n in graph if graph.nodes[n]["t"] < len(result) - 1]) >= 0.95
