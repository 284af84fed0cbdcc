"""The files a SAM or micro-sam user has, loaded by path: the architecture read from tensor shapes.

- an official SAM checkpoint (``sam_vit_b_01ec64.pth``): a plain state dict;
- a published micro-sam model: the SAM weights (``vit_b.pt``) and a separate decoder file
  (``vit_b_decoder.pt``, micro-sam's ``decoder_state``) given as ``decoder=``;
- a micro-sam training checkpoint (``best.pt``): ``model_state`` (keys prefixed ``sam.``) and
  ``decoder_state``; the optimizer state and torch-em's training record are ignored.

Every file is read by :func:`samzoo.models.checkpoint.read_checkpoint` (weights-only unpickling).
Models built from these files use SAM's own input handling (``ModelConfig.sam_input``) and,
with a decoder, micro-sam's UNETR decoder (:mod:`samzoo.models.unetr`) and post-processing.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pooch
import torch

from samzoo.errors import CheckpointError
from samzoo.models.architectures import ARCHITECTURES
from samzoo.models.checkpoint import DECODER_KEYS, SAM_KEYS, _tensors_without_prefix, _unwrap, read_checkpoint
from samzoo.models.model import ModelConfig, SamzooModel
from samzoo.models.unetr import load_unetr_state, unetr_config_from_state

POS_EMBED = "image_encoder.pos_embed"
TINY_VIT_STEM = "image_encoder.patch_embed.seq.0.c.weight"


def infer_architecture(state: dict[str, torch.Tensor]) -> str:
    """The :data:`~samzoo.models.architectures.ARCHITECTURES` key whose encoder has these tensor shapes.

    ViT encoders by embedding width and number of blocks (vit_b 768 x 12, vit_l 1024 x 24,
    vit_h 1280 x 32); TinyViT encoders by their number of stages and stem width (vit_t: 4 from 64).

    Raises
    ------
    CheckpointError
        One line naming what was found, for any other layout.
    """
    if POS_EMBED in state:
        width = int(state[POS_EMBED].shape[-1])
        depth = len({m.group(1) for k in state if (m := re.match(r"image_encoder\.blocks\.(\d+)\.", k))})
        for name, arch in ARCHITECTURES.items():
            kwargs = arch.encoder_kwargs
            if arch.encoder == "vit" and (kwargs["embed_dim"], kwargs["depth"]) == (width, depth):
                return name
        raise CheckpointError(f"unknown SAM encoder: a ViT of width {width} with {depth} blocks "
                              "(known: vit_b 768 x 12, vit_l 1024 x 24, vit_h 1280 x 32)")
    if TINY_VIT_STEM in state:
        stages = len({m.group(1) for k in state if (m := re.match(r"image_encoder\.layers\.(\d+)\.", k))})
        stem_key = "image_encoder.patch_embed.seq.2.c.weight"
        stem = int(state[stem_key].shape[0]) if stem_key in state else None
        for name, arch in ARCHITECTURES.items():
            dims = arch.encoder_kwargs.get("embed_dims", [])
            if arch.encoder == "tiny_vit" and (len(dims), dims[0]) == (stages, stem):
                return name
        raise CheckpointError(f"unknown TinyViT encoder: {stages} stages, stem width {stem} "
                              "(known: vit_t, MobileSAM's 4 stages from 64 channels)")
    encoder = sorted(k for k in state if k.startswith("image_encoder."))[:3]
    raise CheckpointError("not a SAM state dict: no image_encoder.pos_embed (ViT) nor image_encoder.patch_embed.seq "
                          f"(TinyViT); found {len(state)} tensors, e.g. {', '.join(encoder or sorted(state)[:3])}")


def _sha256(path: str | os.PathLike) -> str:
    return pooch.file_hash(str(path), alg="sha256")


def load_sam_file(path: str | os.PathLike, *, decoder: str | os.PathLike | None = None,
                  input_size: int | None = None, weights_hash: str | None = None,
                  decoder_hash: str | None = None, name: str | None = None) -> SamzooModel:
    """A :class:`SamzooModel` from a SAM checkpoint or micro-sam file, with micro-sam's decoder when there is one.

    Parameters
    ----------
    path : path
        SAM weights: a plain state dict or a checkpoint with ``model_state`` (micro-sam's trainer);
        its ``decoder_state``, if any, becomes the AIS decoder.
    decoder : path, optional
        A separate decoder file (micro-sam's ``*_decoder.pt``, or a checkpoint holding
        ``decoder_state``); takes precedence over a decoder inside ``path``.
    input_size : int, optional
        TinyViT only; ViT encoders run at 1024.
    weights_hash, decoder_hash : str, optional
        Verified hashes (registry files): checked before reading, and the model's ``weights_hash``.
        Files by path are hashed here (sha256).
    name : str, optional
        The model's name (default: the file's stem).

    Raises
    ------
    CheckpointError, UnsafeCheckpointError, HashMismatchError
    """
    checkpoint = read_checkpoint(path, expected_hash=weights_hash)
    sam_state = _tensors_without_prefix(_unwrap(checkpoint, SAM_KEYS))
    decoder_state, decoder_source = None, f"{path} (decoder_state)"
    inner = next((checkpoint[k] for k in DECODER_KEYS if isinstance(checkpoint.get(k), dict)), None)
    if inner is not None:
        decoder_state = _tensors_without_prefix(inner)
    if decoder is not None:
        read = read_checkpoint(decoder, expected_hash=decoder_hash)
        decoder_state, decoder_source = _tensors_without_prefix(_unwrap(read, DECODER_KEYS)), str(decoder)
    architecture = infer_architecture(sam_state)
    size = input_size or ARCHITECTURES[architecture].fixed_input_size or 1024
    decoder_config = unetr_config_from_state(decoder_state) if decoder_state is not None else None
    model = SamzooModel(ModelConfig(architecture, size, ais_decoder=decoder_config, name=name or Path(path).stem,
                                    ais_decoder_type="unetr", sam_input=True))
    try:
        model.sam.load_state_dict(sam_state, strict=True)
    except RuntimeError as err:  # missing / unexpected keys, shape mismatches: first line of torch's report
        detail = " ".join(str(err).split())
        raise CheckpointError(f"{path} does not fit the {architecture} architecture: {detail[:400]}") from None
    if decoder_state is not None:
        load_unetr_state(model.ais_decoder, decoder_state, decoder_source)
    model.train(False)  # also rebuilds TinyViT's cached attention biases from the loaded weights
    own = weights_hash or f"sha256:{_sha256(path)}"
    if decoder is not None:
        # the embedding cache is keyed by this hash; the decoder is part of the model's identity
        extra = decoder_hash or f"sha256:{_sha256(decoder)}"
        own = "sha256:" + hashlib.sha256(f"{own}|{extra}".encode()).hexdigest()
    model.weights_hash = own
    return model
