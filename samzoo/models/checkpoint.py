"""Safe loading of weight files: no arbitrary unpickling, hash verified before anything is read.

``.safetensors`` files are read with safetensors; everything else with
``torch.load(weights_only=True)``, which only rebuilds tensors and plain containers and
refuses any other object, so a checkpoint carrying code is rejected rather than run.

micro-sam's training checkpoints also pickle the trainer's constructor arguments (torch-em's
"init" record: dataset and transform objects of torch-em / micro-sam). Those, and only those
(plus numpy scalars), are read as inert stand-ins, still by the weights-only unpickler
(:data:`TRAINING_RECORD_MODULES`); any other global refuses the file.
"""

from __future__ import annotations

import os
import pickle
import zipfile

import numpy as np
import torch
from safetensors.torch import load_file

from samzoo.errors import CheckpointError, HashMismatchError, UnsafeCheckpointError
from samzoo.zoo.fetch import hash_matches

# Where SAM and micro-sam checkpoints keep the model weights, in order of preference.
SAM_KEYS = ("model_state", "model_state_dict", "state_dict", "model")
DECODER_KEYS = ("decoder_state", "decoder_state_dict")


def read_checkpoint(path: str | os.PathLike, *, expected_hash: str | None = None) -> dict:
    """Read a weight file into a dict, safely.

    Parameters
    ----------
    path : path
    expected_hash : str, optional
        ``"alg:hex"``; verified before the file is parsed.

    Raises
    ------
    HashMismatchError, UnsafeCheckpointError, CheckpointError
    """
    path = str(path)
    if expected_hash and not hash_matches(path, expected_hash):
        raise HashMismatchError(f"{path} does not match the expected hash {expected_hash}; refusing to load it")
    if path.endswith(".safetensors"):
        try:
            return load_file(path)
        except Exception as err:  # safetensors' own error types
            raise CheckpointError(f"{path} is not a readable safetensors file: {err}") from err
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            stand_ins = _training_record_stand_ins(path)
            if not stand_ins:
                raise
            # still the weights-only unpickler: the names above resolve to inert samzoo objects
            with torch.serialization.safe_globals(stand_ins):
                return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # An invalid opcode means the bytes are no pickle at all (e.g. a zip cut after 1-3 bytes
        # is read as a legacy pickle): corrupt, not code. Anything else the weights-only
        # unpickler refuses is a Python object it would have to construct.
        unsafe = "weights only" in str(err).lower() or "weights_only" in str(err)
        if unsafe and "Unsupported operand" not in str(err):
            raise UnsafeCheckpointError(
                f"{path} contains Python objects other than tensors, and loading it would run arbitrary code; "
                "samzoo refuses to unpickle it. Re-save the weights as a plain state dict or as safetensors."
            ) from None
        raise CheckpointError(f"{path} is corrupt: {err}") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as err:
        # OSError: torch's zip reader fails with EINVAL on some truncation points
        raise CheckpointError(f"{path} is truncated or not a PyTorch checkpoint: {err}") from None


class _Ignored:
    """An inert stand-in for an object of micro-sam's or torch-em's training record.

    It accepts any constructor arguments and state and keeps none: nothing of the original
    class (nor any other code from the file) runs.
    """

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __setstate__(self, state) -> None:
        pass


# Modules whose objects micro-sam's training checkpoints carry outside the weights, in the
# trainer's "init" record (torch-em's DefaultTrainer.save_checkpoint pickles the trainer's
# constructor arguments: datasets, samplers, transforms, losses, metrics, paths). They are
# never needed for the weights, so each such global is replaced by the inert _Ignored. micro-sam
# itself loads these files with an unpickler that imports them (torch.load weights_only=False).
TRAINING_RECORD_MODULES = ("torch_em.", "micro_sam.", "pathlib.", "functools.partial", "torch.utils.data.")
# numpy scalars and dtypes: best_metric / current_metric are numpy floats in torch-em's record
NUMPY_GLOBALS = {"numpy.core.multiarray.scalar": "scalar", "numpy._core.multiarray.scalar": "scalar",
                 "numpy.dtype": "dtype"}


def _numpy_scalar():
    """numpy's scalar constructor, which pickled numpy scalars call (``numpy._core`` since numpy 2)."""
    try:
        from numpy._core.multiarray import scalar
    except ImportError:
        from numpy.core.multiarray import scalar
    return scalar


def _training_record_stand_ins(path: str) -> list:
    """``safe_globals`` entries for the non-weight objects of a micro-sam training checkpoint.

    Returns an empty list when the file holds any global outside :data:`TRAINING_RECORD_MODULES`
    and numpy's scalar types: such a file is refused as before.
    """
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # not a zip checkpoint: nothing to inspect safely
        return []
    stand_ins = []
    for name in names:
        if name in NUMPY_GLOBALS and NUMPY_GLOBALS[name] == "scalar":
            stand_ins.append((_numpy_scalar(), name))
        elif name in NUMPY_GLOBALS:
            # a pickled dtype is rebuilt as its concrete class (np.dtypes.Float64DType, ...): allow those too
            stand_ins += [(np.dtype, name)] + [getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith("DType")]
        elif name.startswith("numpy.dtypes."):
            stand_ins.append((getattr(np.dtypes, name.rsplit(".", 1)[1]), name))
        elif name.startswith(TRAINING_RECORD_MODULES):
            stand_ins.append((_Ignored, name))
        else:
            return []
    return stand_ins


def _unwrap(checkpoint: dict, keys: tuple[str, ...]) -> dict:
    for key in keys:
        if isinstance(checkpoint.get(key), dict):
            return checkpoint[key]
    return checkpoint


def _tensors_without_prefix(state: dict) -> dict[str, torch.Tensor]:
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError("the checkpoint holds no tensors")
    for prefix in ("module.", "sam."):
        if all(k.startswith(prefix) for k in tensors):
            tensors = {k[len(prefix):]: v for k, v in tensors.items()}
    return tensors


def load_state_dict(path: str | os.PathLike, *, expected_hash: str | None = None) -> dict[str, torch.Tensor]:
    """The SAM weights of a checkpoint: a plain state dict, or one wrapped under ``model_state``
    (micro-sam), ``state_dict`` or ``model``; a ``module.`` or ``sam.`` prefix is removed."""
    return _tensors_without_prefix(_unwrap(read_checkpoint(path, expected_hash=expected_hash), SAM_KEYS))


def load_decoder_state_dict(path: str | os.PathLike, *, expected_hash: str | None = None) -> dict[str, torch.Tensor]:
    """The AIS decoder weights of a checkpoint (``decoder_state`` as micro-sam stores it, or plain)."""
    return _tensors_without_prefix(_unwrap(read_checkpoint(path, expected_hash=expected_hash), DECODER_KEYS))
