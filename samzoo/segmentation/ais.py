"""Automatic instance segmentation (AIS): AIS decoder on the tiled embeddings, then watershed.

Each tile's decoder maps are kept only in its inner region (the halo gives the decoder
context but is another tile's responsibility), the inner regions are stitched into maps of
the whole image, and the watershed runs once over the stitched maps. An object crossing a
tile border is therefore one object: there are no seams to merge.

The decoder type comes from the model: samzoo's own (:mod:`samzoo.models.ais_decoder`, its
watershed :func:`samzoo.segmentation.watershed.watershed_from_maps`) or micro-sam's UNETR
(:mod:`samzoo.models.unetr`, post-processed as micro-sam does by
:func:`samzoo.segmentation.unetr_watershed.unetr_watershed`). Both give maps in one convention.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import torch
from tqdm import tqdm

from samzoo.errors import InputError
from samzoo.models.ais_decoder import AISDecoder, inference_copy
from samzoo.models.copies import cached_copy
from samzoo.models.model import SamzooModel
from samzoo.models.unetr import UNETRDecoder, postprocess_maps
from samzoo.segmentation.embeddings import ImageEmbeddings, cache_dtype, compute_embeddings
from samzoo.segmentation.sam_input import resized_shape
from samzoo.segmentation.unetr_watershed import unetr_watershed
from samzoo.segmentation.views import VIEWS, check_views, maps_from_view, view_image
from samzoo.segmentation.watershed import (BOUNDARY_THRESHOLD, CENTER_THRESHOLD, FOREGROUND_THRESHOLD, MIN_SIZE,
                                           watershed_from_maps)


def _inference_decoder(decoder: AISDecoder) -> AISDecoder:
    """``decoder`` with BatchNorm folded in and channels-last (:func:`inference_copy`), made once per decoder.

    A decoder in training mode is used as it is (its BatchNorm uses batch statistics).
    """
    return decoder if decoder.training else cached_copy(decoder, "inference", inference_copy)


@torch.inference_mode()
def ais_maps(model: SamzooModel, embeddings: ImageEmbeddings, *, progress: bool = False,
             keep_foreground: bool = False) -> np.ndarray:
    """The AIS decoder's maps for a whole image.

    ``keep_foreground``: also keep each tile's foreground with the embeddings, as
    :func:`tile_foreground` would compute it (samzoo's decoder only), for the prompt masks decoded
    on them next.

    Returns
    -------
    ndarray (3, H, W) float32
        Foreground, centre distance and boundary distance (see :mod:`samzoo.models.ais_decoder`;
        a UNETR decoder's boundary distance is turned round to this convention, 1 deep inside).
    """
    if model.ais_decoder is None:
        raise InputError(f"model {model.name!r} has no AIS decoder; use prompts or AMG instead")
    device = next(model.parameters()).device
    if isinstance(model.ais_decoder, UNETRDecoder):
        return _unetr_maps(model, embeddings, device, progress)
    decoder = _inference_decoder(model.ais_decoder)
    maps = np.empty((3,) + embeddings.shape, dtype=np.float32)  # the inner regions cover the image
    for tile in tqdm(embeddings.tiles, desc="AIS tiles", disable=not progress, leave=False):
        out = _tile_maps(model, decoder, embeddings, tile, device)
        maps[(slice(None),) + tile.inner_slice] = out[(slice(None),) + tile.inner_in_outer].cpu().numpy()
        if keep_foreground:
            embeddings.derived[_foreground_key(model, tile)] = out[0].cpu().numpy()
    return maps


def multi_view_maps(model: SamzooModel, image: np.ndarray, views: int, *,
                    embeddings: ImageEmbeddings | None = None, tile_size: int | None = None,
                    halo: int | None = None, progress: bool = False) -> np.ndarray:
    """The AIS decoder's maps of ``image`` combined over ``views`` turned or mirrored views.

    Each view's maps are turned back onto the image; the foreground is the largest of the views'
    (an object that one view sees is kept) and the two distance maps are their mean (seeds and
    borders where the views agree). Measured against the mean of all three maps: the same AIS mSA
    on single images, more objects found in movies (see :mod:`samzoo.segmentation.views`).

    Parameters
    ----------
    model : SamzooModel
    image : ndarray (H, W) or (H, W, C)
    views : {1, 2, 4, 8}
        How many views (:data:`samzoo.segmentation.views.VIEWS`); 1: the image alone, as
        :func:`ais_maps`. Each further view costs one more encoder and decoder pass.
    embeddings : ImageEmbeddings, optional
        Of ``image`` itself (the first view), e.g. cached; the other views are embedded here
        with the same ``tile_size`` and ``halo`` and not cached (only AIS reads them).
    tile_size, halo, progress
        See :func:`samzoo.segmentation.embeddings.compute_embeddings`.

    Returns
    -------
    ndarray (3, H, W) float32
        As :func:`ais_maps`.
    """
    names = VIEWS[check_views(views)]
    if embeddings is None:
        embeddings = compute_embeddings(model, image, tile_size=tile_size, halo=halo, progress=progress)

    def turned(name: str) -> np.ndarray:
        seen = compute_embeddings(model, view_image(np.asarray(image), name), tile_size=tile_size, halo=halo,
                                  cache=False, progress=progress)
        return maps_from_view(ais_maps(model, seen, progress=progress), name)

    return _combine_views(ais_maps(model, embeddings, progress=progress), map(turned, names[1:]))


def _combine_views(maps: np.ndarray, others: Iterable[np.ndarray]) -> np.ndarray:
    """``maps`` (3, H, W) of the first view combined in place with the other views' (on the same
    grid): the largest foreground, the mean distances."""
    count = 1
    for other in others:
        np.maximum(maps[0], other[0], out=maps[0])
        maps[1:] += other[1:]
        count += 1
    if count > 1:
        maps[1:] /= count
    return maps


def _tile_maps(model: SamzooModel, decoder: AISDecoder, embeddings: ImageEmbeddings, tile, device: torch.device
               ) -> torch.Tensor:
    """samzoo's AIS decoder on one tile: its maps ``(3, h, w)`` over the tile's outer region."""
    return _decoder_maps(model, decoder, embeddings.features[tile.index], embeddings.tile_input(tile), device)


def _decoder_maps(model: SamzooModel, decoder: AISDecoder, features: np.ndarray, tile_input: torch.Tensor,
                  device: torch.device) -> torch.Tensor:
    """samzoo's AIS decoder on one tile's embedding ``(256, g, g)`` and its model input ``(1, 3, h, w)``
    (0..255, before padding): maps ``(3, h, w)``."""
    channels_last = torch.channels_last
    x = model.preprocess(tile_input.to(device)).contiguous(memory_format=channels_last)
    emb = torch.from_numpy(features[None]).to(device).contiguous(memory_format=channels_last)
    h, w = tile_input.shape[-2:]
    return decoder(emb, x)[0][:, :h, :w]


def _foreground_key(model: SamzooModel, tile) -> tuple:
    return "foreground", model.weights_hash or id(model), tile.index


@torch.inference_mode()
def tile_instances(model: SamzooModel, embeddings: ImageEmbeddings, tile, views: int = 1) -> np.ndarray:
    """samzoo's AIS instances ``(h, w)`` int32 over one tile's outer region, 0 = background.

    The watershed of that tile's maps alone (default thresholds), so that a prompt needs one
    tile's decoder pass, not the whole image's. With ``views`` > 1 the tile's maps are combined
    over that many views as :func:`multi_view_maps` combines an image's (each further view is one
    more encoder pass over the tile). Kept in ``embeddings.derived`` per number of views, with the
    tile's own foreground (:func:`tile_foreground`, always one view).
    """
    views = check_views(views)
    key = ("instances", views) + _foreground_key(model, tile)
    if key not in embeddings.derived:
        maps = _one_tile_maps(model, embeddings, tile)
        embeddings.derived.setdefault(_foreground_key(model, tile), maps[0].copy())
        turned = (_turned_tile_maps(model, embeddings, tile, name) for name in VIEWS[views][1:])
        embeddings.derived[key] = watershed_from_maps(_combine_views(maps, turned))
    return embeddings.derived[key]


@torch.inference_mode()
def _turned_tile_maps(model: SamzooModel, embeddings: ImageEmbeddings, tile, name: str) -> np.ndarray:
    """samzoo's AIS maps ``(3, h, w)`` of one tile seen in view ``name``, turned back onto the tile."""
    device = next(model.parameters()).device
    seen = view_image(embeddings.tile_input(tile)[0].permute(1, 2, 0).numpy(), name)  # (h', w', 3)
    seen = torch.from_numpy(seen).permute(2, 0, 1)[None]
    # embedded as compute_embeddings embeds a tile, rounded as its results are
    features = model.sam.image_encoder(model.preprocess(seen.to(device)))[0].cpu().numpy()
    features = features.astype(cache_dtype(model)).astype(np.float32)
    maps = _decoder_maps(model, _inference_decoder(model.ais_decoder), features, seen, device)
    return maps_from_view(maps.cpu().numpy(), name)


