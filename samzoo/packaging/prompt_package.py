"""The prompt package: image + optional prompts in; masks, IoU scores and the embedding out.

The tensor layout of micro-sam's bioimage.io exports, so tools that run those run these.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from samzoo.io.normalize import to_model_input
from samzoo.models.model import SamzooModel
from samzoo.packaging import samples
from samzoo.packaging.descriptions import (architecture_kwargs, file_descr, spec_metadata, state_dict_weights,
                                           tensor_files)
from samzoo.packaging.documentation import package_documentation
from samzoo.packaging.networks import PromptNetwork


def _prompt_source_labels(model: SamzooModel, crop: np.ndarray, labels: np.ndarray | None,
                          size: int) -> np.ndarray:
    """Instances of the test crop to take prompts from: the given labels, else the model's AIS
    result, else (no decoder, or an untrained one that finds nothing) the classical baseline."""
    if labels is not None:
        return samples.square_crop(labels, size)
    if model.ais_decoder is not None:
        from samzoo.segmentation.ais import segment_ais

        found = segment_ais(model, crop, min_size=samples.MIN_PROMPT_AREA)
        if found.max() > 0:
            return found
    from samzoo.segmentation.classical import classical_baseline

    return classical_baseline(crop if crop.ndim == 2 else crop.mean(-1))


def build_prompt_description(model: SamzooModel, image: np.ndarray, meta: dict, card_body: str, folder: Path,
                             image_description: str, labels: np.ndarray | None = None):
    """The bioimage.io description of the prompt package (files written to ``folder``).

    Parameters
    ----------
    model, image, meta, card_body, folder, image_description
        As for :func:`samzoo.packaging.ais_package.build_ais_description`.
    labels : ndarray (H, W), optional
        Instances of ``image`` to take the test prompts from; default: the model's own AIS
        result, or the classical baseline for models without an AIS decoder.

    Returns
    -------
    bioimageio.spec.model.v0_5.ModelDescr
    """
    from bioimageio.spec.model import v0_5 as spec

    size = model.input_size
    grid = size // 16
    crop = samples.square_crop(image, size)
    prompts = samples.prompts_from_labels(_prompt_source_labels(model, crop, labels, size), 4 * grid)
    network = PromptNetwork(**architecture_kwargs(model)).eval()
    network.load_state_dict(model.state_dict())
    image_in = to_model_input(crop)[None]
    with torch.no_grad():
        masks, scores, embeddings = network(*(torch.from_numpy(a) for a in (
            image_in, prompts.boxes, prompts.points, prompts.point_labels, prompts.masks)))
    arrays = {"image": image_in, "box_prompts": prompts.boxes, "point_prompts": prompts.points,
              "point_labels": prompts.point_labels, "mask_prompts": prompts.masks, "embeddings": embeddings.numpy(),
              "masks": masks.numpy(), "scores": scores.numpy()}
    files = {k: tensor_files(folder, k, v) for k, v in arrays.items()}
    any_size = spec.ParameterizedSize(min=1, step=1)
    image_size = spec.ParameterizedSize(min=16, step=16)

    def objects():
        return spec.IndexInputAxis(id=spec.AxisId("object"), size=any_size)

    def names(*n):
        return [spec.Identifier(x) for x in n]

    def ref(axis: str):
        return spec.SizeReference(tensor_id=spec.TensorId("image"), axis_id=spec.AxisId(axis))

    batch = spec.BatchAxis(size=1)
    inputs = [
        spec.InputTensorDescr(id=spec.TensorId("image"), description="0..255, RGB (grey: three equal channels)",
                              axes=[batch, spec.ChannelAxis(channel_names=names("R", "G", "B")),
                                    spec.SpaceInputAxis(id=spec.AxisId("y"), size=image_size),
                                    spec.SpaceInputAxis(id=spec.AxisId("x"), size=image_size)],
                              **files["image"], data=spec.IntervalOrRatioDataDescr(type="float32")),
        spec.InputTensorDescr(id=spec.TensorId("box_prompts"), optional=True, description="xmin, ymin, xmax, ymax",
                              axes=[batch, objects(), spec.ChannelAxis(channel_names=names("xmin", "ymin", "xmax", "ymax"))],
                              **files["box_prompts"], data=spec.IntervalOrRatioDataDescr(type="float32")),
        spec.InputTensorDescr(id=spec.TensorId("point_prompts"), optional=True, description="x, y per point",
                              axes=[batch, objects(), spec.IndexInputAxis(id=spec.AxisId("point"), size=any_size),
                                    spec.ChannelAxis(channel_names=names("x", "y"))],
                              **files["point_prompts"], data=spec.IntervalOrRatioDataDescr(type="float32")),
        spec.InputTensorDescr(id=spec.TensorId("point_labels"), optional=True,
                              description="1 positive, 0 negative, -1 padding",
                              axes=[batch, objects(), spec.IndexInputAxis(id=spec.AxisId("point"), size=any_size)],
                              **files["point_labels"], data=spec.IntervalOrRatioDataDescr(type="int64")),
        spec.InputTensorDescr(id=spec.TensorId("mask_prompts"), optional=True, description="low-resolution mask logits",
                              axes=[batch, objects(), spec.ChannelAxis(channel_names=names("logits")),
                                    spec.SpaceInputAxis(id=spec.AxisId("y"), size=4 * grid),
                                    spec.SpaceInputAxis(id=spec.AxisId("x"), size=4 * grid)],
                              **files["mask_prompts"], data=spec.IntervalOrRatioDataDescr(type="float32")),
        spec.InputTensorDescr(id=spec.TensorId("embeddings"), optional=True, description="a previous image embedding",
                              axes=[batch, spec.ChannelAxis(channel_names=names(*(f"c{i}" for i in range(256)))),
                                    spec.SpaceInputAxis(id=spec.AxisId("y"), size=grid),
                                    spec.SpaceInputAxis(id=spec.AxisId("x"), size=grid)],
                              **files["embeddings"], data=spec.IntervalOrRatioDataDescr(type="float32")),
    ]
    object_out = spec.IndexOutputAxis(id=spec.AxisId("object"), size=spec.DataDependentSize())
    outputs = [
        spec.OutputTensorDescr(id=spec.TensorId("masks"), description="one 0/1 mask per object",
                               axes=[batch, object_out, spec.ChannelAxis(channel_names=names("mask")),
                                     spec.SpaceOutputAxis(id=spec.AxisId("y"), size=ref("y")),
                                     spec.SpaceOutputAxis(id=spec.AxisId("x"), size=ref("x"))],
                               **files["masks"], data=spec.IntervalOrRatioDataDescr(type="uint8")),
        spec.OutputTensorDescr(id=spec.TensorId("scores"), description="predicted IoU per mask",
                               axes=[batch, object_out, spec.ChannelAxis(channel_names=names("iou"))],
                               **files["scores"], data=spec.IntervalOrRatioDataDescr(type="float32")),
        spec.OutputTensorDescr(id=spec.TensorId("embeddings"), description="the image embedding",
                               axes=[batch, spec.ChannelAxis(channel_names=names(*(f"c{i}" for i in range(256)))),
                                     spec.SpaceOutputAxis(id=spec.AxisId("y"), size=grid),
                                     spec.SpaceOutputAxis(id=spec.AxisId("x"), size=grid)],
                               **files["embeddings"], data=spec.IntervalOrRatioDataDescr(type="float32")),
    ]
    kwargs = architecture_kwargs(model)
    weights = spec.WeightsDescr(pytorch_state_dict=state_dict_weights(network, "PromptNetwork", kwargs, folder))
    painted = np.zeros((size, size), dtype=np.int32)
    for i in np.argsort(-masks[0, :, 0].sum((1, 2)).numpy()):  # largest first: small objects stay visible
        painted[masks[0, i, 0].numpy() > 0] = i + 1
    cover = samples.write_cover(crop, painted, folder / "cover.png", boxes=prompts.boxes[0])
    doc = folder / "documentation.md"
    doc.write_text(package_documentation("prompt", card_body, model.config, in_channels=3,
                                         image_description=image_description), encoding="utf-8")
    return spec.ModelDescr(
        name=f"{model.name} prompts", inputs=inputs, outputs=outputs, weights=weights, covers=[file_descr(cover)],
        documentation=file_descr(doc), **spec_metadata(meta, "prompt"),
        config=spec.Config(samzoo={"kind": "prompt", "model": kwargs}))
