"""Movies from folders of frames, and movies whose file does not name its axes.

Microscopes and the Cell Tracking Challenge (CTC) store a movie as one file per frame:
``01/t000.tif, 01/t001.tif, ...``. Here:

- a folder or glob pattern whose images are all single 2-D frames (``yx``, or ``yxc`` colour),
  of one shape, is **one movie**, its frames in natural order (``t2`` before ``t10``), the
  trailing number of each file name becoming the frame's ``t`` coordinate;
- a folder of movies (files with a ``t`` or ``z`` axis, or 3-D without colour) stays a list of
  movies, and so does a folder mixing frames and movies (each file on its own: the frames
  there are not a movie, and tracking them fails one by one, naming them);
- a 3-D array or file without axes metadata, read as a movie, is ``t, y, x``
  (``attrs["assumed_axes"]`` says so, for the caller to tell the user).

Only the files' headers are read to tell frames from movies.
"""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import xarray as xr

from samzoo.errors import InputError
from samzoo.io.calibration import calibration_attrs
from samzoo.io.image import TIFF_AXES, _check_fits_in_memory, _read_zarr, as_dataarray, infer_axes, read_image

Source = Path | tuple[Path, ...]


def natural_key(path: str | os.PathLike) -> tuple:
    """Sort key of a file name with its digit runs compared as numbers: ``t2`` before ``t10``."""
    parts = re.split(r"(\d+)", Path(path).name)
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)


def frame_numbers(paths: Sequence[Path]) -> list[int] | None:
    """The trailing number of each file's stem (``t017.tif`` -> 17); None unless all have distinct ones."""
    numbers = []
    for path in paths:
        match = re.search(r"(\d+)$", Path(path).stem)
        if match is None:
            return None
        numbers.append(int(match.group(1)))
    return numbers if len(set(numbers)) == len(numbers) else None


def image_header(path: Path) -> tuple[tuple[int, ...], str | None]:
    """``(shape, axes or None)`` of an image file, reading its header only (Zarr: its metadata)."""
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        import tifffile

        try:
            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                shape, axes = tuple(series.shape), series.axes
        except Exception as err:  # tifffile raises several types for broken files
            raise InputError(f"{path} is not a readable TIFF: {err}") from None
        known = all(a in TIFF_AXES for a in axes)
        return shape, "".join(TIFF_AXES[a] for a in axes) if known else None
    if suffix in (".png", ".jpg", ".jpeg"):
        import imageio.v3 as iio

        try:
            return tuple(iio.improps(path).shape), None
        except Exception as err:
            raise InputError(f"{path} is not a readable image: {err}") from None
    if suffix == ".zarr" or (path.is_dir() and (path / "zarr.json").exists()):
        data, axes, _ = _read_zarr(path)  # lazy: no pixels are read
        return tuple(data.shape), axes
    raise InputError(f"{path}: unsupported file type {suffix!r} (use TIFF, PNG, JPEG or Zarr)")


def is_single_frame(path: Path) -> bool:
    """Whether a file holds one 2-D plane (``yx`` or ``yxc``) rather than a movie or volume."""
    shape, axes = image_header(Path(path))
    if axes is not None:
        return set(axes) <= {"y", "x", "c"}
    try:
        return set(infer_axes(shape)) <= {"y", "x", "c"}
    except InputError:  # 3-D without colour, or more: a movie or a volume
        return False


def frame_sequence(paths: Sequence[Path], name: str | os.PathLike = "") -> tuple[Path, ...] | None:
    """The files in natural order if they are the single 2-D frames of one movie; None if not all are frames.

    Parameters
    ----------
    paths : sequence of Path
        Image files, e.g. the contents of a folder.
    name : str or path
        The folder or pattern they came from, for error messages.

    Raises
    ------
    InputError
        Frames of different shapes.
    """
    paths = [Path(p) for p in paths]
    if not all(is_single_frame(p) for p in paths):
        return None
    where = f"{name}: " if name else ""
    shapes = {}
    for path in paths:
        shapes.setdefault(image_header(path)[0], path.name)
    if len(shapes) > 1:
        found = ", ".join(f"{n} {s}" for s, n in list(shapes.items())[:3])
        raise InputError(f"{where}the frames of one movie must have one shape; found {found}")
    return tuple(sorted(paths, key=natural_key))


def find_movies(patterns: Sequence[str | os.PathLike]) -> list[Source]:
    """The movies named by files, folders and glob patterns.

    The single 2-D frames of a folder or a pattern form one movie, and so do several frame files
    named one by one (e.g. a glob the shell expanded); any other file is a movie of its own.

    Returns
    -------
    list of Path (a movie file) or tuple of Path (the frames of one movie, in natural order).

    Raises
    ------
    InputError
        A name that matches nothing, frames of different shapes.
    """
    from samzoo.batch import expand_inputs

    movies: list[Source] = []
    loose: list[Path] = []
    for pattern in patterns:
        path = Path(pattern)
        if path.exists() and not (path.is_dir() and path.suffix.lower() != ".zarr"):
            loose.append(path)
            continue
        matches = expand_inputs([pattern])
        frames = frame_sequence(matches, pattern)
        movies.extend([frames] if frames else matches)
    if len(loose) > 1:
        frames = frame_sequence(loose)
        movies.extend([frames] if frames else loose)
    else:
        movies.extend(loose)
    return list(dict.fromkeys(movies))


