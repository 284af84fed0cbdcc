"""Writing results atomically: a temporary file in the target folder, then ``os.replace``.

A crash, a full disk or a read-only folder therefore never leaves a half-written output, and
an earlier output of the same name survives a failed rewrite. Jobs check their outputs with
:func:`check_writable` before any work, so a bad output path fails in a moment, not after hours.
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
from samzoo.io.calibration import ome_tiff_metadata

LABEL_SUFFIXES = (".tif", ".tiff", ".zarr")


def _umask() -> int:
    """The process umask, read without changing it (``os.umask`` can only set it, racing other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


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
        if not directory:
            # mkstemp makes the file private (0600); the output should get the permissions a plain
            # open() would have given it
            os.chmod(target, 0o666 & ~_umask())
        if directory and path.exists():
            # move the old output aside rather than deleting it first: if the swap fails, it is restored
            old = tmp / ".old"
            os.replace(path, old)
            try:
                os.replace(target, path)
            except OSError:
                os.replace(old, path)
                raise
        else:
            os.replace(target, path)
    except OSError as err:
        raise OutputError(f"cannot write {path}: {err.strerror or err}; no partial file was left") from None
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
    go to Zarr too (via xarray); its physical pixel size (``attrs["pixel_size_x"]``...,
    :mod:`samzoo.io.calibration`) goes to a TIFF as OME metadata.

    Returns
    -------
    Path of the written file.
    """
    path = Path(path)
    array = labels if isinstance(labels, xr.DataArray) else xr.DataArray(
        labels, dims=tuple("tzyx"[-np.ndim(labels):]) if np.ndim(labels) <= 4 else None)
    values = _smallest_uint(np.asarray(array.values))
    axes = "".join(str(d) for d in array.dims)
    suffix = label_suffix(path)
    if suffix in (".tif", ".tiff"):
        import tifffile

        physical = ome_tiff_metadata(array.attrs)  # OME-XML only with a pixel size: other files stay as they were
        with atomic_path(path) as tmp:
            tifffile.imwrite(tmp, values, photometric="minisblack", metadata={"axes": axes.upper(), **physical},
                             compression="zlib", ome=bool(physical) or None)
    else:
        out = array.copy(data=values)
        out.attrs = {k: v for k, v in array.attrs.items() if isinstance(v, (str, int, float, bool))}
        with atomic_path(path, directory=True) as tmp:
            out.to_dataset(name="labels").to_zarr(tmp, mode="w", consolidated=False)
    return path


def label_suffix(path: str | os.PathLike) -> str:
    """The suffix of a label file (``.tif``, ``.tiff`` or ``.zarr``), else an :class:`OutputError`."""
    suffix = Path(path).suffix.lower()
    if suffix not in LABEL_SUFFIXES:
        raise OutputError(f"{path}: unsupported output type {suffix!r} (use .tif or .zarr)")
    return suffix


def check_writable(path: str | os.PathLike, *, folder: bool = False) -> Path:
    """Refuse an output that cannot be written, before any work: its folder is a file or may not be written.

    Parameters
    ----------
    path : path
        A file (or ``.zarr`` folder) to be written, or with ``folder`` a folder to be written into.
        Missing folders above it are fine (they are made): the nearest existing one must be a
        folder this process may write.
    folder : bool
        ``path`` is a folder that receives files: if it exists, it must be a writable folder.

    Returns
    -------
    Path, absolute.

    Raises
    ------
    OutputError
        ``cannot write PATH: FOLDER is a file, not a folder`` (or ``Permission denied``,
        ``Read-only file system``).
    """
    path = Path(path).absolute()
    existing = path if folder and path.exists() else path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"cannot write {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        try:
            read_only = bool(os.statvfs(existing).f_flag & os.ST_RDONLY)
        except (OSError, AttributeError):  # not on every platform
            read_only = False
        raise OutputError(f"cannot write {path}: {'Read-only file system' if read_only else 'Permission denied'}")
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
    # encode in memory, then write plain bytes: imageio's file plugin re-raises a failed close
    # (e.g. a full disk) from a destructor, which would print a traceback past our error message
    png = iio.imwrite("<bytes>", (np.clip(overlay, 0, 1) * 255).astype(np.uint8), extension=".png")
    with atomic_path(path) as tmp:
        tmp.write_bytes(png)
    return Path(path)
