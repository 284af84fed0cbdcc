"""`load_model`: a ready-to-run :class:`SamzooModel` from a registry name, alias or file."""

from __future__ import annotations

from pathlib import Path

import pooch

from samzoo.errors import CheckpointError
from samzoo.models.model import ModelConfig, SamzooModel, load_samzoo_file
from samzoo.models.sam_files import load_sam_file
from samzoo.zoo.fetch import fetch_model_file
from samzoo.zoo.registry import DEFAULT_MODEL, decoder_for, get_model_spec


def load_model(model: str | Path | None = None, *, device: str = "cpu", mirror: str | None = None,
               input_size: int | None = None, decoder: str | Path | bool | None = None) -> SamzooModel:
    """Load a model by registry name, alias (bioimage.io nickname or id), file or package path.

    Parameters
    ----------
    model : str or Path, optional
        ``None`` for the default model (samzoo's own, shipped in the package, offline).
        A registry name such as ``"vit_b_lm"``, a bioimage.io nickname such as
        ``"diplomatic-bug"`` or id with version (``"diplomatic-bug/1.2"``) is fetched (see
        :func:`samzoo.zoo.fetch.fetch_model_file`) and hash-checked. A path may be a samzoo
        ``.safetensors`` file or a bioimage.io model package (zip, folder or ``rdf.yaml``; see
        :func:`samzoo.packaging.reader.load_package`), an official SAM checkpoint
        (``sam_vit_b_01ec64.pth``), micro-sam's published SAM weights (``vit_b.pt``) or a micro-sam
        training checkpoint (``model_state`` + ``decoder_state``): the architecture is read from
        the tensor shapes (:func:`samzoo.models.sam_files.load_sam_file`).
    decoder : str, Path or bool, optional
        micro-sam's AIS decoder (UNETR): a file (``vit_b_decoder.pt``, or a checkpoint with
        ``decoder_state``). For a registry SAM model, ``None`` fetches the decoder the registry
        lists for it (``<name>_decoder``, as micro-sam does) and ``False`` loads none.
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
    decoder_path = decoder if isinstance(decoder, (str, Path)) else None
    if decoder_path is not None and not Path(decoder_path).is_file():
        raise CheckpointError(f"decoder file {decoder_path} does not exist")
    if path.suffix == ".safetensors" and path.is_file():
        if decoder_path is not None:
            raise CheckpointError(f"--decoder goes with SAM checkpoints and micro-sam files, not with {path.name}, "
                                  "which carries its own decoder")
        loaded = load_samzoo_file(path, weights_hash="sha256:" + pooch.file_hash(str(path), alg="sha256"))
        return _resized(loaded, input_size).to(device)
    if path.exists():
        from samzoo.packaging.reader import is_package, load_package  # imported late: packaging imports models

        if is_package(path):
            return _resized(load_package(path), input_size).to(device)
    if path.is_file():
        return load_sam_file(path, decoder=decoder_path, input_size=input_size).to(device)
    if path.exists():
        raise CheckpointError(f"{path} is a folder but not a bioimage.io package (no rdf.yaml)")
    spec = get_model_spec(str(model))
    file = fetch_model_file(spec, mirror=mirror)
    if spec.kind == "sam+ais":
        loaded = load_samzoo_file(file, weights_hash=spec.hash)
        return _resized(loaded, input_size).to(device)
    if spec.kind != "sam":
        raise CheckpointError(f"{spec.name} is an AIS decoder; load the SAM model it belongs to instead")
    decoder_spec = decoder_for(spec) if decoder is None else None
    if decoder_spec is not None:  # micro-sam fetches a model's decoder with it, too
        decoder_path = fetch_model_file(decoder_spec, mirror=mirror)
    loaded = load_sam_file(file, decoder=decoder_path, input_size=input_size, weights_hash=spec.hash,
                           decoder_hash=decoder_spec.hash if decoder_spec is not None else None, name=spec.name)
    if loaded.config.architecture != spec.architecture:
        raise CheckpointError(f"{file} holds a {loaded.config.architecture} model, but the registry lists "
                              f"{spec.name} as {spec.architecture}")
    return loaded.to(device)


def _resized(model: SamzooModel, input_size: int | None) -> SamzooModel:
    """The same weights in a model built for another input size (TinyViT encoders only)."""
    if input_size is None or input_size == model.input_size:
        return model
    config = ModelConfig(**{**model.config.__dict__, "input_size": input_size})
    resized = SamzooModel(config)
    resized.load_state_dict(model.state_dict())
    resized.weights_hash = model.weights_hash
    return resized.eval()
