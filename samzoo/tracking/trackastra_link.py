"""Linking with trackastra (transformer association scores + its greedy/ILP solver).

trackastra's models are fetched by name through samzoo's mirror and cache (or given as a local
folder); see :func:`fetch_trackastra_model`. Offline without a mirror this raises
:class:`samzoo.errors.DownloadError`, and :func:`samzoo.tracking.track` falls back to the overlap
linker when ``linker="auto"``.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import networkx as nx
import numpy as np

from samzoo.errors import DownloadError, InputError
from samzoo.tracking.lineage import check_masks, detections, node_index
from samzoo.tracking.quiet import quiet

# trackastra's published models (trackastra/model/pretrained.py); their zips are not hashed upstream
TRACKASTRA_MODELS = {
    "general_2d": "https://github.com/weigertlab/trackastra-models/releases/download/v0.3.0/general_2d.zip",
    "ctc": "https://github.com/weigertlab/trackastra-models/releases/download/v0.3.0/ctc.zip",
}


def fetch_trackastra_model(name: str, *, mirror: str | None = None) -> Path:
    """A local folder holding trackastra model ``name``, fetched through samzoo's mirror and cache.

    A registry row ``trackastra_NAME`` (``samzoo/zoo/registry.tsv``), when there is one, is
    fetched with :func:`samzoo.zoo.fetch.fetch_model_file` (hash-checked). Otherwise the
    sources are, in order: the samzoo cache (``$SAMZOO_CACHE_DIR/models/trackastra/NAME``); the mirror
    (``mirror=`` or ``$SAMZOO_MODEL_MIRROR``: a folder or base URL holding ``trackastra_NAME.zip``);
    the upstream GitHub release. The zip is unpacked into the cache atomically.

    Raises
    ------
    InputError
        Unknown name.
    DownloadError
        Not cached and not reachable (e.g. offline without a mirror).
    """
    import pooch
    import requests

    from samzoo.io.write import atomic_path
    from samzoo.zoo.fetch import MIRROR_ENV, cache_dir

    from samzoo.errors import UnknownModelError
    from samzoo.zoo.fetch import fetch_model_file
    from samzoo.zoo.registry import get_model_spec

    try:  # a registry row (with a hash) takes precedence over the built-in, unhashed URLs
        spec = get_model_spec(f"trackastra_{name}")
    except UnknownModelError:
        spec = None
    if spec is None and name not in TRACKASTRA_MODELS:
        raise InputError(f"unknown trackastra model {name!r}; known: {', '.join(TRACKASTRA_MODELS)}, or a local folder")
    folder = cache_dir() / "trackastra" / name
    if (folder / "model.pt").is_file():
        return folder
    mirror = mirror if mirror is not None else os.environ.get(MIRROR_ENV) or None
    filename = f"trackastra_{name}.zip"
    url = spec.url if spec is not None else TRACKASTRA_MODELS[name]
    if spec is not None:
        archive = fetch_model_file(spec, mirror=mirror, progress=False)
    elif mirror and "://" not in mirror or (mirror or "").startswith("file://"):
        source = Path(mirror.removeprefix("file://")) / filename
        if not source.is_file():
            raise DownloadError(f"trackastra model {name!r}: {filename} is not in the mirror folder {source.parent}")
        archive = source
    else:
        url = f"{mirror.rstrip('/')}/{filename}" if mirror else url
        try:
            # upstream publishes no hashes for these zips, so none can be checked
            archive = Path(pooch.retrieve(url, known_hash=None, fname=filename, path=cache_dir(), progressbar=False))
        except (requests.exceptions.RequestException, OSError, ValueError) as err:
            raise DownloadError(
                f"trackastra model {name!r} is not cached and could not be fetched from {url} ({type(err).__name__}). "
                f"Offline, put {filename} in a folder and set {MIRROR_ENV} to it, or pass a local model folder; "
                "without a model, samzoo links with its overlap/distance linker (linker='overlap')") from None
    with atomic_path(folder, directory=True) as tmp, zipfile.ZipFile(archive) as zf:
        zf.extractall(tmp.parent / "unzipped")
        inner = next((p.parent for p in (tmp.parent / "unzipped").rglob("model.pt")), None)
        if inner is None:
            raise DownloadError(f"{archive} holds no model.pt; not a trackastra model")
        inner.rename(tmp)
    return folder


def link_trackastra(images: np.ndarray, masks: np.ndarray, *, model: str | Path = "general_2d",
                    mode: str = "greedy", mirror: str | None = None, device: str = "cpu") -> nx.DiGraph:
    """Link with trackastra: transformer association scores, then its greedy or ILP solver.

    Parameters
    ----------
    images : ndarray (T, [Z,] Y, X)
    masks : ndarray (T, [Z,] Y, X) int
    model : str or Path
        A trackastra model name (``general_2d``, ``ctc``; fetched by
        :func:`fetch_trackastra_model`) or a local model folder (``model.pt``, ``config.yaml``,
        ``train_config.yaml``).
    mode : {"greedy", "greedy_nodiv", "ilp"}
    mirror : str, optional
    device : str

    Returns
    -------
    networkx.DiGraph, the lineage graph of ``masks``.
    """
    from trackastra.model import Trackastra

    masks = check_masks(np.asarray(masks))  # trackastra takes the whole movie in memory
    images = np.asarray(images)
    if images.shape != masks.shape:
        raise InputError(f"images {images.shape} and masks {masks.shape} must have the same shape")
    path = Path(model)
    folder = path if path.is_dir() else fetch_trackastra_model(str(model), mirror=mirror)
    if not (folder / "model.pt").is_file():
        raise InputError(f"{folder} is not a trackastra model folder (no model.pt)")
    with quiet("trackastra"):  # progress bars and INFO logs per frame
        tracker = Trackastra.from_folder(folder, device=device)
        solution, _ = tracker.track(images, masks, mode=mode, progbar_class=_silent)
    graph = detections(masks)
    index = node_index(graph)
    for u, v in solution.edges:
        a, b = solution.nodes[u], solution.nodes[v]
        key_a, key_b = (int(a["time"]), int(a["label"])), (int(b["time"]), int(b["label"]))
        if key_a in index and key_b in index:
            graph.add_edge(index[key_a], index[key_b])
    return graph


def _silent(iterable=None, *args, **kwargs):
    """A stand-in for tqdm that shows nothing."""
    from tqdm import tqdm

    return tqdm(iterable, *args, **{**kwargs, "disable": True})
