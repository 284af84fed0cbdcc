"""The training and held-out data of samzoo's default model, from ``../shared/data``.

Sources (each a separate entry, so that results are reported per source and kind):

- the four original sets: CTC Fluo-N2DL-HeLa 02, trpL bacteria, CTC Fluo-N3DH-CHO 02 (z-slices),
  StarDist's 3D nuclei (z-slices); frames 16-19 (z-slices 25-30) held out, as before;
- CTC Fluo-N2DH-SIM+ 01 (every annotated frame; frames 52-64 held out);
- CTC Fluo-N2DH-GOWT1 01: **held out whole**, never trained on, so that one real source is
  unseen by construction (the leave-one-source-out number in the model card). Its SEG ground
  truth is partial: 26 of its 30 annotated frames hold 1-3 of the ~24 nuclei. Only frames whose
  SEG labels at least 90 % of the TRA markers are used (4 frames, 24 nuclei each), since every
  unannotated nucleus a model finds would count as a false positive;
- three sets that packages on PyPI ship (``scripts/registry_data.py``: mnfinder's nuclei, CTC
  PhC-C2DL-PSC phase contrast, laptrack's nuclei): **held out whole**, fetched on first use;
- DSB2018 by kind: ``fluo_small`` (256x256 fluorescence), ``fluo_large`` (520x696
  fluorescence), ``fluo_other`` (other fluorescence sizes), ``brightfield`` (grey, dark nuclei on
  a bright background), ``tissue_rgb`` (H&E-like colour tissue). Every 5th image of each kind
  (sorted by id) is held out.

Colour images go through :func:`samzoo.io.normalize.colour_to_grey` (in ``make_pair``), as at inference.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import tifffile

from registry_data import UNSEEN_SOURCES, unseen_planes

from samzoo.io.normalize import percentile_normalize
from samzoo.training.data import TrainingPair, make_pair

SHARED = Path(os.environ.get("SAMZOO_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "data"
MOVIES = {  # image file, label file, held-out frames (planes of the volume for nuclei3d)
    "hela": ("Fluo_Hela_02_img.tif", "Fluo_Hela_02_ERR_SEG.tif", range(16, 20)),
    "bacteria": ("trpL_150310-11_img.tif", "trpL_150310-11_mask.tif", range(16, 20)),
    "cho": ("Fluo-N3DH-CHO_02_img.tif", "Fluo-N3DH-CHO_02_ERR_SEG.tif", range(16, 20)),
    "nuclei3d": ("nuclei3d_img.tif", "nuclei3d_mask.tif", range(25, 31)),
}
CTC = {  # folder under data/ctc, held-out frames (None: the whole sequence is held out)
    "simplus": ("Fluo-N2DH-SIM+", range(52, 65)),
    "gowt1": ("Fluo-N2DH-GOWT1", None),
}
DSB_KINDS = ("fluo_small", "fluo_large", "fluo_other", "brightfield", "tissue_rgb")
# sampling weight of each source in training (sums to 1)
WEIGHTS = {"hela": 0.10, "bacteria": 0.08, "cho": 0.07, "nuclei3d": 0.03, "simplus": 0.10,
           "fluo_small": 0.18, "fluo_large": 0.12, "fluo_other": 0.10, "brightfield": 0.07, "tissue_rgb": 0.15}


def _movie_planes(name: str, split: str):
    img_file, lab_file, held = MOVIES[name]
    images, labels = tifffile.imread(SHARED / img_file), tifffile.imread(SHARED / lab_file)
    keep = [i for i in range(len(images)) if (i in held) == (split == "val")]
    images, labels = images[keep], labels[keep]
    # CHO is t,z,y,x: every z-slice of every frame is one 2D plane
    images, labels = images.reshape((-1,) + images.shape[-2:]), labels.reshape((-1,) + labels.shape[-2:])
    return [(images[i], labels[i], f"{name}[{i}]") for i in range(len(images)) if labels[i].any()]


def _ctc_planes(name: str, split: str):
    folder, held = CTC[name]
    root = SHARED / "ctc" / folder
    planes = []
    for seg in sorted((root / "01_GT" / "SEG").glob("man_seg*.tif")):
        frame = int(seg.stem[len("man_seg"):])
        in_val = held is None or frame in held
        if in_val == (split == "val"):
            labels = tifffile.imread(seg)
            markers = tifffile.imread(root / "01_GT" / "TRA" / f"man_track{seg.stem[len('man_seg'):]}.tif")
            if len(np.unique(labels)) < 0.9 * len(np.unique(markers)):
                continue  # partial annotation (see the module docstring)
            image = tifffile.imread(root / "01" / f"t{seg.stem[len('man_seg'):]}.tif")
            planes.append((image, labels, f"{name}[t{frame}]"))
    return planes


def dsb_kind(row: dict, image: np.ndarray) -> str:
    """The kind of a DSB2018 image: its colour, size and whether its background is bright."""
    if row["kind"] == "rgb":
        return "tissue_rgb"
    if np.median(percentile_normalize(image)) > 0.5:
        return "brightfield"
    size = (int(row["height"]), int(row["width"]))
    return {(256, 256): "fluo_small", (520, 696): "fluo_large"}.get(size, "fluo_other")


def _dsb_planes(split: str) -> dict[str, list]:
    root = SHARED / "dsb2018"
    rows = sorted(csv.DictReader(open(root / "index.csv")), key=lambda r: r["id"])
    out: dict[str, list] = {k: [] for k in DSB_KINDS}
    for row in rows:
        image = tifffile.imread(root / f"{row['id']}_img.tif")
        kind = dsb_kind(row, image)
        out[kind].append((image, tifffile.imread(root / f"{row['id']}_mask.tif"), f"dsb/{kind}/{row['id']}"))
    # every 5th image of each kind is held out
    return {k: [p for i, p in enumerate(v) if (i % 5 == 4) == (split == "val")] for k, v in out.items()}


def raw_planes(split: str, sources=None) -> dict[str, list[tuple[np.ndarray, np.ndarray, str]]]:
    """``{source: [(image, labels, name), ...]}`` of one split (``"train"`` or ``"val"``).

    Images are as stored (grey ``(H, W)`` or colour ``(H, W, 3)``); labels ``(H, W)``.
    """
    sources = list(sources or [*MOVIES, *CTC, *DSB_KINDS, *UNSEEN_SOURCES])
    out = {}
    for name in sources:
        if name in UNSEEN_SOURCES:
            if split == "val":  # held out whole: never a training plane
                out[name] = unseen_planes(name)
        elif name in MOVIES:
            out[name] = _movie_planes(name, split)
        elif name in CTC:
            if CTC[name][1] is None and split == "train":
                continue  # held out whole
            out[name] = _ctc_planes(name, split)
    if set(sources) & set(DSB_KINDS):
        dsb = _dsb_planes(split)
        out.update({k: dsb[k] for k in DSB_KINDS if k in sources})
    return out


def training_pairs(split: str = "train", sources=None) -> tuple[list[TrainingPair], list[float]]:
    """Pairs of a split and their sampling weights (each source's weight shared by its pairs)."""
    pairs, weights = [], []
    for name, planes in raw_planes(split, sources).items():
        new = [make_pair(*p) for p in planes]  # colour -> grey as at inference
        pairs += new
        weights += [WEIGHTS.get(name, 0.05) / max(len(new), 1)] * len(new)
    return pairs, weights
