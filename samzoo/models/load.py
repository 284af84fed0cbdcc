"""`load_model`: a ready-to-run :class:`SamzooModel` from a registry name, alias or file."""

from __future__ import annotations

from pathlib import Path

import pooch

from samzoo.errors import CheckpointError, UnknownModelError, UnsafeCheckpointError
from samzoo.models.checkpoint import load_state_dict
from samzoo.models.model import ModelConfig, SamzooModel, load_samzoo_file
from samzoo.zoo.fetch import fetch_model_file
from samzoo.zoo.registry import DEFAULT_MODEL, get_model_spec


def load_model(model: str | Path | None = None, *, device: str = "cpu", mirror: str | None = None,
               input_size: int | None = None) -> SamzooModel:
    """Load a model by registry name, alias (bioimage.io nickname or id), file or package path.

    Parameters
    ----------
    model : str or Path, optional
        ``None`` for the default model (samzoo's own, shipped in the package, offline).
        A registry name such as ``"vit_b_lm"``, a bioimage.io nickname such as
        ``"diplomatic-bug"`` or id with version (``"diplomatic-bug/1.2"``) is fetched (see
        :func:`samzoo.zoo.fetch.fetch_model_file`) and hash-checked. A path may be a samzoo
        ``.safetensors`` file or a bioimage.io model package (zip, folder or ``rdf.yaml``; see
        :func:`samzoo.packaging.reader.load_package`); published SAM checkpoints load by registry
        name, because their files do not say which architecture they are.
    device : str
    mirror : str, optional
        Folder or URL to fetch from instead of upstream.
    input_size : int, optional
        For TinyViT models: the tile size to build the model for (weights do not depend on it).

    Returns
    -------
    SamzooModel, in eval mode, with ``weights_hash`` set (it keys the embedding cache).
    """
    model = DEFAULT_MODEL if model is None else model
    path = Path(model)
    if path.suffix == ".safetensors" and path.is_file():
        loaded = load_samzoo_file(path, weights_hash="sha256:" + pooch.file_hash(str(path), alg="sha256"))
        return _resized(loaded, input_size).to(device)
    if path.exists():
        from samzoo.packaging.reader import is_package, load_package  # imported late: packaging imports models

        if is_package(path):
            return _resized(load_package(path), input_size).to(device)
    try:
        spec = get_model_spec(str(model))
    except UnknownModelError:
        if path.exists():
            raise CheckpointError(f"{path}: only samzoo .safetensors model files and bioimage.io packages (zip, "
                                  "folder or rdf.yaml) load by path; load published SAM checkpoints by their "
                                  "registry name") from None
        raise
    file = fetch_model_file(spec, mirror=mirror)
    if spec.kind == "sam+ais":
        loaded = load_samzoo_file(file, weights_hash=spec.hash)
        return _resized(loaded, input_size).to(device)
    if spec.kind != "sam":
        raise CheckpointError(f"{spec.name} is an AIS decoder; load the SAM model it belongs to instead")
    sam_model = SamzooModel(ModelConfig(spec.architecture, input_size or 1024, ais_decoder=None, name=spec.name))
    try:
        sam_model.sam.load_state_dict(load_state_dict(file, expected_hash=spec.hash), strict=True)
    except UnsafeCheckpointError:
        raise
    except RuntimeError as err:  # load_state_dict's key/shape mismatches
        raise CheckpointError(f"{file} does not fit the {spec.architecture} architecture: {err}") from None
    sam_model.weights_hash = spec.hash
    return sam_model.eval().to(device)


def _resized(model: SamzooModel, input_size: int | None) -> SamzooModel:
    """The same weights in a model built for another input size (TinyViT encoders only)."""
    if input_size is None or input_size == model.input_size:
        return model
    config = ModelConfig(**{**model.config.__dict__, "input_size": input_size})
    resized = SamzooModel(config)
    resized.load_state_dict(model.state_dict())
    resized.weights_hash = model.weights_hash
    return resized.eval()
