"""The ``nn.Module``\\ s that samzoo's bioimage.io packages describe.

A bioimage.io ``pytorch_state_dict`` entry names a class and its keyword arguments; a consumer
with samzoo installed (bioimageio.core's predict, ``bioimageio test``) builds it with
``import_from: samzoo.packaging.networks`` and loads the package's weights into it. Both
classes *are* :class:`~samzoo.models.model.SamzooModel`\\ s (same parameters, same state-dict
keys ``sam.*`` and ``ais_decoder.*``), so every samzoo package holds the complete model and
samzoo loads either one back into a :class:`SamzooModel`.

- :class:`AISNetwork`: one normalised image of any size in, the AIS decoder's three maps out,
  tiled inside the network exactly as samzoo tiles (:mod:`samzoo.segmentation.tiling`).
  :class:`TiledAIS` is the same network for TorchScript (consumers without samzoo).
- :class:`PromptNetwork`: image plus optional point, box and mask prompts in; masks, IoU
  scores and the image embedding out, in the tensor layout of micro-sam's bioimage.io exports.

Why the AIS network tiles itself: SAM's encoder takes exactly ``input_size`` pixels, and a
consumer's own tiles would start where the consumer likes, so the maps would depend on the
consumer. Tiled inside, with samzoo's grid, one call on a whole image gives samzoo's maps.
Consumers that cut an image into blocks anyway (bioimage.io's output halo) pad the image's
edges symmetrically; a band of ``halo`` rows or columns that mirrors its neighbours is taken
for such padding (:func:`image_box`), so the tiles at the image edges are samzoo's too.
"""

from __future__ import annotations

from typing import List

import torch
from torch.nn import functional as F

from samzoo.models.model import ModelConfig, SamzooModel


def _config(architecture: str, input_size: int, ais_decoder: dict | None, name: str) -> ModelConfig:
    return ModelConfig(architecture=architecture, input_size=input_size, ais_decoder=ais_decoder, name=name)


def tile_spans(length: int, tile_size: int, halo: int) -> List[List[int]]:
    """``[inner start, inner stop, outer start, outer stop]`` of each tile along one axis.

    The rule of :func:`samzoo.segmentation.tiling.tile_grid` (inner steps of ``tile_size - 2 *
    halo`` from 0, outer = inner grown by ``halo`` and clipped), written for TorchScript.
    """
    if length <= tile_size:
        return [[0, length, 0, length]]
    step = tile_size - 2 * halo
    spans: List[List[int]] = []
    for start in range(0, length, step):
        stop = min(start + step, length)
        spans.append([start, stop, max(start - halo, 0), min(stop + halo, length)])
    return spans


def _mirrors(band: torch.Tensor, inside: torch.Tensor, dim: int) -> bool:
    """Whether ``band`` is the mirror image of ``inside`` along ``dim`` and not flat (a flat band is ambiguous)."""
    return torch.equal(band, inside.flip([dim])) and bool(band.amax() > band.amin())


def image_box(image: torch.Tensor, halo: int) -> List[int]:
    """``[y0, y1, x0, x1]``: where the image is inside a ``(C, H, W)`` input that may be padded.

    A consumer honouring the packages' output halo pads the image by ``halo`` pixels on each
    side with symmetric (mirror) padding before the network sees it (bioimageio.core does, also
    at the image edges of its blocks). An edge band that equals the mirror image of the ``halo``
    pixels inside it is taken for that padding and left out, so the image's own edges are where
    samzoo's tiling puts them. Real context mirrors exactly only where it is flat, and a flat
    band is never taken for padding.
    """
    height, width = image.shape[-2], image.shape[-1]
    y0, y1, x0, x1 = 0, height, 0, width
    if halo > 0 and height >= 3 * halo:  # an image at least one halo high inside the bands
        if _mirrors(image[:, :halo], image[:, halo:2 * halo], 1):
            y0 = halo
        if _mirrors(image[:, height - halo:], image[:, height - 2 * halo:height - halo], 1):
            y1 = height - halo
    if halo > 0 and width >= 3 * halo:
        if _mirrors(image[:, :, :halo], image[:, :, halo:2 * halo], 2):
            x0 = halo
        if _mirrors(image[:, :, width - halo:], image[:, :, width - 2 * halo:width - halo], 2):
            x1 = width - halo
    return [y0, y1, x0, x1]


