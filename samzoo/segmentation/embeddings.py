"""Image embeddings: computed once per image (per tile for large images) and cached in Zarr.

The cache key is a hash of the model's weights hash, the image content and the tiling, so a
changed model, image or tiling never reads a stale entry. An entry is written to a temporary
folder and renamed into place when complete, so a half-written entry is never read, and two
processes computing the same entry at once both end with one good copy.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import zarr
from tqdm import tqdm

from samzoo.errors import InputError
from samzoo.io.normalize import to_model_input
from samzoo.models.model import SamzooModel
from samzoo.segmentation.sam_input import encoder_input, minmax_uint8
from samzoo.segmentation.tiling import Tile, tile_grid

CACHE_VERSION = "1"


@dataclass
class ImageEmbeddings:
    """The embeddings of one 2D image.

    Attributes
    ----------
    features : ndarray (n_tiles, 256, g, g) float32
        One embedding per tile; ``g = input_size // 16``.
    tiles : list of Tile
    image : ndarray (3, H, W) float32
        The model input (0..255) the embeddings were computed from; the AIS decoder needs it.
    input_size : int
    key : str
        The cache key (hex).
    derived : dict
        Maps computed from these embeddings on first use and kept with them, by a key naming
        what they are, the model and the tile (e.g. the AIS decoder's foreground of a tile, see
        :func:`samzoo.segmentation.ais.tile_foreground`). Never written to the embedding cache.
    """

    features: np.ndarray
    tiles: list[Tile]
    image: np.ndarray
    input_size: int
    key: str
    derived: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def shape(self) -> tuple[int, int]:
        """Image height and width."""
        return self.image.shape[1], self.image.shape[2]

    def tile_input(self, tile: Tile) -> torch.Tensor:
        """The model input of one tile, ``(1, 3, h, w)`` 0..255 (before padding)."""
        return torch.from_numpy(np.ascontiguousarray(self.image[(slice(None),) + tile.outer_slice]))[None]


def cache_dtype(model: SamzooModel) -> type:
    """The dtype ``model``'s embeddings are cached in; fresh ones are rounded to it too.

    samzoo's own models: float16, and rounding fresh results the same way makes cached and fresh
    runs identical. SAM-family models keep float32, as micro-sam does: rounded, AMG's masks near
    its thresholds (and the fragments they paint) differ from micro-sam's.
    """
    return np.float32 if model.config.sam_input else np.float16


def default_cache_dir() -> Path:
    """``$SAMZOO_CACHE_DIR/embeddings``, or the platform's user cache folder."""
    import platformdirs

    root = os.environ.get("SAMZOO_CACHE_DIR") or platformdirs.user_cache_dir("samzoo")
    return Path(root) / "embeddings"


def cache_key(model: SamzooModel, image: np.ndarray, tiles: list[Tile]) -> str:
    """Hash of everything the embeddings depend on."""
    h = hashlib.sha256()
    h.update(f"v{CACHE_VERSION}|{model.weights_hash}|{model.config.architecture}|{model.input_size}|".encode())
    if model.config.sam_input:  # resized tiles embed differently from padded ones, and are kept in float32
        h.update(b"sam_input|float32|")
    h.update(repr([t.outer for t in tiles]).encode())
    h.update(str(image.shape).encode())
    h.update(np.ascontiguousarray(image).tobytes())
    return h.hexdigest()


@torch.no_grad()
def compute_embeddings(model: SamzooModel, image: np.ndarray, *, tile_size: int | None = None,
                       halo: int | None = None, cache: bool | str | os.PathLike = True,
                       progress: bool = False) -> ImageEmbeddings:
    """Embed a 2D image, tile by tile, reusing a cached result when there is one.

    Parameters
    ----------
    model : SamzooModel
    image : ndarray (H, W) or (H, W, C)
        Any real dtype; normalised with :func:`samzoo.io.normalize.to_model_input`.
    tile_size : int, optional
        At most the model's input size (the default).
    halo : int, optional
        Tile overlap; default ``tile_size // 8``.
    cache : bool or path
        ``True``: the default cache folder; a path: that folder; ``False``: no caching.
        Caching is skipped for models without a ``weights_hash`` (e.g. being trained).
    progress : bool
        Show a progress bar over tiles.

    Returns
    -------
    ImageEmbeddings
    """
    image = np.asarray(image)
    if image.ndim not in (2, 3) or min(image.shape[:2]) == 0:
        raise InputError(f"expected a non-empty 2D image (y, x) or (y, x, c), got shape {image.shape}")
    tile_size = tile_size or model.input_size
    if tile_size > model.input_size:
        raise InputError(f"tile_size {tile_size} is larger than the model input {model.input_size}")
    halo = tile_size // 8 if halo is None else halo
    # SAM-family models get micro-sam's input handling (samzoo.segmentation.sam_input)
    model_input = minmax_uint8(image) if model.config.sam_input else to_model_input(image, grey=model.grey_input)
    tiles = tile_grid(model_input.shape[1:], tile_size, halo)
    # per-tile normalisation (sam_input) depends on the image itself, not only on its normalised whole
    key = cache_key(model, np.asarray(image) if model.config.sam_input and len(tiles) > 1 else model_input, tiles)
    folder = None
    if cache and model.weights_hash:
        folder = Path(default_cache_dir() if cache is True else cache)
        cached = _read(folder / f"{key}.zarr")
        if cached is not None:
            return ImageEmbeddings(cached, tiles, model_input, model.input_size, key)
    device = next(model.parameters()).device
    grid = model.input_size // 16
    features = np.empty((len(tiles), 256, grid, grid), dtype=np.float32)
    for tile in tqdm(tiles, desc="embedding tiles", disable=not progress, leave=False):
        x = torch.from_numpy(np.ascontiguousarray(model_input[(slice(None),) + tile.outer_slice]))[None]
        if model.config.sam_input:
            # micro-sam normalises each tile on its own (util._compute_tiled_features_2d)
            own = torch.from_numpy(minmax_uint8(image[tile.outer_slice]))[None] if len(tiles) > 1 else x
            x = encoder_input(model.sam, own.to(device))
        else:
            x = model.preprocess(x.to(device))
        features[tile.index] = model.sam.image_encoder(x)[0].cpu().numpy()
    dtype = cache_dtype(model)
    features = features.astype(dtype).astype(np.float32)
    if folder is not None:
        _write(folder / f"{key}.zarr", features, dtype)
    return ImageEmbeddings(features, tiles, model_input, model.input_size, key)


def _read(path: Path) -> np.ndarray | None:
    if not path.exists():
        return None
    try:
        array = zarr.open_array(str(path), mode="r")
        if not array.attrs.get("complete"):
            return None
        return np.asarray(array[:], dtype=np.float32)
    except Exception:  # an unreadable entry is a cache miss, never an error
        return None


def _write(path: Path, features: np.ndarray, dtype=np.float16) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        array = zarr.create_array(str(tmp / "data.zarr"), shape=features.shape, dtype=np.dtype(dtype).name,
                                  chunks=(1,) + features.shape[1:])
        array[:] = features.astype(dtype)
        array.attrs["complete"] = True
        try:
            os.replace(tmp / "data.zarr", path)
        except OSError:
            pass  # another process finished the same entry first: keep theirs
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
