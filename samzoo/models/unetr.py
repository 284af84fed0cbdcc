"""micro-sam's instance decoder (the UNETR decoder of torch-em), restated so its weights load key for key.

micro-sam attaches a UNETR decoder (``torch_em.model.UNETR``, built by
``micro_sam.instance_segmentation.get_unetr`` with ``use_skip_connection=False``,
``final_activation="Sigmoid"``, ``out_channels=3``) to the SAM image encoder and runs it on the
image embedding through ``DecoderAdapter``. Its published ``*_decoder.pt`` files and the
``decoder_state`` of its training checkpoints are that UNETR's state dict without the encoder.
:class:`UNETRDecoder` has the same modules under the same names, so ``state_dict()`` keys and
shapes equal micro-sam's ``decoder_state`` exactly, and :func:`load_unetr_state` loads one
strictly. Written here rather than imported from torch-em: torch-em pulls in a training
framework samzoo does not use, and only these ~100 lines of layers matter; the keys are
pinned by ``tests/models/test_unetr.py`` against a list produced by torch-em 0.10.9.

Outputs (after the sigmoid), per pixel: foreground probability, distance to the object centre
and distance to the object boundary, both normalised per object and *small inside objects*
(micro-sam thresholds both with "below"). Note micro-sam's boundary channel is the inverse of
samzoo's own decoder's (:mod:`samzoo.models.ais_decoder`, 1 deep inside).

BatchNorm: micro-sam never puts this decoder in eval mode (``get_unetr`` only moves it to the
device, ``DecoderAdapter`` and ``InstanceSegmentationWithDecoder`` never call ``.eval()``), so its
BatchNorm layers normalise with each image's own statistics, not the running statistics stored
in the weights. That is what the published models do in practice, so samzoo does the same by
default (``per_image_batchnorm=True``), without updating the stored statistics.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from samzoo.errors import CheckpointError

FEATURES = (512, 256, 128, 64)  # torch-em: initial_features 64, gain 2, depth 3, coarsest first
N_OUTPUTS = 3


class PerImageBatchNorm2d(nn.BatchNorm2d):
    """``BatchNorm2d`` that, with ``per_image`` set, normalises each image with its own statistics.

    Same parameters and buffers (and so the same state-dict keys) as ``nn.BatchNorm2d``. With
    ``per_image``, the output equals ``nn.BatchNorm2d`` in training mode on a batch of one image
    (what micro-sam computes), for any batch size, and the running statistics are left alone.
    """

    per_image: bool = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.per_image:
            return super().forward(x)
        return F.instance_norm(x, weight=self.weight, bias=self.bias, use_input_stats=True, eps=self.eps)


class _Single(nn.Module):
    """One layer wrapped as ``block`` (torch-em's ``SingleDeconv2DBlock`` / ``SingleConv2DBlock``)."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.block = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class _Interpolate(nn.Module):
    """torch-em's ``Upsampler2d``: bilinear upsampling, then a 1x1 convolution named ``conv``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False))


def _upsampler(in_channels: int, out_channels: int, conv_transpose: bool) -> nn.Module:
    if conv_transpose:
        return _Single(nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2))
    return _Interpolate(in_channels, out_channels)


class _Deconv(nn.Module):
    """torch-em's ``Deconv2DBlock``: upsample x2, 3x3 convolution, BatchNorm, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, conv_transpose: bool) -> None:
        super().__init__()
        self.block = nn.Sequential(
            _upsampler(in_channels, out_channels, conv_transpose),
            _Single(nn.Conv2d(out_channels, out_channels, 3, padding=1)),
            PerImageBatchNorm2d(out_channels),
            nn.ReLU(True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class _ConvBlock(nn.Module):
    """torch-em's ``ConvBlock2d``: (InstanceNorm, 3x3 convolution, ReLU) twice."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.InstanceNorm2d(in_channels), nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU(True),
            nn.InstanceNorm2d(out_channels), nn.Conv2d(out_channels, out_channels, 3, padding=1), nn.ReLU(True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class _Decoder(nn.Module):
    """torch-em's UNet ``Decoder`` (blocks and samplers), with its centre crop of the skip input."""

    def __init__(self, conv_transpose: bool) -> None:
        super().__init__()
        pairs = list(zip(FEATURES[:-1], FEATURES[1:]))
        self.blocks = nn.ModuleList([_ConvBlock(i, o) for i, o in pairs])
        self.samplers = nn.ModuleList([_upsampler(i, o, conv_transpose) for i, o in pairs])

    def forward(self, x: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        for block, sampler, skip in zip(self.blocks, self.samplers, skips):
            x = sampler(x)
            block_input = torch.cat([x, _centre_crop(skip, x.shape)], dim=1)
            x = block(block_input)
        return x


def _centre_crop(x: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """torch-em's ``Decoder._crop``: a centre crop over every axis but the batch, *channels included*.

    micro-sam's decoder feeds skip features with twice the channels the decoder block expects
    (e.g. 512 for 256); torch-em keeps the middle half of the channels. Reproduced as it is,
    because the published weights were trained that way.
    """
    start = [(have - want) // 2 for have, want in zip(x.shape[1:], shape[1:])]
    return x[(slice(None),) + tuple(slice(s, s + w) for s, w in zip(start, shape[1:]))]


class UNETRDecoder(nn.Module):
    """micro-sam's AIS decoder on a SAM image embedding: ``DecoderAdapter`` of torch-em's ``UNETR``.

    Parameters
    ----------
    embed_dim : int
        Channels of the image embedding (256 for every SAM encoder).
    use_conv_transpose : bool
        Upsample with transposed convolutions (micro-sam's published decoders) or with bilinear
        interpolation and a 1x1 convolution (torch-em's default); read from the weights by
        :func:`unetr_config_from_state`, as micro-sam does.
    per_image_batchnorm : bool
        Normalise BatchNorm with each image's statistics, as micro-sam does (see the module
        docstring); ``False`` uses the stored running statistics (eval mode).

    Shapes
    ------
    ``embedding``: ``(B, embed_dim, g, g)``; output: ``(B, 3, 16 g, 16 g)`` after the sigmoid, in the
    model-input frame (crop and resize with :func:`postprocess_maps`).
    """

    def __init__(self, embed_dim: int = 256, use_conv_transpose: bool = True, per_image_batchnorm: bool = True) -> None:
        super().__init__()
        self.decoder = _Decoder(use_conv_transpose)
        self.deconv1 = _Deconv(embed_dim, FEATURES[0], use_conv_transpose)
        self.deconv2 = _Deconv(FEATURES[0], FEATURES[1], use_conv_transpose)
        self.deconv3 = _Deconv(FEATURES[1], FEATURES[2], use_conv_transpose)
        self.deconv4 = _Deconv(FEATURES[2], FEATURES[3], use_conv_transpose)
        self.base = _ConvBlock(embed_dim, FEATURES[0])
        self.out_conv = nn.Conv2d(FEATURES[-1], N_OUTPUTS, 1)
        self.deconv_out = _upsampler(FEATURES[-1], FEATURES[-1], use_conv_transpose)
        self.decoder_head = _ConvBlock(2 * FEATURES[-1], FEATURES[-1])
        self.per_image_batchnorm = per_image_batchnorm

    @property
    def per_image_batchnorm(self) -> bool:
        return self._per_image

    @per_image_batchnorm.setter
    def per_image_batchnorm(self, value: bool) -> None:
        self._per_image = bool(value)
        for module in self.modules():
            if isinstance(module, PerImageBatchNorm2d):
                module.per_image = self._per_image

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        z9 = self.deconv1(embedding)
        z6 = self.deconv2(z9)
        z3 = self.deconv3(z6)
        z0 = self.deconv4(z3)
        x = self.decoder(self.base(embedding), [z9, z6, z3])
        x = torch.cat([self.deconv_out(x), z0], dim=1)
        return torch.sigmoid(self.out_conv(self.decoder_head(x)))


def postprocess_maps(maps: torch.Tensor, input_size: int, resized: tuple[int, int],
                     original: tuple[int, int]) -> torch.Tensor:
    """torch-em's ``postprocess_masks``: to the model input, crop the resized image, resize back.

    Parameters
    ----------
    maps : Tensor (B, C, h, w)
    input_size : int
        The model input (1024): the maps are first interpolated to it.
    resized : (int, int)
        The image's size inside the model input (its longest side ``input_size``).
    original : (int, int)
        The image's own size.
    """
    maps = F.interpolate(maps, (input_size, input_size), mode="bilinear", align_corners=False)
    maps = maps[..., :resized[0], :resized[1]]
    return F.interpolate(maps, original, mode="bilinear", align_corners=False)


def unetr_config_from_state(state: dict[str, torch.Tensor]) -> dict:
    """The :class:`UNETRDecoder` keyword arguments that fit a micro-sam ``decoder_state``.

    Raises
    ------
    CheckpointError
        When the state is not a UNETR decoder's.
    """
    if "base.block.1.weight" not in state or "out_conv.weight" not in state:
        found = ", ".join(sorted(state)[:4]) + (", ..." if len(state) > 4 else "")
        raise CheckpointError(f"not a micro-sam UNETR decoder state (no base.block.1.weight / out_conv.weight; "
                              f"found {len(state)} tensors: {found})")
    # micro-sam's own test (get_unetr): transposed convolutions are wrapped as 'block' in the samplers
    conv_transpose = any(".block." in k for k in state if k.startswith("decoder.samplers"))
    return {"embed_dim": int(state["base.block.1.weight"].shape[1]), "use_conv_transpose": conv_transpose}


def load_unetr_state(decoder: UNETRDecoder, state: dict[str, torch.Tensor], source: str = "decoder state") -> None:
    """Load a micro-sam ``decoder_state`` into ``decoder`` key for key.

    Raises
    ------
    CheckpointError
        One line naming the missing, unexpected or mis-shaped keys; nothing is loaded then.
    """
    own = decoder.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in own.items()
              if k in state and tuple(state[k].shape) != tuple(v.shape)]
    problems = []
    for name, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes)):
        if keys:
            problems.append(f"{name} ({len(keys)}): {', '.join(keys[:6])}{', ...' if len(keys) > 6 else ''}")
    if problems:
        raise CheckpointError(f"{source} does not fit micro-sam's UNETR decoder: {'; '.join(problems)}")
    decoder.load_state_dict(state, strict=True)