def percentile_range(image: torch.Tensor, lower: float, upper: float) -> torch.Tensor:
    """Map the ``lower``..``upper`` percentile range of the finite values to [0, 1] (not clipped).

    :func:`samzoo.io.normalize.percentile_normalize`'s rule (linear interpolation between
    order statistics, as ``numpy.percentile``), for TorchScript; a constant image becomes 0.
    """
    values = torch.sort(image[torch.isfinite(image)].double()).values
    if values.numel() == 0:
        return torch.zeros_like(image)
    bounds: List[float] = []
    for q in [lower, upper]:
        position = q / 100.0 * (values.numel() - 1)
        i = int(position)
        j = min(i + 1, values.numel() - 1)
        bounds.append(float(values[i] + (values[j] - values[i]) * (position - i)))
    if not bounds[1] > bounds[0]:
        return torch.zeros_like(image)
    return ((image.double() - bounds[0]) / (bounds[1] - bounds[0])).float()


def tile_canvas(image: torch.Tensor, outer: List[int], tile_size: int) -> torch.Tensor:
    """One tile as samzoo's encoder sees it: ``(1, 3, S, S)``, 0..255, black-padded at the right and bottom."""
    tile = image[:, outer[0]:outer[1], outer[2]:outer[3]] * 255.0
    if tile.shape[0] == 1:
        tile = tile.repeat(3, 1, 1)
    return F.pad(tile, [0, tile_size - tile.shape[2], 0, tile_size - tile.shape[1]])[None]


def mirror_bands(maps: torch.Tensor, box: List[int]) -> torch.Tensor:
    """Fill the padding bands left out by :func:`image_box` with the mirror image of the maps inside.

    A consumer honouring the halo crops them anyway; one that does not gets plausible values.
    """
    y0, y1, x0, x1 = box[0], box[1], box[2], box[3]
    height, width = maps.shape[-2], maps.shape[-1]
    if y0 > 0:
        maps[:, :y0] = maps[:, y0:2 * y0].flip([1])
    if y1 < height:
        maps[:, y1:] = maps[:, 2 * y1 - height:y1].flip([1])
    if x0 > 0:
        maps[:, :, :x0] = maps[:, :, x0:2 * x0].flip([2])
    if x1 < width:
        maps[:, :, x1:] = maps[:, :, 2 * x1 - width:x1].flip([2])
    return maps


class TileNetwork(torch.nn.Module):
    """Encoder + AIS decoder on one tile: ``(1, 3, S, S)`` 0..255 (padded) -> ``(1, 3, S, S)`` maps.

    The image embedding is rounded through float16 because samzoo's embedding cache stores it
    so: the packages then reproduce :func:`samzoo.segmentation.ais.ais_maps` to float rounding
    (samzoo runs the decoder with BatchNorm folded in, channels-last), not just approximately.
    """

    def __init__(self, model: SamzooModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, canvas: torch.Tensor) -> torch.Tensor:
        x = (canvas - self.model.sam.pixel_mean) / self.model.sam.pixel_std
        embedding = self.model.sam.image_encoder(x).half().float()
        return self.model.ais_decoder(embedding, x)