def read_frames(paths: Sequence[Path], axes: str | None = None) -> xr.DataArray:
    """Stack single 2-D frame files into one movie ``(t, y, x[, c])``.

    Parameters
    ----------
    paths : sequence of Path
        The frames, in time order (see :func:`frame_sequence`).
    axes : str, optional
        Axes of each frame (``yx``, ``yxc``) or of the movie (``tyx``, ``tyxc``).

    Returns
    -------
    xarray.DataArray with a ``t`` coordinate: the frame numbers in the file names when each has
    a distinct one (``t017.tif`` -> 17), else ``0, 1, ...``; ``attrs["source"]`` names the folder,
    and the first frame's pixel size (:mod:`samzoo.io.calibration`) is kept.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise InputError("no frames given")
    frame_axes = axes.lower().replace("t", "") if axes else None
    first = read_image(paths[0], axes=frame_axes)
    if "t" in first.dims or "z" in first.dims:
        raise InputError(f"{paths[0]} has axes {''.join(first.dims)}: a frame of a movie must be 2-D")
    _check_fits_in_memory(paths[0].parent, (len(paths),) + first.shape, first.dtype)
    stack = np.empty((len(paths),) + first.shape, dtype=first.dtype)
    stack[0] = first.values
    for i, path in enumerate(paths[1:], start=1):
        frame = read_image(path, axes=frame_axes)
        if frame.shape != first.shape or frame.dims != first.dims:
            raise InputError(f"{path} has shape {frame.shape}, unlike {paths[0].name} {first.shape}: the frames of "
                             "one movie must have one shape")
        stack[i] = frame.values
    numbers = frame_numbers(paths) or list(range(len(paths)))
    source = paths[0].parent if len({p.parent for p in paths}) == 1 else paths[0]
    attrs = {**calibration_attrs(first.attrs), "source": str(source)}  # the first frame's pixel size
    movie = as_dataarray(stack, "t" + "".join(first.dims), attrs=attrs)
    return movie.assign_coords(t=np.asarray(numbers, dtype=np.int64))


def read_movie(source, axes: str | None = None) -> xr.DataArray:
    """Read a movie: a file, a folder or pattern of frames, a sequence of frame files, or an array.

    Like :func:`samzoo.io.read_image`, except that frames are stacked (:func:`read_frames`) and
    that a 3-D image without axes (none given, none in the file) is ``t, y, x`` rather than an
    error; ``attrs["assumed_axes"]`` is then ``"tyx"``.

    Examples
    --------
    >>> read_movie(np.zeros((3, 8, 8), np.uint8)).attrs["assumed_axes"]
    'tyx'
    """
    if isinstance(source, (list, tuple)):
        return read_frames(source, axes)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if (path.is_dir() and path.suffix.lower() != ".zarr" and not (path / "zarr.json").exists()) or (
                not path.exists() and glob.has_magic(str(source))):
            movies = find_movies([source])
            if len(movies) != 1 or not isinstance(movies[0], tuple):
                raise InputError(f"{source} holds {len(movies)} movies, not the frames of one; name one movie")
            return read_frames(movies[0], axes)
        if axes is None and path.exists() and _ambiguous(*image_header(path)):
            return _assumed(read_image(path, axes="tyx"))
        return read_image(path, axes=axes)
    if axes is None and not isinstance(source, xr.DataArray) and hasattr(source, "shape") and _ambiguous(
            tuple(source.shape), None):
        return _assumed(as_dataarray(source, "tyx"))
    return read_image(source, axes=axes)


def first_frame_number(movie: xr.DataArray) -> int:
    """Number of a movie's first frame (``t017.tif`` -> 17) when its frames are numbered consecutively, else 0."""
    if "t" not in movie.coords:
        return 0
    numbers = np.asarray(movie.coords["t"].values)
    consecutive = numbers.dtype.kind in "iu" and np.array_equal(numbers, numbers[0] + np.arange(len(numbers)))
    return int(numbers[0]) if consecutive and numbers[0] >= 0 else 0


def _ambiguous(shape: tuple[int, ...], axes: str | None) -> bool:
    """3-D without axes metadata and not colour: time or depth cannot be told."""
    if axes is not None or len(shape) != 3:
        return False
    try:
        infer_axes(shape)
    except InputError:
        return True
    return False


def _assumed(movie: xr.DataArray) -> xr.DataArray:
    movie.attrs["assumed_axes"] = "tyx"
    return movie
