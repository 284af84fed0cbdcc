"""trackastra with a model trained by trackastra's own training code, on real CTC frames.

``data/trackastra_sim_small`` is a small trackastra model (d_model 48, 2 + 2 layers) trained on
Fluo-N2DH-SIM+ 01 and its TRA ground truth by ``scripts/train_trackastra_small.py`` (seed 0;
see its ``train_config.yaml`` for the exact run):

    OMP_NUM_THREADS=1 python scripts/train_trackastra_small.py --out tests/tracking/data/trackastra_sim_small

Here it is served as ``trackastra_general_2d.zip`` by a loopback HTTP server set as samzoo's
mirror, fetched with pooch into the cache, and links frames of Fluo-N2DH-GOWT1 01, which it has
not seen, through ``samzoo track --linker trackastra``.
"""

from __future__ import annotations

import http.server
import importlib.util
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile

from samzoo.cli.main import main
from samzoo.tracking.formats import read_ctc
from samzoo.tracking.lineage import graph_from_tracks
from samzoo.tracking.simulate import shuffle_labels

REPO = Path(__file__).resolve().parents[2]
MODEL = Path(__file__).parent / "data" / "trackastra_sim_small"


def _ctc(shared_data: Path, dataset: str, n_frames: int):
    """The first frames of ``<dataset>/01``, their TRA masks and the ``L B E P`` rows within them."""
    folder = shared_data / "ctc" / dataset
    images = np.stack([tifffile.imread(p) for p in sorted((folder / "01").glob("t*.tif"))[:n_frames]])
    tra = sorted((folder / "01_GT" / "TRA").glob("man_track*.tif"))[:n_frames]
    masks = np.stack([tifffile.imread(p) for p in tra])
    rows = np.loadtxt(folder / "01_GT" / "TRA" / "man_track.txt", dtype=np.int64, ndmin=2)
    rows = rows[rows[:, 1] < n_frames]
    rows[:, 2] = np.minimum(rows[:, 2], n_frames - 1)
    return images, masks, rows


def _found_links(result_graph, result_masks, gt_masks, gt_tracks) -> tuple[int, int]:
    """How many ground-truth links between consecutive frames the result has, of how many."""
    gt_graph = graph_from_tracks(gt_masks, gt_tracks)
    nodes = {(d["t"], d["label"]): n for n, d in result_graph.nodes(data=True)}

    def result_node(t: int, label: int):
        values = result_masks[t][gt_masks[t] == label]
        return nodes.get((t, int(np.bincount(values).argmax())))

    links = [(gt_graph.nodes[u], gt_graph.nodes[v]) for u, v in gt_graph.edges
             if gt_graph.nodes[v]["t"] == gt_graph.nodes[u]["t"] + 1]
    found = sum(result_graph.has_edge(result_node(a["t"], a["label"]), result_node(b["t"], b["label"]))
                for a, b in links)
    return found, len(links)


@pytest.fixture
def mirror_server(tmp_path):
    """A loopback HTTP server of a folder holding the trained model as ``trackastra_general_2d.zip``."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    with zipfile.ZipFile(folder / "trackastra_general_2d.zip", "w") as zf:  # laid out like the upstream zip
        for name in ("model.pt", "config.yaml", "train_config.yaml"):
            zf.write(MODEL / name, f"general_2d/{name}")
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, format, *args):
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()
    server.server_close()


def test_the_stored_model_is_small_and_in_trackastras_format():
    import yaml
    from trackastra.model import Trackastra

    assert (MODEL / "model.pt").stat().st_size < 1_000_000
    config = yaml.safe_load((MODEL / "train_config.yaml").read_text())
    assert config["features"] == "wrfeat" and "Fluo-N2DH-SIM+" in config["train"]
    Trackastra.from_folder(MODEL, device="cpu")


def test_a_trained_model_links_held_out_frames_through_the_http_mirror(mirror_server, shared_data, tmp_path,
                                                                         monkeypatch, capsys):
    url, requests = mirror_server
    monkeypatch.setenv("SAMZOO_MODEL_MIRROR", url)
    images, gt_masks, gt_tracks = _ctc(shared_data, "Fluo-N2DH-GOWT1", 8)
    tifffile.imwrite(tmp_path / "movie.tif", images)
    tifffile.imwrite(tmp_path / "masks.tif", shuffle_labels(gt_masks, seed=1))  # no track identities given
    out = tmp_path / "out"
    assert main(["track", str(tmp_path / "movie.tif"), "--axes", "tyx", "--masks", str(tmp_path / "masks.tif"),
                 "-o", str(out), "--linker", "trackastra", "--trackastra-model", "general_2d", "--no-progress"]) == 0
    assert "linker: trackastra:general_2d" in capsys.readouterr().out
    assert "/trackastra_general_2d.zip" in requests  # fetched through the mirror, with pooch
    cached = Path(str(tmp_path / "samzoo-cache")) / "models" / "trackastra" / "general_2d"
    assert (cached / "model.pt").read_bytes() == (MODEL / "model.pt").read_bytes()
    graph, result, _ = read_ctc(out)
    found, total = _found_links(graph, result, gt_masks, gt_tracks)
    assert total > 100  # 7 frame pairs of ~23 nuclei
    assert found >= 0.95 * total, f"trackastra found {found} of {total} true links"


def test_link_trackastra_with_the_trained_model_finds_divisions(shared_data):
    """On SIM+ frames around two divisions (training data: a check that the model is trained)."""
    from samzoo.tracking import link_trackastra

    images, gt_masks, gt_tracks = _ctc(shared_data, "Fluo-N2DH-SIM+", 12)
    assert (gt_tracks[:, 3] > 0).sum() >= 2, "the frames must hold divisions"
    masks = shuffle_labels(gt_masks, seed=3)
    graph = link_trackastra(images, masks, model=MODEL)
    found, total = _found_links(graph, masks, gt_masks, gt_tracks)
    assert found >= 0.95 * total, f"trackastra found {found} of {total} true links"
    assert sum(graph.out_degree(n) == 2 for n in graph) >= 1


def test_the_training_script_trains_with_trackastras_own_code(shared_data, tmp_path):
    """A few steps on six frames: the script's folder loads in trackastra and links."""
    from trackastra.model import Trackastra

    from samzoo.tracking import link_trackastra

    spec = importlib.util.spec_from_file_location("train_trackastra_small", REPO / "scripts" / "train_trackastra_small.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "tiny"
    args = script.parse_args(["--train", str(shared_data / "ctc" / "Fluo-N2DH-SIM+" / "01"), "--out", str(out),
                              "--frames", "0", "0.1", "--window", "4", "--steps", "4", "--batch-size", "2",
                              "--d-model", "16", "--layers", "1", "--log-every", "2"])
    assert script.train(args) == out
    assert {p.name for p in out.iterdir()} >= {"model.pt", "config.yaml", "train_config.yaml"}
    Trackastra.from_folder(out, device="cpu")
    images, gt_masks, _ = _ctc(shared_data, "Fluo-N2DH-SIM+", 5)
    graph = link_trackastra(images, gt_masks, model=out)
    assert graph.number_of_nodes() == sum(len(np.unique(m)) - 1 for m in gt_masks)
