"""The AIS package: one image of any size in, the AIS decoder's three maps out (TorchScript and ONNX weights too)."""

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
from samzoo.packaging.networks import AISNetwork, TiledAIS, TileNetwork
from samzoo.packaging.reader import sha256_of

MAP_CHANNELS = ("foreground", "center_distance", "boundary_distance")
ONNX_OPSET = 18


def _preprocessing(crop: np.ndarray, in_channels: int) -> list:
    """The bioimage.io preprocessing that does what :func:`samzoo.io.normalize.to_model_input` does
    (divided by 255): uint8 RGB is taken as it is; anything else maps the 1st..99.8th percentile
    of the whole sample (over all channels jointly) to [0, 1].

    Not clipped here: the network clips, and an affine, unclipped input lets it redo the
    percentiles when bioimageio.core padded the image before computing them
    (:class:`~samzoo.packaging.networks.TiledAIS`).
    """
    from bioimageio.spec.model import v0_5 as spec

    if _takes_rgb_as_is(crop, in_channels):
        return [spec.ScaleLinearDescr(kwargs=spec.ScaleLinearKwargs(gain=1 / 255))]
    axes = [spec.AxisId(a) for a in (("channel", "y", "x") if in_channels == 3 else ("y", "x"))]
    return [spec.ScaleRangeDescr(kwargs=spec.ScaleRangeKwargs(axes=axes, min_percentile=1.0, max_percentile=99.8))]


def _takes_rgb_as_is(crop: np.ndarray, in_channels: int) -> bool:
    return in_channels == 3 and crop.dtype == np.uint8


def sample_crop_shape(size: int) -> tuple[int, int]:
    """``(height, width)`` of the AIS package's test input: non-square and more than one tile, so
    ``bioimageio test`` checks the tiling inside the network, not only one tile."""
    return size + size // 4, size + size // 2


