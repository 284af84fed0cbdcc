"""The AIS (automatic instance segmentation) decoder.

A UNETR-style decoder: it upsamples the SAM image embedding (stride 16) back to full
resolution and predicts, per pixel,

- channel 0: foreground probability,
- channel 1: distance to the object's centre, normalised per object to [0, 1] (0 at the centre),
- channel 2: distance to the object's boundary, normalised per object to [0, 1] (1 deep inside).

Instances are then found by a seeded watershed (:mod:`samzoo.segmentation.ais`). Because the
embedding is coarse (one token per 16x16 pixels), the decoder also takes the input image through
a small convolutional stem and joins those features at strides 1, 2 and 4: this is what
makes boundaries pixel-accurate for objects only ~10 pixels wide.

With ``output_stride=2`` the decoder stops at stride 2: the image enters the stem through a
stride-2 convolution, the head predicts at stride 2 and its logits are upsampled bilinearly to full
resolution before the sigmoid. The full-resolution stem and up-block take half of the
decoder's time (9.5 of 19 ms per 256 x 256 tile on one CPU thread), and the maps it predicts are
smooth (distances, a foreground that the watershed thresholds), so interpolating logits loses
little. ``scripts/bench_ais_decoder.py`` times the configurations.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval

N_OUTPUTS = 3


def _conv_block(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class UpBlock(nn.Module):
    """Double the resolution, concatenate a skip feature map, then two 3x3 convolutions."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
        self.conv = _conv_block(out_channels + skip_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        x = self.up(x)
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.conv(x)


class AISDecoder(nn.Module):
    """Predict foreground and centre/boundary distances from a SAM image embedding.

    Parameters
    ----------
    embed_dim : int
        Channels of the image embedding (256 for every SAM encoder).
    widths : tuple of int, optional
        Channels at strides 8, 4, 2 and, with ``output_stride=1``, 1 (four numbers, default
        ``(96, 32, 16, 8)``; three with ``output_stride=2``, default ``(96, 32, 16)``). Narrow at
        high resolution: the high-resolution stages dominate the cost, and a few channels suffice
        there to place boundaries.
    image_skip : bool
        Whether to use the input image as skip features (see module docstring).
    output_stride : {1, 2}
        Resolution of the last stage and of the head: 1 (full resolution) or 2 (predict at half
        resolution, upsample the logits bilinearly). The output shape is the same.

    Shapes
    ------
    ``embedding``: ``(B, embed_dim, S/16, S/16)``; ``image``: ``(B, 3, S, S)`` normalised like the
    encoder input; output: ``(B, 3, S, S)`` with sigmoid applied (all channels in [0, 1]).
    """

    def __init__(self, embed_dim: int = 256, widths: tuple[int, ...] | None = None,
                 image_skip: bool = True, output_stride: int = 1) -> None:
        super().__init__()
        if output_stride not in (1, 2):
            raise ValueError(f"output_stride must be 1 or 2, not {output_stride!r}")
        n_stages = 4 if output_stride == 1 else 3
        widths = (96, 32, 16, 8)[:n_stages] if widths is None else tuple(widths)
        if len(widths) != n_stages:
            raise ValueError(f"output_stride={output_stride} needs {n_stages} widths (strides 8, 4, 2"
                             f"{', 1' if n_stages == 4 else ''}), got {widths}")
        self.image_skip, self.output_stride = image_skip, output_stride
        w8, w4, w2 = widths[:3]
        if image_skip:
            if output_stride == 1:
                w1 = widths[3]
                self.stem1 = _conv_block(3, w1)                                        # stride 1
                self.stem2 = nn.Sequential(nn.MaxPool2d(2), _conv_block(w1, w2))       # stride 2
            else:
                # no full-resolution stage: a strided convolution reads the image at stride 2
                # (it sees every pixel, and costs less than average pooling then convolving)
                self.stem2 = _conv_block(3, w2, stride=2)                              # stride 2
            self.stem4 = nn.Sequential(nn.MaxPool2d(2), _conv_block(w2, w4))           # stride 4
        self.up8 = UpBlock(embed_dim, 0, w8)
        self.up4 = UpBlock(w8, w4 if image_skip else 0, w4)
        self.up2 = UpBlock(w4, w2 if image_skip else 0, w2)
        if output_stride == 1:
            self.up1 = UpBlock(w2, w1 if image_skip else 0, w1)
        self.head = nn.Conv2d(widths[-1], N_OUTPUTS, kernel_size=1)

    def forward(self, embedding: torch.Tensor, image: torch.Tensor | None = None) -> torch.Tensor:
        s1 = s2 = s4 = None
        if self.image_skip:
            if image is None:
                raise ValueError("this AIS decoder was built with image_skip=True and needs the image")
            if self.output_stride == 1:
                s1 = self.stem1(image)
                s2 = self.stem2(s1)
            else:
                s2 = self.stem2(image)
            s4 = self.stem4(s2)
        x = self.up8(embedding)
        x = self.up4(x, s4)
        x = self.up2(x, s2)
        if self.output_stride == 1:
            return torch.sigmoid(self.head(self.up1(x, s1)))
        # the output size is the embedding's times 16, as with output_stride=1
        size = (embedding.shape[-2] * 16, embedding.shape[-1] * 16)
        logits = F.interpolate(self.head(x), size=size, mode="bilinear", align_corners=False)
        return torch.sigmoid(logits)


def copy_matching_weights(decoder: AISDecoder, state_dict: dict[str, torch.Tensor]) -> list[str]:
    """Copy into ``decoder`` every floating-point tensor of ``state_dict`` with the same name and shape.

    Used to start a decoder of another configuration (e.g. ``output_stride=2`` or other widths)
    from a trained one: the blocks both share begin trained, the others keep their random
    initialisation.

    Parameters
    ----------
    decoder : AISDecoder
        Changed in place.
    state_dict : dict
        A decoder's state dict (names without the ``ais_decoder.`` prefix).

    Returns
    -------
    list of str
        The names copied, in ``decoder``'s order.
    """
    own = decoder.state_dict()
    # floating-point tensors only: BatchNorm's scalar step counters always "match" and mean nothing
    matching = {k: v for k, v in state_dict.items()
                if k in own and own[k].is_floating_point() and own[k].shape == v.shape}
    decoder.load_state_dict(matching, strict=False)
    return [k for k in own if k in matching]


def inference_copy(decoder: AISDecoder) -> AISDecoder:
    """A copy of ``decoder`` for fast inference: BatchNorm folded into the convolutions, channels-last.

    Folding removes one pass over every feature map per convolution (BatchNorm in eval mode
    is a per-channel affine map, which the preceding convolution can absorb); channels-last
    runs the few-channel, full-resolution convolutions ~1.5x faster on CPU. The outputs equal
    ``decoder``'s in eval mode to float rounding (~1e-6). The copy's parameter names differ
    (the BatchNorms become ``Identity``): use it for inference only, never save it.

    Parameters
    ----------
    decoder : AISDecoder
        Must be in eval mode (BatchNorm with running statistics).
    """
    if decoder.training:
        raise ValueError("BatchNorm can only be folded in eval mode: call decoder.eval() first")
    fused = copy.deepcopy(decoder)
    for block in fused.modules():
        if isinstance(block, nn.Sequential):
            layers = list(block)
            for i in range(len(layers) - 1):
                if isinstance(layers[i], nn.Conv2d) and isinstance(layers[i + 1], nn.BatchNorm2d):
                    block[i] = fuse_conv_bn_eval(layers[i], layers[i + 1])
                    block[i + 1] = nn.Identity()
    return fused.to(memory_format=torch.channels_last)
