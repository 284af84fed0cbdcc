"""SAM architectures samzoo can build: the published ViT encoders and samzoo's own small TinyViT.

Every architecture pairs an image encoder with SAM's standard prompt encoder and mask decoder
(``segment_anything.modeling``), so prompts, masks and IoU predictions mean the same thing
for every model in the zoo.

=============  =========================  ==========  ===============================
name           image encoder              input size  used by
=============  =========================  ==========  ===============================
``vit_h``      ViT-H (SAM)                1024        SAM, ``vit_h_histopathology``
``vit_l``      ViT-L (SAM)                1024        SAM, ``vit_l_lm``, ...
``vit_b``      ViT-B (SAM)                1024        SAM, ``vit_b_lm``, ...
``vit_t``      TinyViT-5M (MobileSAM)     any * 64    MobileSAM, ``vit_t_lm``, ...
``samzoo_tiny````TinyViT, 3 narrow stages  any * 64    samzoo's own ``samzoo_tiny_lm``
=============  =========================  ==========  ===============================

The TinyViT encoders only have windowed attention and convolutions, so their weights do not
depend on the input size: a checkpoint trained at 1024 loads into a 512 model and vice versa.
The ViT encoders carry a learned absolute position embedding for a 64x64 token grid and are
built at 1024 only.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import partial

import torch
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

from samzoo.errors import UnknownModelError

with warnings.catch_warnings():
    # mobile_sam imports timm's deprecated paths and re-registers timm model names on import.
    warnings.simplefilter("ignore")
    from mobile_sam.modeling.tiny_vit_sam import TinyViT

PROMPT_EMBED_DIM = 256
PATCH_SIZE = 16  # every encoder here outputs one token per 16x16 pixels


class SizeAgnosticTinyViT(TinyViT):
    """MobileSAM's TinyViT, with the token grid taken from the input instead of fixed at 64x64.

    MobileSAM's ``forward_features`` reshapes the last stage to a hard-coded 64x64 grid, i.e.
    it only runs at 1024 input. The layers themselves are size-independent once built for a
    given ``img_size``, so overriding this one reshape is all that a smaller input needs.

    Input ``(B, 3, img_size, img_size)``; output ``(B, 256, img_size // 16, img_size // 16)``.
    """

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        grid = (x.shape[-2] // PATCH_SIZE, x.shape[-1] // PATCH_SIZE)
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x)
        batch, _, channels = x.shape
        x = x.view(batch, grid[0], grid[1], channels).permute(0, 3, 1, 2)
        return self.neck(x)


@dataclass(frozen=True)
class Architecture:
    """How to build one SAM variant.

    Attributes
    ----------
    name : str
        Registry name of the architecture.
    encoder : str
        ``"vit"`` (SAM's ViT) or ``"tiny_vit"`` (MobileSAM's TinyViT).
    encoder_kwargs : dict
        Keyword arguments of the encoder's constructor (without the input size).
    fixed_input_size : int or None
        Input size the encoder's weights are tied to (ViT: 1024); ``None`` for any multiple of 64.
    default_input_size : int
        Input size used when the caller gives none.
    """

    name: str
    encoder: str
    encoder_kwargs: dict = field(default_factory=dict)
    fixed_input_size: int | None = None
    default_input_size: int = 1024


def _vit(name: str, dim: int, depth: int, heads: int, global_attn: tuple[int, ...]) -> Architecture:
    kwargs = dict(embed_dim=dim, depth=depth, num_heads=heads, global_attn_indexes=global_attn)
    return Architecture(name, "vit", kwargs, fixed_input_size=1024)


ARCHITECTURES: dict[str, Architecture] = {
    "vit_h": _vit("vit_h", 1280, 32, 16, (7, 15, 23, 31)),
    "vit_l": _vit("vit_l", 1024, 24, 16, (5, 11, 17, 23)),
    "vit_b": _vit("vit_b", 768, 12, 12, (2, 5, 8, 11)),
    "vit_t": Architecture(
        "vit_t",
        "tiny_vit",
        dict(embed_dims=[64, 128, 160, 320], depths=[2, 2, 6, 2], num_heads=[2, 4, 5, 10],
             window_sizes=[7, 7, 14, 7]),
    ),
    # samzoo's own encoder, sized to be trainable from scratch on a 2-core CPU: three stages
    # (stride 4 -> 8 -> 16) instead of four, about a fifth of vit_t's compute per pixel.
    # A three-stage TinyViT also avoids MobileSAM's rule that ties the last stage's stride to
    # its width (320/448/576 channels), so any widths work here.
    "samzoo_tiny": Architecture(
        "samzoo_tiny",
        "tiny_vit",
        dict(embed_dims=[32, 64, 160], depths=[1, 2, 4], num_heads=[1, 2, 5], window_sizes=[7, 8, 8]),
        default_input_size=512,
    ),
}


def get_architecture(name: str) -> Architecture:
    """Return the :class:`Architecture` called ``name`` or raise :class:`UnknownModelError`."""
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown architecture {name!r}; known: {', '.join(ARCHITECTURES)}"
        ) from None


def build_image_encoder(arch: Architecture, input_size: int) -> torch.nn.Module:
    """Build the image encoder of ``arch`` for square inputs of ``input_size`` pixels."""
    if arch.encoder == "vit":
        return ImageEncoderViT(
            img_size=input_size,
            patch_size=PATCH_SIZE,
            mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            qkv_bias=True,
            use_rel_pos=True,
            window_size=14,
            out_chans=PROMPT_EMBED_DIM,
            **arch.encoder_kwargs,
        )
    return SizeAgnosticTinyViT(
        img_size=input_size,
        in_chans=3,
        num_classes=0,
        mlp_ratio=4.0,
        drop_rate=0.0,
        drop_path_rate=0.0,
        mbconv_expand_ratio=4.0,
        local_conv_size=3,
        **arch.encoder_kwargs,
    )


def build_sam(architecture: str, input_size: int | None = None) -> Sam:
    """Build an untrained SAM of the given architecture.

    Parameters
    ----------
    architecture : str
        A key of :data:`ARCHITECTURES` (``"vit_t"``, ``"vit_b"``, ..., ``"samzoo_tiny"``).
    input_size : int, optional
        Side of the square model input in pixels, a multiple of 64. Defaults to the
        architecture's default; must equal ``fixed_input_size`` for the ViT encoders.

    Returns
    -------
    segment_anything.modeling.Sam
        With ``image_encoder.img_size == input_size`` and an image embedding of
        ``(256, input_size // 16, input_size // 16)``.

    Examples
    --------
    >>> sam = build_sam("samzoo_tiny", input_size=256)
    >>> sam.prompt_encoder.image_embedding_size
    (16, 16)
    """
    arch = get_architecture(architecture)
    size = input_size or arch.fixed_input_size or arch.default_input_size
    if arch.fixed_input_size is not None and size != arch.fixed_input_size:
        raise ValueError(f"{architecture} only runs at {arch.fixed_input_size} input, not {size}")
    if size % 64:
        raise ValueError(f"input_size must be a multiple of 64, got {size}")
    grid = size // PATCH_SIZE
    return Sam(
        image_encoder=build_image_encoder(arch, size),
        prompt_encoder=PromptEncoder(
            embed_dim=PROMPT_EMBED_DIM,
            image_embedding_size=(grid, grid),
            input_image_size=(size, size),
            mask_in_chans=16,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=2, embedding_dim=PROMPT_EMBED_DIM, mlp_dim=2048, num_heads=8),
            transformer_dim=PROMPT_EMBED_DIM,
            iou_head_depth=3,
            iou_head_hidden_dim=256,
        ),
    )
