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

:func:`decode_tokens` with ``factored=True`` and :func:`upscale_masks` go further, for many
prompts on a large image (micro-sam's AMG: 1024 prompts on 4096 image tokens each). Once the
image differs per prompt, each attention between the image's thousands of tokens and the prompt's
few is computed through the few: the projections are folded into the token side
(``x . (W_q^T k)`` instead of ``(W_q x) . k``, the output projection applied to the few values
before they are mixed), which halves the transformer's arithmetic per prompt. The upscaling runs
in token layout (the transposed convolutions with stride 2 are matrix products per token), with
no copies between layouts, and only for the prompts the caller still wants (SAM's predicted IoU
comes from the tokens alone). The same numbers up to float rounding.
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
    queries = _token_self_attention(layer, queries, query_pe)
    k = keys + key_pe  # the image side of both cross attentions
    queries = layer.norm2(queries + layer.cross_attn_token_to_image(q=queries + query_pe, k=k, v=keys))
    queries = layer.norm3(queries + layer.mlp(queries))
    keys = keys + _image_to_token(layer.cross_attn_image_to_token, k, queries + query_pe, queries)
    return queries, layer.norm4(keys)


def _token_self_attention(layer: TwoWayAttentionBlock, queries: torch.Tensor, query_pe: torch.Tensor) -> torch.Tensor:
    """The first step of ``TwoWayAttentionBlock.forward``: the tokens' self attention and its norm."""
    if layer.skip_first_layer_pe:
        queries = layer.self_attn(q=queries, k=queries, v=queries)
    else:
        q = queries + query_pe
        queries = queries + layer.self_attn(q=q, k=q, v=queries)
    return layer.norm1(queries)


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


def decode_tokens(decoder: MaskDecoder, image_embedding: torch.Tensor, image_pe: torch.Tensor,
                  sparse: torch.Tensor, dense: torch.Tensor | None, *, factored: bool = False
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """SAM's two-way transformer for many prompts: the tokens ``(B, T, C)`` and the image ``(B, N, C)`` after it.

    Arguments as :func:`decode_masks`. ``factored``: attention through the prompt's tokens once
    the image differs per prompt (see the module's description); then ``image_embedding`` and
    ``image_pe`` may also be given token-major, ``(1, N, C)``, with the dense prompt embedding
    already added (``dense=None``): :func:`token_major`, once for many calls. Masks follow from
    :func:`upscale_masks`, predicted IoUs from ``decoder.iou_prediction_head(tokens[:, 0])``.
    """
    output_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)
    tokens = torch.cat((output_tokens[None].expand(len(sparse), -1, -1), sparse), dim=1)
    image = image_embedding if dense is None else image_embedding + dense
    if not factored:
        return _transformer(decoder.transformer, image, image_pe, tokens)
    if image.ndim == 4:
        image, image_pe = token_major(image, image_pe)
    return _transformer_factored(decoder.transformer, image, image_pe, tokens)


def token_major(image: torch.Tensor, image_pe: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, C, h, w)`` image embedding (dense prompt added) and positional encoding as contiguous ``(B, h w, C)``.

    Every prompt adds them to its tokens, and strided reads make those additions several times slower.
    """
    return tuple(x.flatten(2).permute(0, 2, 1).contiguous() for x in (image, image_pe))


def upscale_masks(decoder: MaskDecoder, tokens: torch.Tensor, image: torch.Tensor, grid: tuple[int, int],
                  chosen: range) -> torch.Tensor:
    """Low-resolution mask logits ``(B, len(chosen), 4h, 4w)`` from :func:`decode_tokens`'s output.

    ``chosen``: SAM's mask tokens (``range(1, 4)``: its three multimask outputs, ``range(1)``: the
    single mask). The upscaling as matrix products in token layout: a transposed convolution
    with kernel 2 and stride 2 maps each token to its own 2 x 2 output pixels.
    """
    conv1, norm, act1, conv2, act2 = decoder.output_upscaling
    b, n, c = image.shape
    c1, c2 = conv1.out_channels, conv2.out_channels
    # (out channels x 4 pixels, in channels), the bias once per pixel: one fused matrix product each
    w1, w2 = (conv.weight.permute(2, 3, 1, 0).reshape(-1, conv.in_channels) for conv in (conv1, conv2))
    x = F.linear(image.reshape(b * n, c), w1, conv1.bias.repeat(4)).view(b, n, 4, c1)
    x = act1(F.layer_norm(x, (c1,), norm.weight, norm.bias, norm.eps))
    x = act2(F.linear(x.view(b * n * 4, c1), w2, conv2.bias.repeat(4)).view(b, n, 16, c2))
    mlps = decoder.output_hypernetworks_mlps
    hyper = torch.stack([mlps[i](tokens[:, 1 + i]) for i in chosen], dim=2)  # (B, c2, masks)
    masks = (x.view(b, n * 16, c2) @ hyper).view(b, *grid, 2, 2, 2, 2, len(chosen))
    # token (y, x), first upscaling's pixel (a, b), second's (c, d): pixel (4y + 2a + c, 4x + 2b + d)
    return masks.permute(0, 7, 1, 3, 5, 2, 4, 6).reshape(b, len(chosen), 4 * grid[0], 4 * grid[1])


def _transformer_factored(transformer: TwoWayTransformer, image: torch.Tensor, image_pe: torch.Tensor,
                          tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`_transformer` with the attention computed through the tokens once the image differs per prompt.

    ``image`` and ``image_pe``: token-major (:func:`token_major`).
    """
    keys, key_pe, queries = image, image_pe, tokens
    for layer in transformer.layers:
        queries, keys = _block_factored(layer, queries, keys, tokens, key_pe)
    attn_out = _token_to_image(transformer.final_attn_token_to_image, queries + tokens, keys + key_pe, keys)
    return transformer.norm_final_attn(queries + attn_out), keys


