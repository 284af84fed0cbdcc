"""The ``nn.Module``\\ s that samzoo's bioimage.io packages describe.

A bioimage.io ``pytorch_state_dict`` entry names a class and its keyword arguments; a consumer
with samzoo installed (bioimageio.core's predict, ``bioimageio test``) builds it with
``import_from: samzoo.packaging.networks`` and loads the package's weights into it. Both
classes *are* :class:`~samzoo.models.model.SamzooModel`\\ s (same parameters, same state-dict
keys ``sam.*`` and ``ais_decoder.*``), so every samzoo package holds the complete model and
samzoo loads either one back into a :class:`SamzooModel`.

- :class:`AISNetwork`: one normalised image in, the AIS decoder's three maps out. Plain tensor
  operations only, so it is also exported as TorchScript for consumers without samzoo.
- :class:`PromptNetwork`: image plus optional point, box and mask prompts in; masks, IoU
  scores and the image embedding out, in the tensor layout of micro-sam's bioimage.io exports.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from samzoo.models.model import ModelConfig, SamzooModel


def _config(architecture: str, input_size: int, ais_decoder: dict | None, name: str) -> ModelConfig:
    return ModelConfig(architecture=architecture, input_size=input_size, ais_decoder=ais_decoder, name=name)


class AISNetwork(SamzooModel):
    """Encoder + AIS decoder as one network: ``(B, C, S, S)`` image in [0, 1] -> ``(B, 3, S, S)`` maps.

    Parameters
    ----------
    architecture, input_size, ais_decoder, name
        The :class:`~samzoo.models.model.ModelConfig` fields (``ais_decoder`` must not be None).
    in_channels : int
        1 (grey: repeated to the 3 channels SAM expects) or 3 (RGB).

    Notes
    -----
    The input is what samzoo's :func:`~samzoo.io.normalize.to_model_input` produces divided by
    255, i.e. the 1st..99.8th percentile range mapped to [0, 1] and clipped; the packages do
    this with bioimage.io's ``scale_range`` + ``clip`` preprocessing. The image embedding is
    rounded through float16 because samzoo's embedding cache stores it so: the package then
    reproduces :func:`samzoo.segmentation.ais.ais_maps` to float rounding (samzoo runs the
    decoder channels-last), not just approximately.
    """

    def __init__(self, architecture: str, input_size: int, ais_decoder: dict, in_channels: int = 1,
                 name: str = "") -> None:
        if ais_decoder is None:
            raise ValueError("AISNetwork needs an AIS decoder configuration")
        if in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 or 3, got {in_channels}")
        super().__init__(_config(architecture, input_size, ais_decoder, name))
        self.in_channels = in_channels

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Foreground, centre distance and boundary distance, each in [0, 1].

        Parameters
        ----------
        image : Tensor (B, in_channels, S, S) float32 in [0, 1], ``S = input_size``

        Returns
        -------
        Tensor (B, 3, S, S) float32
        """
        x = image.float() * 255.0
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        x = self.preprocess(x)
        embedding = self.sam.image_encoder(x).half().float()
        return self.ais_decoder(embedding, x)


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
