"""Automatic instance segmentation (AIS): AIS decoder on the tiled embeddings, then watershed.

Each tile's decoder maps are kept only in its inner region (the halo gives the decoder
context but is another tile's responsibility), the inner regions are stitched into maps of
the whole image, and the watershed runs once over the stitched maps. An object crossing a
tile border is therefore one object: there are no seams to merge.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from samzoo.errors import InputError
from samzoo.models.ais_decoder import AISDecoder, inference_copy
from samzoo.models.copies import cached_copy
from samzoo.models.model import SamzooModel
from samzoo.segmentation.embeddings import ImageEmbeddings, compute_embeddings
from samzoo.segmentation.watershed import (BOUNDARY_THRESHOLD, CENTER_THRESHOLD, FOREGROUND_THRESHOLD, MIN_SIZE,
                                           watershed_from_maps)


def _inference_decoder(decoder: AISDecoder) -> AISDecoder:
    """``decoder`` with BatchNorm folded in and channels-last (:func:`inference_copy`), made once per decoder.

    A decoder in training mode is used as it is (its BatchNorm uses batch statistics).
    """
    return decoder if decoder.training else cached_copy(decoder, "inference", inference_copy)


@torch.inference_mode()
def ais_maps(model: SamzooModel, embeddings: ImageEmbeddings, *, progress: bool = False) -> np.ndarray:
    """The AIS decoder's maps for a whole image.

    Returns
    -------
    ndarray (3, H, W) float32
        Foreground, centre distance and boundary distance (see :mod:`samzoo.models.ais_decoder`).
    """
    if model.ais_decoder is None:
        raise InputError(f"model {model.name!r} has no AIS decoder; use prompts or AMG instead")
    device = next(model.parameters()).device
    decoder = _inference_decoder(model.ais_decoder)
    channels_last = torch.channels_last
    maps = np.empty((3,) + embeddings.shape, dtype=np.float32)  # the inner regions cover the image
    for tile in tqdm(embeddings.tiles, desc="AIS tiles", disable=not progress, leave=False):
        x = model.preprocess(embeddings.tile_input(tile).to(device)).contiguous(memory_format=channels_last)
        emb = torch.from_numpy(embeddings.features[tile.index][None]).to(device).contiguous(memory_format=channels_last)
        out = decoder(emb, x)[0]
        h, w = tile.outer[2] - tile.outer[0], tile.outer[3] - tile.outer[1]
        maps[(slice(None),) + tile.inner_slice] = out[:, :h, :w][(slice(None),) + tile.inner_in_outer].cpu().numpy()
    return maps


def segment_ais(model: SamzooModel, image: np.ndarray, *, embeddings: ImageEmbeddings | None = None,
                tile_size: int | None = None, halo: int | None = None,
                foreground_threshold: float = FOREGROUND_THRESHOLD, center_threshold: float = CENTER_THRESHOLD,
                boundary_threshold: float = BOUNDARY_THRESHOLD, min_size: int = MIN_SIZE,
                progress: bool = False) -> np.ndarray:
    """Segment every object of a 2D image automatically.

    Parameters
    ----------
    model : SamzooModel
        Must have an AIS decoder.
    image : ndarray (H, W) or (H, W, C)
    embeddings : ImageEmbeddings, optional
        Precomputed (e.g. cached) embeddings of ``image``; computed when not given.
    tile_size, halo : int, optional
        Tiling, see :func:`samzoo.segmentation.embeddings.compute_embeddings`.
    foreground_threshold, center_threshold, boundary_threshold, min_size
        Watershed parameters, see :func:`samzoo.segmentation.watershed.watershed_from_maps`.

    Returns
    -------
    ndarray (H, W) int32
        Instance labels, 0 = background.
    """
    if embeddings is None:
        embeddings = compute_embeddings(model, image, tile_size=tile_size, halo=halo, progress=progress)
    maps = ais_maps(model, embeddings, progress=progress)
    # when computed here, the embeddings and the model input (3 float32 copies of the image) are
    # no longer needed: free them before the watershed, whose own peak they would add to
    del embeddings
    return watershed_from_maps(maps, foreground_threshold=foreground_threshold, center_threshold=center_threshold,
                               boundary_threshold=boundary_threshold, min_size=min_size)