def _block_factored(layer: TwoWayAttentionBlock, queries: torch.Tensor, keys: torch.Tensor, query_pe: torch.Tensor,
                    key_pe: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    queries = _token_self_attention(layer, queries, query_pe)
    k = keys + key_pe
    shared = len(keys) == 1 and len(queries) > 1  # one image for all prompts: its projections run once
    to_image = layer.cross_attn_token_to_image
    q = queries + query_pe
    out = to_image(q=q, k=k, v=keys) if shared else _token_to_image(to_image, q, k, keys)
    queries = layer.norm2(queries + out)
    queries = layer.norm3(queries + layer.mlp(queries))
    keys = keys + _image_to_token_factored(layer.cross_attn_image_to_token, k, queries + query_pe, queries)
    return queries, layer.norm4(keys)


def _token_to_image(attention: Attention, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``Attention.forward(q, k, v)`` for few token queries on many image keys, through the tokens.

    ``softmax((W_q q) . (W_k k_i + b_k))`` over the image is ``softmax((W_k^T W_q q) . k_i)``
    (the bias term is the same for every image token); ``sum_i w_i (W_v v_i + b_v)`` is
    ``W_v (sum_i w_i v_i) + b_v``. Per prompt: two products of the image with ``heads x tokens`` vectors.
    """
    heads = attention.num_heads
    b, t, _ = q.shape
    c = k.shape[-1]
    per_head = attention.internal_dim // heads
    query = attention.q_proj(q).view(b, t, heads, per_head)
    folded = torch.einsum("bthj,hjc->bhtc", query, attention.k_proj.weight.view(heads, per_head, c))
    logits = (folded.reshape(b, heads * t, c) / math.sqrt(per_head)) @ k.transpose(1, 2)
    weights = _no_subnormals(torch.softmax(logits, dim=-1))
    mixed = (weights @ v).view(b, heads, t, c)  # (B, heads, tokens, C): the weighted mean of the values' inputs
    out = torch.einsum("bhtc,hjc->bthj", mixed, attention.v_proj.weight.view(heads, per_head, c))
    out = out + attention.v_proj.bias.view(heads, per_head)
    return attention.out_proj(out.reshape(b, t, heads * per_head))


def _image_to_token_factored(attention: Attention, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``Attention.forward(q, k, v)`` for many image queries on few token keys, through the tokens.

    The logits ``(W_q q_i + b_q) . K`` are ``q_i . (W_q^T K) + b_q . K``, and the output projection
    is applied to the few values before the attention mixes them. With one image for all prompts,
    its projection is computed once instead. Weights normalised over a leading axis, as in
    :func:`_image_to_token`.
    """
    heads = attention.num_heads
    b, t, _ = k.shape
    n, c = q.shape[1], q.shape[2]
    per_head = attention.internal_dim // heads
    scale = 1 / math.sqrt(per_head)
    key = attention.k_proj(k).view(b, t, heads, per_head)
    if len(q) == 1 and b > 1:
        query = attention.q_proj(q[0]).view(n, heads, per_head).permute(1, 2, 0)  # (heads, per head, N)
        logits = (key.permute(0, 2, 1, 3) * scale) @ query  # (B, heads, tokens, N)
    else:
        folded = torch.einsum("bthj,hjc->bhtc", key, attention.q_proj.weight.view(heads, per_head, c)) * scale
        offset = torch.einsum("bthj,hj->bht", key, attention.q_proj.bias.view(heads, per_head)) * scale
        logits = (folded.reshape(b, heads * t, c) @ q.transpose(1, 2)).view(b, heads, t, n) + offset[..., None]
    weights = _no_subnormals(torch.softmax(logits, dim=2))  # over the tokens, per head and image token
    value = attention.v_proj(v).view(b, t, heads, per_head)
    projected = torch.einsum("bthj,chj->bhtc", value, attention.out_proj.weight.view(c, heads, per_head))
    return torch.baddbmm(attention.out_proj.bias, weights.reshape(b, heads * t, n).transpose(1, 2),
                         projected.reshape(b, heads * t, c))


def _no_subnormals(weights: torch.Tensor) -> torch.Tensor:
    """Attention weights below 1e-30 set to 0 (in place): sharp attention underflows to subnormal floats,
    which make the CPU's matrix products several times slower (an AMG prompt on vit_b: 64 ms instead
    of 40), while their share of any sum is far below float32's resolution."""
    return F.threshold_(weights, 1e-30, 0.0)
