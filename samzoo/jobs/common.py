"""What segment and track jobs share: the model each worker loads once, paths for workers, checks."""

from __future__ import annotations

import os
import shutil
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

from samzoo.errors import InputError, option


@lru_cache(maxsize=2)
def job_model(model: Any, decoder: str | None = None):
    """The model of a job, loaded once per worker process and shared by its threads.

    ``model`` is a loaded model (used as it is), or a name or file for
    :func:`samzoo.load_model` (``None``: samzoo's own model).
    """
    if hasattr(model, "sam"):
        return model
    from samzoo.models.load import load_model

    return load_model(model, decoder=decoder)


def absolute(name: Any) -> Any:
    """An absolute path for the name of an existing file: dask workers elsewhere have another working directory."""
    if isinstance(name, (str, os.PathLike)) and Path(name).exists():
        return str(Path(name).absolute())
    return name


def patterns_of(inputs: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str | os.PathLike]:
    """One name, or several, as a list."""
    patterns = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    if not patterns:
        raise InputError("no input images given")
    return patterns


def check_workers(workers: int) -> None:
    if workers < 1:
        raise InputError(f"{option('workers')} must be at least 1, got {workers}")


def check_scale(scale: float | str | None) -> float | str | None:
    """``scale`` checked by :func:`samzoo.segmentation.autoscale.parse_scale`, its message naming the option."""
    from samzoo.segmentation.autoscale import parse_scale

    try:
        return parse_scale(scale)
    except InputError as err:  # its message starts with "scale"
        raise InputError(option("scale") + str(err).removeprefix("scale")) from None


def remove_outputs(paths: Sequence[Path]) -> None:
    """Delete earlier outputs (files or folders) so that a job with ``overwrite`` recomputes them."""
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