@torch.inference_mode()
def tile_foreground(model: SamzooModel, embeddings: ImageEmbeddings, tile) -> np.ndarray:
    """The foreground probability ``(h, w)`` of samzoo's AIS decoder over one tile's outer region.

    Kept in ``embeddings.derived`` (per model and tile): prompts decoded later in the same tile
    reuse it.
    """
    key = _foreground_key(model, tile)
    if key not in embeddings.derived:
        embeddings.derived[key] = _one_tile_maps(model, embeddings, tile)[0]
    return embeddings.derived[key]


def _one_tile_maps(model: SamzooModel, embeddings: ImageEmbeddings, tile) -> np.ndarray:
    """samzoo's AIS decoder on one tile alone (for a prompt in it): maps ``(3, h, w)`` over its outer region."""
    return _tile_maps(model, _inference_decoder(model.ais_decoder), embeddings, tile,
                      next(model.parameters()).device).cpu().numpy()


def _unetr_maps(model: SamzooModel, embeddings: ImageEmbeddings, device: torch.device, progress: bool) -> np.ndarray:
    """micro-sam's UNETR decoder on every tile, as ``InstanceSegmentationWithDecoder.initialize`` runs it.

    Per tile: the decoder on the embedding, then torch-em's ``postprocess_masks`` (to the model
    input, crop the resized tile, back to the tile's size); the boundary channel is turned into
    samzoo's convention (1 deep inside).
    """
    maps = np.empty((3,) + embeddings.shape, dtype=np.float32)
    size = model.input_size
    for tile in tqdm(embeddings.tiles, desc="AIS tiles", disable=not progress, leave=False):
        h, w = tile.outer[2] - tile.outer[0], tile.outer[3] - tile.outer[1]
        resized = resized_shape(h, w, size) if model.config.sam_input else (h, w)
        emb = torch.from_numpy(embeddings.features[tile.index][None]).to(device)
        out = postprocess_maps(model.ais_decoder(emb), size, resized, (h, w))[0].cpu().numpy()
        out[2] = 1 - out[2]
        maps[(slice(None),) + tile.inner_slice] = out[(slice(None),) + tile.inner_in_outer]
    return maps