class TiledAIS(torch.nn.Module):
    """Any-size image in, maps out: samzoo's tiling around a :class:`TileNetwork` (scriptable).

    Parameters
    ----------
    tile_network : nn.Module
        ``(1, 3, S, S)`` 0..255 -> ``(1, 3, S, S)`` maps (a :class:`TileNetwork`, or its trace).
    tile_size : int
        ``S``, the model input size.
    halo : int
        Tile overlap, as samzoo's default ``S // 8``; also the package's output halo.
    renormalise : bool
        The input went through a percentile ``scale_range`` (not uint8 RGB divided by 255).

    Notes
    -----
    Normalisation. The package's ``scale_range`` maps the 1st..99.8th percentiles of the whole
    sample to 0 and 1, and the network clips to [0, 1]: every block of an image shares one
    normalisation. bioimageio.core's whole-image prediction, though, pads the raw image by the
    halo *before* computing those percentiles (bioimageio.core 0.11), which shifts them (by 7 %
    of the range on a HeLa crop). So when the input holds a whole image (all four edges
    mirrored, see :func:`image_box`), the network maps the percentiles of the image itself to
    [0, 1]: ``scale_range`` is affine and unclipped, so this is exactly samzoo's normalisation.
    """

    def __init__(self, tile_network: torch.nn.Module, tile_size: int, halo: int, renormalise: bool = True) -> None:
        super().__init__()
        self.tile_network = tile_network
        self.tile_size = tile_size
        self.halo = halo
        self.renormalise = renormalise

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)``, C = 1 or 3, normalised as above -> ``(B, 3, H, W)`` maps in [0, 1]."""
        image = image.float()
        height, width = image.shape[2], image.shape[3]
        out = torch.zeros((image.shape[0], 3, height, width), dtype=torch.float32, device=image.device)
        for b in range(image.shape[0]):
            box = image_box(image[b], self.halo)
            inside = image[b, :, box[0]:box[1], box[2]:box[3]]
            if self.renormalise and box[0] > 0 and box[1] < height and box[2] > 0 and box[3] < width:
                inside = percentile_range(inside, 1.0, 99.8)
            # NaN and inf pixels become 0, as samzoo reads them
            inside = torch.nan_to_num(inside, nan=0.0, posinf=0.0, neginf=0.0).clamp(0.0, 1.0)
            maps = out[b, :, box[0]:box[1], box[2]:box[3]]
            for ys in tile_spans(box[1] - box[0], self.tile_size, self.halo):
                for xs in tile_spans(box[3] - box[2], self.tile_size, self.halo):
                    tile = self.tile_network(tile_canvas(inside, [ys[2], ys[3], xs[2], xs[3]], self.tile_size))[0]
                    # the tile's inner region, in its own coordinates
                    inner = tile[:, ys[0] - ys[2]:ys[1] - ys[2], xs[0] - xs[2]:xs[1] - xs[2]]
                    maps[:, ys[0]:ys[1], xs[0]:xs[1]] = inner
            mirror_bands(out[b], box)
        return out


class AISNetwork(SamzooModel):
    """Encoder + AIS decoder as one network: ``(B, C, H, W)`` image in [0, 1] -> ``(B, 3, H, W)`` maps.

    Parameters
    ----------
    architecture, input_size, ais_decoder, name
        The :class:`~samzoo.models.model.ModelConfig` fields (``ais_decoder`` must not be None).
    in_channels : int
        1 (grey: repeated to the 3 channels SAM expects) or 3 (RGB).
    halo : int, optional
        Tile overlap; default ``input_size // 8``, as :func:`samzoo.segmentation.embeddings.compute_embeddings`.
    renormalise : bool
        See :class:`TiledAIS` (False for uint8 RGB, which samzoo takes as it is).

    Notes
    -----
    The input is the image with the 1st..99.8th percentile range of the *whole image* mapped to
    [0, 1] (bioimage.io's ``scale_range``; the network clips), i.e. samzoo's
    :func:`~samzoo.io.normalize.to_model_input` divided by 255 before clipping. Any
    height and width: the image is tiled inside (:class:`TiledAIS`) exactly as samzoo tiles, so
    the maps equal :func:`samzoo.segmentation.ais.ais_maps` to float rounding.
    """

    def __init__(self, architecture: str, input_size: int, ais_decoder: dict, in_channels: int = 1,
                 name: str = "", halo: int | None = None, renormalise: bool = True) -> None:
        if ais_decoder is None:
            raise ValueError("AISNetwork needs an AIS decoder configuration")
        if in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 or 3, got {in_channels}")
        super().__init__(_config(architecture, input_size, ais_decoder, name))
        self.in_channels = in_channels
        self.halo = input_size // 8 if halo is None else halo
        self.renormalise = renormalise

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Foreground, centre distance and boundary distance, each in [0, 1].

        Parameters
        ----------
        image : Tensor (B, in_channels, H, W) float32 in [0, 1], any H and W

        Returns
        -------
        Tensor (B, 3, H, W) float32
        """
        # built per call: a TileNetwork holding this model must not become a submodule of it
        return TiledAIS(TileNetwork(self), self.input_size, self.halo, self.renormalise)(image)


class PromptNetwork(SamzooModel):
    """SAM with prompts, in the tensor layout of micro-sam's bioimage.io exports (batch size 1).

    Coordinates follow SAM and micro-sam: ``(x, y)`` pixel positions in the input image. The
    image is resized so that its longer side is ``input_size`` (SAM's ``ResizeLongestSide``),
    padded and encoded; masks come back at the input image's size.

    Parameters
    ----------
    architecture, input_size, ais_decoder, name
        The :class:`~samzoo.models.model.ModelConfig` fields; the AIS decoder is carried (so the
        package holds the whole model) but not used here.
    """

    def __init__(self, architecture: str, input_size: int, ais_decoder: dict | None = None, name: str = "") -> None:
        super().__init__(_config(architecture, input_size, ais_decoder, name))

    @torch.no_grad()
    def forward(self, image: torch.Tensor, box_prompts: torch.Tensor | None = None,
                point_prompts: torch.Tensor | None = None, point_labels: torch.Tensor | None = None,
                mask_prompts: torch.Tensor | None = None, embeddings: torch.Tensor | None = None,
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Segment one object per prompt entry.

        Parameters
        ----------
        image : Tensor (1, 3, H, W), 0..255
        box_prompts : Tensor (1, N, 4), optional
            ``(xmin, ymin, xmax, ymax)`` per object.
        point_prompts : Tensor (1, N, P, 2), optional
            ``(x, y)`` per point.
        point_labels : Tensor (1, N, P), optional
            1 positive, 0 negative, -1 padding (ignored). Required with ``point_prompts``.
        mask_prompts : Tensor (1, N, 1, 4g, 4g), optional
            Low-resolution mask logits (``g = input_size // 16``) of the resized, padded image,
            e.g. the ``low_res`` logits of an earlier prediction.
        embeddings : Tensor (1, 256, g, g), optional
            A precomputed image embedding (the third output of an earlier call); skips the encoder.

        Returns
        -------
        masks : Tensor (1, N, 1, H, W) uint8
        scores : Tensor (1, N, 1) float32, the predicted IoU of each mask
        embeddings : Tensor (1, 256, g, g) float32
        """
        if image.shape[0] != 1:
            raise ValueError(f"the prompt model takes one image at a time, got batch size {image.shape[0]}")
        height, width = int(image.shape[-2]), int(image.shape[-1])
        size = self.input_size
        scale = size / max(height, width)
        resized = (int(height * scale + 0.5), int(width * scale + 0.5))
        if embeddings is None:
            x = image.float()
            if resized != (height, width):
                x = F.interpolate(x, size=resized, mode="bilinear", align_corners=False, antialias=True)
            embeddings = self.sam.image_encoder(self.preprocess(x)).half().float()
        sizes = [t.shape[1] for t in (box_prompts, point_prompts, mask_prompts) if t is not None]
        if not sizes:  # no prompts: nothing to segment, but the embedding is still useful
            return (torch.zeros((1, 0, 1, height, width), dtype=torch.uint8),
                    torch.zeros((1, 0, 1)), embeddings)
        if len(set(sizes)) > 1:
            raise ValueError(f"the prompt tensors disagree on the number of objects: {sizes}")
        points = None
        if point_prompts is not None:
            if point_labels is None:
                raise ValueError("point_prompts need point_labels")
            points = (point_prompts[0].float() * scale, point_labels[0].long())
        boxes = box_prompts[0].float() * scale if box_prompts is not None else None
        masks_in = mask_prompts[0].float() if mask_prompts is not None else None
        sparse, dense = self.sam.prompt_encoder(points=points, boxes=boxes, masks=masks_in)
        low_res, iou = self.sam.mask_decoder(
            image_embeddings=embeddings, image_pe=self.sam.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=False)
        logits = F.interpolate(low_res, size=(size, size), mode="bilinear", align_corners=False)
        logits = logits[..., :resized[0], :resized[1]]
        if resized != (height, width):
            logits = F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)
        return (logits > 0).to(torch.uint8)[None], iou[None].float(), embeddings