def build_ais_description(model: SamzooModel, image: np.ndarray, meta: dict, card_body: str, folder: Path,
                          image_description: str):
    """The bioimage.io description of the AIS package (files written to ``folder``).

    Parameters
    ----------
    model : SamzooModel
        With an AIS decoder.
    image : ndarray (H, W) or (H, W, C)
        A real image; its central :func:`sample_crop_shape` crop becomes the test input.
    meta : dict
        Card metadata (description, authors, maintainers, cite, license, tags).
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
    size, halo = model.input_size, model.input_size // 8
    crop = samples.central_crop(image, *sample_crop_shape(size))
    if crop.ndim == 3 and crop.shape[-1] not in (1, 3):
        raise PackageError(f"the AIS package takes 1 or 3 channels, the test image has {crop.shape[-1]}")
    if crop.ndim == 3 and crop.shape[-1] == 3 and getattr(model, "grey_input", False):
        # samzoo's own models see colour images as grey (luma, inverted on bright backgrounds, a
        # decision over the whole image): their package takes the grey image
        from samzoo.io.normalize import colour_to_grey

        crop = colour_to_grey(crop)
    crop = crop[..., 0] if crop.ndim == 3 and crop.shape[-1] == 1 else crop
    in_channels = 3 if crop.ndim == 3 else 1
    # the expected output is samzoo's own result on the crop (its default tiling): consumers must reproduce it
    maps = ais_maps(model, compute_embeddings(model, crop, tile_size=size, halo=halo, cache=False))
    labels = watershed_from_maps(maps, **WATERSHED_DEFAULTS)
    kwargs = {**architecture_kwargs(model), "in_channels": in_channels, "halo": halo,
              "renormalise": not _takes_rgb_as_is(crop, in_channels)}
    network = AISNetwork(**kwargs).eval()
    network.load_state_dict(model.state_dict())
    image_files, maps_files = tensor_files(folder, "image", samples.channels_first(crop)), \
        tensor_files(folder, "maps", maps[None])
    torchscript, onnx = write_torchscript(network, folder / "weights_torchscript.pt"), \
        write_onnx(network, folder / "weights.onnx")
    channel_names = ["red", "green", "blue"] if in_channels == 3 else ["intensity"]
    # any size from one tile up, in steps of the halo; the output halo tells consumers that cut
    # images into blocks (bioimageio.core's blockwise prediction, ilastik, deepImageJ) to overlap them
    spatial = spec.ParameterizedSize(min=size, step=halo)
    inputs = [spec.InputTensorDescr(
        id=spec.TensorId("image"), description="raw image of any size, normalised by the preprocessing",
        axes=[spec.BatchAxis(size=1), spec.ChannelAxis(channel_names=[spec.Identifier(c) for c in channel_names]),
              spec.SpaceInputAxis(id=spec.AxisId("y"), size=spatial),
              spec.SpaceInputAxis(id=spec.AxisId("x"), size=spatial)],
        **image_files, data=spec.IntervalOrRatioDataDescr(type="float32"),
        preprocessing=_preprocessing(crop, in_channels))]

    def output_axis(axis: str):
        return spec.SpaceOutputAxisWithHalo(id=spec.AxisId(axis), halo=halo,
                                            size=spec.SizeReference(tensor_id=spec.TensorId("image"),
                                                                    axis_id=spec.AxisId(axis)))

    outputs = [spec.OutputTensorDescr(
        id=spec.TensorId("maps"), description="foreground, centre distance, boundary distance (watershed inputs)",
        axes=[spec.BatchAxis(size=1), spec.ChannelAxis(channel_names=[spec.Identifier(c) for c in MAP_CHANNELS]),
              output_axis("y"), output_axis("x")],
        **maps_files, data=spec.IntervalOrRatioDataDescr(type="float32", range=(0.0, 1.0)))]
    weights = spec.WeightsDescr(
        pytorch_state_dict=state_dict_weights(network, "AISNetwork", kwargs, folder),
        torchscript=spec.TorchscriptWeightsDescr(source=torchscript, sha256=spec.Sha256(sha256_of(torchscript)),
                                                 pytorch_version=spec.Version(torch.__version__),
                                                 parent="pytorch_state_dict"),
        onnx=spec.OnnxWeightsDescr(source=onnx, sha256=spec.Sha256(sha256_of(onnx)), opset_version=ONNX_OPSET,
                                   parent="pytorch_state_dict"))
    side = min(crop.shape[:2])  # the cover is 2:1: a square of the test crop and its objects
    cover = samples.write_cover(samples.central_crop(crop, side, side), samples.central_crop(labels, side, side),
                                folder / "cover.png")
    doc = folder / "documentation.md"
    doc.write_text(package_documentation("ais", card_body, model.config, in_channels=in_channels,
                                         image_description=image_description,
                                         package=f"{model.name}_ais.bioimageio.zip",
                                         renormalise=kwargs["renormalise"]), encoding="utf-8")
    return spec.ModelDescr(
        name=f"{model.name} AIS", inputs=inputs, outputs=outputs, weights=weights, covers=[file_descr(cover)],
        documentation=file_descr(doc), **spec_metadata(meta, "ais"),
        config=spec.Config(samzoo={"kind": "ais", "model": kwargs, "tiling": {"tile_size": size, "halo": halo},
                                   "watershed": WATERSHED_DEFAULTS}))


def _tile_network(network: AISNetwork) -> TileNetwork:
    """The encoder and AIS decoder of ``network`` as a :class:`TileNetwork`, for export.

    SAM's prompt encoder and mask decoder (most of a small model's weights) stay out: they are
    in the state dict, for samzoo.
    """
    slim = copy.deepcopy(network)
    slim.sam.prompt_encoder, slim.sam.mask_decoder = torch.nn.Module(), torch.nn.Module()
    return TileNetwork(slim).eval()


def write_torchscript(network: AISNetwork, path: Path) -> Path:
    """The TorchScript form of ``network``: samzoo's tiling (scripted) around the traced tile network.

    The tile network always sees ``input_size`` pixels, so tracing it at that size is exact;
    the tiling loop depends on the image size, so it is scripted, not traced.
    """
    size = network.input_size
    with torch.no_grad(), warnings.catch_warnings():
        # torch.jit is deprecated in favour of torch.export, but TorchScript is what bioimage.io consumers run
        warnings.simplefilter("ignore")
        example = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)) * 255
        traced = torch.jit.trace(_tile_network(network), example)
        torch.jit.script(TiledAIS(traced, size, network.halo, network.renormalise)).save(str(path))
    return path


def write_onnx(network: AISNetwork, path: Path) -> Path:
    """The ONNX form of ``network`` (:class:`~samzoo.packaging.onnx_network.GatheredAIS`): any height
    and width of at least three halos, the same maps as the TorchScript form."""
    from samzoo.packaging.onnx_network import GatheredAIS, export_onnx

    height, width = sample_crop_shape(network.input_size)
    example = torch.rand(1, network.in_channels, height, width, generator=torch.Generator().manual_seed(0))
    tiled = GatheredAIS(_tile_network(network), network.input_size, network.halo, network.renormalise).eval()
    return export_onnx(tiled, path, example, min_size=3 * network.halo, opset=ONNX_OPSET)
