"""SAM's mask decoder, restated for many prompts on one image.

segment-anything's ``MaskDecoder`` is written for any batch: it first copies the image
embedding once per prompt, and its image-to-token attention normalises over the last axis of
a ``(prompts, heads, image tokens, prompt tokens)`` array whose last axis is only ~7 long,
which PyTorch's CPU softmax handles slowly. :func:`decode_masks` computes the same thing with
the same modules and weights, but

- passes the image once while all prompts still see the same image (until the first
  image-to-token attention; PyTorch's matrix products broadcast over the prompts), so the
  first block's image-side projections run once instead of once per prompt;
- runs the image-to-token attention transposed, normalising over a leading axis;
- runs the upscaling's channel LayerNorm as one ``layer_norm`` call.

About half the time per prompt of ``MaskDecoder.forward`` at 256 input on one CPU thread; the
results agree to float rounding (``tests/segmentation/test_mask_decoder.py``).
"""

from __future__ import annotations

import math

import torch
from segment_anything.modeling import MaskDecoder
from segment_anything.modeling.common import LayerNorm2d
from segment_anything.modeling.transformer import Attention, TwoWayAttentionBlock, TwoWayTransformer
from torch.nn import functional as F


def decode_masks(decoder: MaskDecoder, image_embedding: torch.Tensor, image_pe: torch.Tensor,
                 sparse: torch.Tensor, dense: torch.Tensor, multimask: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``decoder(image_embedding, image_pe, sparse, dense, multimask)`` for many prompts on one image.

    Parameters
    ----------
    decoder : segment_anything MaskDecoder
    image_embedding, image_pe : Tensor (1, C, h, w) or (B, C, h, w)
        One image for all prompts, or one per prompt (e.g. a window of the image around each
        prompt, with the matching window of the positional encoding).
    sparse : Tensor (B, N, C)
        Sparse prompt embeddings, one row per prompt.
    dense : Tensor (B, C, h, w) or (1, C, h, w)
        Dense prompt embeddings; pass ``(1, ...)`` when they are the same for every prompt
        (no mask prompts): a shared image then stays shared as long as possible.
    multimask : bool
        Return SAM's three ambiguity masks (else its single-mask output).

    Returns
    -------
    masks : Tensor (B, 3 or 1, 4h, 4w)
        Low-resolution mask logits.
    iou : Tensor (B, 3 or 1)
        Predicted IoU of each mask.
    """
    output_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)
    tokens = torch.cat((output_tokens[None].expand(len(sparse), -1, -1), sparse), dim=1)
    _, c, h, w = image_embedding.shape
    hs, src = _transformer(decoder.transformer, image_embedding + dense, image_pe, tokens)
    x = src.transpose(1, 2).reshape(len(sparse), c, h, w)
    for layer in decoder.output_upscaling:
        if isinstance(layer, LayerNorm2d):  # over channels, SAM's formula (biased variance, eps inside the root)
            x = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), layer.weight, layer.bias, layer.eps)
            x = x.permute(0, 3, 1, 2)
        else:
            x = layer(x)
    # only the mask tokens asked for (SAM computes all four and drops one)
    chosen = range(1, decoder.num_mask_tokens) if multimask else range(1)
    mlps = decoder.output_hypernetworks_mlps
    hyper_in = torch.stack([mlps[i](hs[:, 1 + i]) for i in chosen], dim=1)
    b, c, h, w = x.shape
    masks = (hyper_in @ x.reshape(b, c, h * w)).view(b, len(chosen), h, w)
    iou = decoder.iou_prediction_head(hs[:, 0])
    return masks, iou[:, chosen.start:chosen.stop]


def _transformer(transformer: TwoWayTransformer, image: torch.Tensor, image_pe: torch.Tensor,
                 tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``TwoWayTransformer.forward``; ``image`` and ``image_pe`` may have batch 1 for all prompts."""
    keys = image.flatten(2).permute(0, 2, 1)
    key_pe = image_pe.flatten(2).permute(0, 2, 1)
    queries = tokens
    for layer in transformer.layers:
        queries, keys = _block(layer, queries, keys, tokens, key_pe)
    attn_out = transformer.final_attn_token_to_image(q=queries + tokens, k=keys + key_pe, v=keys)
    return transformer.norm_final_attn(queries + attn_out), keys


def _block(layer: TwoWayAttentionBlock, queries: torch.Tensor, keys: torch.Tensor, query_pe: torch.Tensor,
           key_pe: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``TwoWayAttentionBlock.forward`` with the image-to-token attention transposed."""
    if layer.skip_first_layer_pe:
        queries = layer.self_attn(q=queries, k=queries, v=queries)
    else:
        q = queries + query_pe
        queries = queries + layer.self_attn(q=q, k=q, v=queries)
    queries = layer.norm1(queries)
    k = keys + key_pe  # the image side of both cross attentions
    queries = layer.norm2(queries + layer.cross_attn_token_to_image(q=queries + query_pe, k=k, v=keys))
    queries = layer.norm3(queries + layer.mlp(queries))
    keys = keys + _image_to_token(layer.cross_attn_image_to_token, k, queries + query_pe, queries)
    return queries, layer.norm4(keys)


def _image_to_token(attention: Attention, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``Attention.forward(q, k, v)`` with image queries and few token keys, computed transposed.

    The attention weights are built as ``(B, heads, tokens, image)`` and normalised over the
    token axis: the same numbers as SAM's ``(B, heads, image, tokens)`` softmax over its short
    last axis, which is many times slower on CPU.
    """
    q = _heads(attention.q_proj(q), attention.num_heads)
    k = _heads(attention.k_proj(k), attention.num_heads)
    v = _heads(attention.v_proj(v), attention.num_heads)
    weights = torch.softmax(k @ q.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-2)
    out = weights.transpose(-1, -2) @ v  # (B, heads, image, channels per head)
    b, n_heads, n, c = out.shape
    return attention.out_proj(out.transpose(1, 2).reshape(b, n, n_heads * c))


def _heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """``(B, N, C)`` -> ``(B, heads, N, C / heads)``, as SAM's ``Attention._separate_heads``."""
    b, n, c = x.shape
    return x.reshape(b, n, num_heads, c // num_heads).transpose(1, 2)
