"""The AIS package: one image in, the AIS decoder's three maps out (TorchScript weights too)."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import numpy as np
import torch

from samzoo.errors import PackageError
from samzoo.models.model import SamzooModel
from samzoo.packaging import samples
from samzoo.packaging.descriptions import (architecture_kwargs, file_descr, spec_metadata, state_dict_weights,
                                           tensor_files)
from samzoo.packaging.documentation import WATERSHED_DEFAULTS, package_documentation
from samzoo.packaging.networks import AISNetwork
from samzoo.packaging.reader import sha256_of

MAP_CHANNELS = ("foreground", "center_distance", "boundary_distance")


def _preprocessing(crop: np.ndarray, in_channels: int) -> list:
    """The bioimage.io preprocessing that does what :func:`samzoo.io.normalize.to_model_input` does
    (divided by 255): uint8 RGB is taken as it is; anything else maps its 1st..99.8th percentile
    (over all channels jointly) to [0, 1], clipped."""
    from bioimageio.spec.model import v0_5 as spec

    if in_channels == 3 and crop.dtype == np.uint8:
        return [spec.ScaleLinearDescr(kwargs=spec.ScaleLinearKwargs(gain=1 / 255))]
    axes = [spec.AxisId(a) for a in (("channel", "y", "x") if in_channels == 3 else ("y", "x"))]
    return [spec.ScaleRangeDescr(kwargs=spec.ScaleRangeKwargs(axes=axes, min_percentile=1.0, max_percentile=99.8)),
            spec.ClipDescr(kwargs=spec.ClipKwargs(min=0.0, max=1.0))]


def build_ais_description(model: SamzooModel, image: np.ndarray, meta: dict, card_body: str, folder: Path,
                          image_description: str):
    """The bioimage.io description of the AIS package (files written to ``folder``).

    Parameters
    ----------
    model : SamzooModel
        With an AIS decoder.
    image : ndarray (H, W) or (H, W, C)
        A real image; its central ``input_size`` square becomes the test input.
    meta : dict
        Card metadata (description, authors, cite, license, tags).
    card_body : str
        The card's Markdown, for the documentation.
    folder : Path
        Where the package's files are written before they are zipped.
    image_description : str
        Where ``image`` came from.

    Returns
    -------
    bioimageio.spec.model.v0_5.ModelDescr
    """
    from bioimageio.spec.model import v0_5 as spec

    from samzoo.segmentation.ais import ais_maps
    from samzoo.segmentation.embeddings import compute_embeddings
    from samzoo.segmentation.watershed import watershed_from_maps

    if model.ais_decoder is None:
        raise PackageError(f"model {model.name!r} has no AIS decoder, so it has no AIS package "
                           "(finetune one with `samzoo finetune`); its prompt package can still be built")
    size = model.input_size
    crop = samples.square_crop(image, size)
    in_channels = 3 if crop.ndim == 3 and crop.shape[-1] == 3 else 1
    if crop.ndim == 3 and crop.shape[-1] not in (1, 3):
        raise PackageError(f"the AIS package takes 1 or 3 channels, the test image has {crop.shape[-1]}")
    # the expected output is samzoo's own result on the crop: consumers must reproduce it
    maps = ais_maps(model, compute_embeddings(model, crop, cache=False))
    labels = watershed_from_maps(maps, **WATERSHED_DEFAULTS)
    network = AISNetwork(**architecture_kwargs(model), in_channels=in_channels).eval()
    network.load_state_dict(model.state_dict())
    raw = samples.channels_first(crop)
    image_files, maps_files = tensor_files(folder, "image", raw), tensor_files(folder, "maps", maps[None])
    torchscript = folder / "weights_torchscript.pt"
    with torch.no_grad(), warnings.catch_warnings():
        # the trace is for this one fixed input shape, which is what the tracer warns about;
        # torch.jit is deprecated in favour of torch.export, but TorchScript is what bioimage.io consumers run
        warnings.simplefilter("ignore")
        example = torch.from_numpy(samples.channels_first(crop.astype(np.float32) / max(float(crop.max()), 1.0)))
        slim = copy.deepcopy(network)
        # the TorchScript file runs the encoder and AIS decoder only: SAM's prompt encoder and mask
        # decoder (most of a small model's weights) stay in the state dict, for samzoo
        slim.sam.prompt_encoder, slim.sam.mask_decoder = torch.nn.Module(), torch.nn.Module()
        torch.jit.trace(slim, example).save(str(torchscript))
    channel_names = ["red", "green", "blue"] if in_channels == 3 else ["intensity"]
    kwargs = {**architecture_kwargs(model), "in_channels": in_channels}
    inputs = [spec.InputTensorDescr(
        id=spec.TensorId("image"), description="raw image, normalised by the preprocessing",
        axes=[spec.BatchAxis(size=1), spec.ChannelAxis(channel_names=[spec.Identifier(c) for c in channel_names]),
              spec.SpaceInputAxis(id=spec.AxisId("y"), size=size), spec.SpaceInputAxis(id=spec.AxisId("x"), size=size)],
        **image_files, data=spec.IntervalOrRatioDataDescr(type="float32"),
        preprocessing=_preprocessing(crop, in_channels))]
    outputs = [spec.OutputTensorDescr(
        id=spec.TensorId("maps"), description="foreground, centre distance, boundary distance (watershed inputs)",
        axes=[spec.BatchAxis(size=1), spec.ChannelAxis(channel_names=[spec.Identifier(c) for c in MAP_CHANNELS]),
              spec.SpaceOutputAxis(id=spec.AxisId("y"), size=size), spec.SpaceOutputAxis(id=spec.AxisId("x"), size=size)],
        **maps_files, data=spec.IntervalOrRatioDataDescr(type="float32", range=(0.0, 1.0)))]
    weights = spec.WeightsDescr(
        pytorch_state_dict=state_dict_weights(network, "AISNetwork", kwargs, folder),
        torchscript=spec.TorchscriptWeightsDescr(source=torchscript, sha256=spec.Sha256(sha256_of(torchscript)),
                                                 pytorch_version=spec.Version(torch.__version__),
                                                 parent="pytorch_state_dict"))
    cover = samples.write_cover(crop, labels, folder / "cover.png")
    doc = folder / "documentation.md"
    doc.write_text(package_documentation("ais", card_body, model.config, in_channels=in_channels,
                                         image_description=image_description), encoding="utf-8")
    return spec.ModelDescr(
        name=f"{model.name} AIS", inputs=inputs, outputs=outputs, weights=weights, covers=[file_descr(cover)],
        documentation=file_descr(doc), **spec_metadata(meta, "ais"),
        config=spec.Config(samzoo={"kind": "ais", "model": kwargs, "watershed": WATERSHED_DEFAULTS}))
