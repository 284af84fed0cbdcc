"""Writing results atomically: a temporary file in the target folder, then ``os.replace``.

A crash, a full disk or a read-only folder therefore never leaves a half-written output, and
an earlier output of the same name survives a failed rewrite.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import xarray as xr

from samzoo.errors import OutputError


@contextmanager
def atomic_path(path: str | os.PathLike, *, directory: bool = False):
    """Yield a temporary path next to ``path``; move it onto ``path`` if the block succeeds."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.")) if directory else None
        if not directory:
            fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            os.close(fd)
            tmp = Path(name)
    except OSError as err:
        raise OutputError(f"cannot write {path}: {err.strerror or err}") from None
    try:
        target = tmp / path.name if directory else tmp
        yield target
        if directory and path.exists():
            shutil.rmtree(path)
        os.replace(target, path)
    except OSError as err:
        raise OutputError(f"cannot write {path}: {err.strerror or err}; nothing was written") from None
    finally:
        if directory:
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def _smallest_uint(labels: np.ndarray) -> np.ndarray:
    top = int(labels.max()) if labels.size else 0
    for dtype in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dtype).max:
            return labels.astype(dtype, copy=False)
    return labels.astype(np.uint64)


def write_labels(labels: xr.DataArray | np.ndarray, path: str | os.PathLike) -> Path:
    """Write a label image to TIFF (``.tif``/``.tiff``) or Zarr (``.zarr``), atomically.

    The smallest unsigned integer type holding the largest label is used, and the axes are
    stored so that :func:`samzoo.io.read_image` reads them back. A DataArray's coords and attrs
    go to Zarr too (via xarray).

    Returns
    -------
    Path of the written file.
    """
    path = Path(path)
    array = labels if isinstance(labels, xr.DataArray) else xr.DataArray(
        labels, dims=tuple("tzyx"[-np.ndim(labels):]) if np.ndim(labels) <= 4 else None)
    values = _smallest_uint(np.asarray(array.values))
    axes = "".join(str(d) for d in array.dims)
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        import tifffile

        with atomic_path(path) as tmp:
            tifffile.imwrite(tmp, values, photometric="minisblack", metadata={"axes": axes.upper()},
                             compression="zlib")
    elif suffix == ".zarr":
        out = array.copy(data=values)
        out.attrs = {k: v for k, v in array.attrs.items() if isinstance(v, (str, int, float, bool))}
        with atomic_path(path, directory=True) as tmp:
            out.to_dataset(name="labels").to_zarr(tmp, mode="w", consolidated=False)
    else:
        raise OutputError(f"{path}: unsupported output type {suffix!r} (use .tif or .zarr)")
    return path


def write_overlay_png(image: np.ndarray, labels: np.ndarray, path: str | os.PathLike) -> Path:
    """A PNG of a 2D image with each object coloured and outlined, for a quick look.

    ``image`` is ``(H, W)`` or ``(H, W, 3)`` of any dtype; ``labels`` is ``(H, W)``.
    """
    import imageio.v3 as iio
    from skimage.color import label2rgb
    from skimage.segmentation import find_boundaries

    from samzoo.io.normalize import to_model_input

    rgb = np.moveaxis(to_model_input(image), 0, -1) / 255.0
    overlay = label2rgb(labels, image=rgb, alpha=0.3, bg_label=0, image_alpha=1.0)
    overlay[find_boundaries(labels, mode="outer")] = (1.0, 1.0, 0.0)
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, (np.clip(overlay, 0, 1) * 255).astype(np.uint8), extension=".png")
    return Path(path)