def segment_ais(model: SamzooModel, image: np.ndarray, *, embeddings: ImageEmbeddings | None = None,
                tile_size: int | None = None, halo: int | None = None,
                foreground_threshold: float | None = None, center_threshold: float | None = None,
                boundary_threshold: float | None = None, min_size: int | None = None,
                views: int = 1, progress: bool = False) -> np.ndarray:
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
        Watershed parameters; ``None``: the defaults of the model's decoder. samzoo's decoder:
        :func:`samzoo.segmentation.watershed.watershed_from_maps` (0.7, 0.4, 0.6, 25). micro-sam's
        UNETR decoder: micro-sam's own post-processing and defaults,
        :func:`samzoo.segmentation.unetr_watershed.unetr_watershed` (0.5, 0.5, 0.5, 0; the
        boundary threshold is on micro-sam's inverted boundary distance).

    Returns
    -------
    ndarray (H, W) int32
        Instance labels, 0 = background.
    """
    maps = multi_view_maps(model, image, views, embeddings=embeddings, tile_size=tile_size, halo=halo,
                           progress=progress)
    # embeddings computed inside multi_view_maps (3 float32 copies of the image with the model
    # input) are freed on its return, before the watershed, whose own peak they would add to
    given = {"foreground_threshold": foreground_threshold, "center_threshold": center_threshold,
             "boundary_threshold": boundary_threshold, "min_size": min_size}
    given = {k: v for k, v in given.items() if v is not None}
    if isinstance(model.ais_decoder, UNETRDecoder):  # the decoder type decides the post-processing
        names = {"foreground_threshold": "foreground_threshold", "center_threshold": "center_distance_threshold",
                 "boundary_threshold": "boundary_distance_threshold", "min_size": "min_size"}
        return unetr_watershed(maps, **{names[k]: v for k, v in given.items()})
    defaults = {"foreground_threshold": FOREGROUND_THRESHOLD, "center_threshold": CENTER_THRESHOLD,
                "boundary_threshold": BOUNDARY_THRESHOLD, "min_size": MIN_SIZE}
    return watershed_from_maps(maps, **{**defaults, **given})
