"""`SamzooModel`: a SAM (encoder + prompt encoder + mask decoder) with an optional AIS decoder.

samzoo's own weights are one safetensors file: tensors under ``sam.*`` and ``ais_decoder.*``,
and the architecture as JSON in the file's metadata, so a file describes itself and loading
never unpickles anything.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, safe_open, save_file
from segment_anything.modeling import Sam

from samzoo.errors import CheckpointError
from samzoo.models.ais_decoder import AISDecoder
from samzoo.models.architectures import build_sam
from samzoo.models.unetr import UNETRDecoder

FORMAT = "samzoo-model-1"


@dataclass
class ModelConfig:
    """Everything needed to rebuild a :class:`SamzooModel` before loading its weights."""

    architecture: str
    input_size: int
    ais_decoder: dict | None = field(default_factory=dict)  # AISDecoder kwargs; None: no decoder
    name: str = ""
    training: dict = field(default_factory=dict)  # free-form provenance, stored with the weights
    # "samzoo": samzoo's AISDecoder; "unetr": micro-sam's UNETR decoder (samzoo.models.unetr)
    ais_decoder_type: str = "samzoo"
    # SAM's own input handling, as SAM and micro-sam do it (samzoo.segmentation.sam_input): min-max
    # to uint8, each tile resized to the input size on its longest side, padded after normalising.
    # False: samzoo's (percentile normalisation, tiles padded at their own size); its models are trained so.
    sam_input: bool = False
    # median object diameter (pixels) the model was trained to segment; scale="auto" rescales
    # images to it. None: not recorded (models trained before 2026-12), DEFAULT_OBJECT_DIAMETER.
    object_diameter: float | None = None


class SamzooModel(torch.nn.Module):
    """A SAM model and (optionally) its AIS decoder, with the config that built them.

    Attributes
    ----------
    sam : segment_anything.modeling.Sam
    ais_decoder : AISDecoder, UNETRDecoder or None
        samzoo's own decoder, or micro-sam's (``config.ais_decoder_type``).
    config : ModelConfig
    weights_hash : str
        ``sha256:...`` of the file the weights came from ('' for an in-memory model); part of
        the embedding-cache key.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.sam: Sam = build_sam(config.architecture, config.input_size)
        self.ais_decoder = _build_decoder(config)
        self.weights_hash = ""

    @property
    def grey_input(self) -> bool:
        """Whether colour images are turned into one channel before this model sees them.

        samzoo's own models were trained on grey images (colour converted by
        :func:`samzoo.io.normalize.colour_to_grey`); SAM-family models were trained on RGB.
        """
        return self.config.architecture.startswith("samzoo")

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """``torch.nn.Module.load_state_dict``, then refresh caches derived from the weights.

        TinyViT (vit_t, samzoo_tiny) caches its attention biases in a buffer whenever the module
        enters eval mode; weights loaded into a model that is already in eval mode would leave
        that cache holding the old (e.g. random) biases. Re-entering the current mode rebuilds it.
        """
        result = super().load_state_dict(state_dict, strict=strict, assign=assign)
        self.train(self.training)
        return result

    @property
    def input_size(self) -> int:
        """Side of the square model input (the tile size) in pixels."""
        return self.config.input_size

    @property
    def name(self) -> str:
        return self.config.name or self.config.architecture

    def preprocess(self, image: torch.Tensor) -> torch.Tensor:
        """Pad ``(B, 3, H, W)`` 0..255 images to the input size, then normalise like SAM.

        Unlike ``Sam.preprocess``, padding is black (0) *before* normalisation: that is what
        tiles running past the image edge look like during training.
        """
        size = self.input_size
        if image.shape[-2] > size or image.shape[-1] > size:
            raise ValueError(f"image {tuple(image.shape[-2:])} is larger than the model input {size}")
        image = torch.nn.functional.pad(image, (0, size - image.shape[-1], 0, size - image.shape[-2]))
        return (image - self.sam.pixel_mean) / self.sam.pixel_std

    def save(self, path: str | os.PathLike, *, half: bool = True) -> Path:
        """Write weights and config to one safetensors file, atomically."""
        path = Path(path)
        tensors = {k: (v.half() if half and v.is_floating_point() else v).contiguous()
                   for k, v in self.state_dict().items()}
        metadata = {"format": FORMAT, "config": json.dumps(asdict(self.config))}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            save_file(tensors, tmp, metadata=metadata)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return path


def _build_decoder(config: ModelConfig) -> torch.nn.Module | None:
    if config.ais_decoder is None:
        return None
    if config.ais_decoder_type == "unetr":
        return UNETRDecoder(**config.ais_decoder)
    if config.ais_decoder_type != "samzoo":
        raise CheckpointError(f"unknown AIS decoder type {config.ais_decoder_type!r} (known: samzoo, unetr)")
    return AISDecoder(**config.ais_decoder)


def read_config(path: str | os.PathLike) -> ModelConfig:
    """Read the :class:`ModelConfig` stored in a samzoo safetensors file."""
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except Exception as err:  # safetensors raises its own error types for corrupt headers
        raise CheckpointError(f"{path} is not a readable safetensors file: {err}") from err
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a samzoo model file (no '{FORMAT}' metadata)")
    return ModelConfig(**json.loads(metadata["config"]))


def load_samzoo_file(path: str | os.PathLike, *, weights_hash: str = "") -> SamzooModel:
    """Build a :class:`SamzooModel` from a samzoo safetensors file (hash already verified by the caller)."""
    model = SamzooModel(read_config(path))
    state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(path)).items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"{path} does not match its own architecture: {err}") from err
    model.weights_hash = weights_hash
    return model.eval()
