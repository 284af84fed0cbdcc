"""Reading images as ``xarray.DataArray`` with named axes (``t``, ``z``, ``c``, ``y``, ``x``).

Axes rule (when the caller gives no ``axes``):

1. a DataArray keeps its own dims (they must be letters of ``tzcyx``);
2. a file's own axes metadata (ImageJ/OME TIFF, OME-Zarr ``multiscales``) is used when it names
   real axes (not tifffile's generic ``Q``/``I``);
3. otherwise: 2D -> ``yx``; 3D whose last axis has 3 or 4 entries -> ``yxc`` (RGB/RGBA, alpha
   dropped); anything else is ambiguous (time or depth?) and raises :class:`InputError` asking
   for ``axes=``.

Results are always in canonical order ``t, z, c, y, x`` (the dims present). Zarr inputs stay
lazy (dask), so images larger than memory can be processed tile by tile. Physical pixel sizes
stored in the file (OME-TIFF, ImageJ TIFF, OME-Zarr, samzoo's own outputs) become attributes
(:mod:`samzoo.io.calibration`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from samzoo.errors import InputError
from samzoo.io.calibration import ome_zarr_sizes, size_attrs, tiff_sizes

CANONICAL = "tzcyx"
# tifffile axis codes -> ours; S (samples) is colour
TIFF_AXES = {"T": "t", "Z": "z", "C": "c", "S": "c", "Y": "y", "X": "x"}


def check_axes(axes: str, ndim: int) -> str:
    """Validate an axes string such as ``"tyx"`` for an array of ``ndim`` dimensions."""
    axes = axes.lower()
    if len(axes) != ndim:
        raise InputError(f"axes {axes!r} has {len(axes)} letters but the image has {ndim} dimensions")
    if set(axes) - set(CANONICAL) or len(set(axes)) != len(axes):
        raise InputError(f"axes {axes!r} must use each of the letters t, z, c, y, x at most once")
    if "y" not in axes or "x" not in axes:
        raise InputError(f"axes {axes!r} must include y and x")
    return axes


def infer_axes(shape: tuple[int, ...]) -> str:
    """Axes of an array without metadata, by the rule in the module docstring."""
    if len(shape) == 2:
        return "yx"
    if len(shape) == 3 and shape[-1] in (3, 4):
        return "yxc"
    raise InputError(f"cannot tell the axes of an image of shape {shape} (time or depth?); "
                     "pass them explicitly, e.g. axes='tyx' or axes='zyx'")


def as_dataarray(data, axes: str | None = None, attrs: dict | None = None) -> xr.DataArray:
    """Wrap an array (numpy or dask) or DataArray with named, canonical-order dims; validated."""
    if isinstance(data, xr.DataArray):
        if axes is not None:
            data = data.rename(dict(zip(data.dims, check_axes(axes, data.ndim))))
        check_axes("".join(str(d) for d in data.dims), data.ndim)
        array = data
    else:
        if not hasattr(data, "dtype"):
            try:
                data = np.asarray(data)
            except (ValueError, TypeError) as err:  # ragged nested lists
                raise InputError(f"cannot make an image of the given {type(data).__name__}: {err}") from None
        axes = check_axes(axes, data.ndim) if axes is not None else infer_axes(data.shape)
        array = xr.DataArray(data, dims=tuple(axes), attrs=dict(attrs or {}))
    if 0 in array.shape:
        raise InputError(f"the image is empty (shape {dict(zip(array.dims, array.shape))})")
    if array.dtype.kind not in "uif":
        raise InputError(f"cannot segment an image of dtype {array.dtype}; expected integers or floats")
    if "c" in array.dims and array.sizes["c"] == 4:
        array = array.isel(c=slice(0, 3))  # RGBA: the alpha channel carries no image content
    array = array.transpose(*[d for d in CANONICAL if d in array.dims])
    array.attrs.setdefault("dtype", str(array.dtype))
    return array


def read_image(source, axes: str | None = None) -> xr.DataArray:
    """Read an image from an array, DataArray or file into a DataArray with named axes.

    Parameters
    ----------
    source : ndarray, xarray.DataArray, or path
        Files: TIFF (``.tif``, ``.tiff``), PNG/JPEG, Zarr or OME-Zarr (``.zarr`` folder).
    axes : str, optional
        E.g. ``"tyx"``, ``"zyx"``, ``"yxc"``; see the module docstring for the rule without it.

    Returns
    -------
    xarray.DataArray, dims in ``t, z, c, y, x`` order; ``attrs["source"]`` names the file, and
    ``attrs["pixel_size_x"]``... give the physical pixel size when the file stores one
    (:mod:`samzoo.io.calibration`).

    Examples
    --------
    >>> read_image(np.zeros((4, 5), np.uint8)).dims
    ('y', 'x')
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise InputError(f"{path} does not exist")
        data, file_axes, (sizes, unit) = _read_file(path)
        try:
            array = as_dataarray(data, axes or file_axes, attrs={"source": str(path)})
        except InputError as err:  # name the file: in a batch, which one matters
            origin = "" if axes or not file_axes else f" (axes {file_axes!r} from the file's metadata)"
            raise InputError(f"{path}{origin}: {err}") from None
        array.attrs.update(size_attrs(sizes, unit, array.dims))
        return array
    return as_dataarray(source, axes)


def _check_fits_in_memory(path: Path, shape: tuple[int, ...], dtype) -> None:
    """Refuse to read a file whose pixels would take more than half the machine's memory.

    A damaged or malicious TIFF can declare a huge image in a few bytes; reading it would
    exhaust memory instead of failing with a message. Real images that large belong in Zarr.
    """
    nbytes = int(np.prod(shape, dtype=np.float64)) * np.dtype(dtype).itemsize
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not on every platform
        return
    if nbytes > memory // 2:
        raise InputError(f"{path} declares an image of shape {tuple(shape)} ({nbytes / 2**30:.1f} GiB), more than half "
                         f"of this machine's memory; convert it to Zarr to segment it tile by tile")


def _read_file(path: Path):
    """``(array, axes or None, ({axis: pixel size}, unit))`` of a file; Zarr stays lazy."""
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        import tifffile

        try:
            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                axes = series.axes
                _check_fits_in_memory(path, series.shape, series.dtype)
                data = series.asarray()
                calibration = tiff_sizes(tif)
        except InputError:
            raise
        except Exception as err:  # tifffile raises several types for broken files
            raise InputError(f"{path} is not a readable TIFF: {err}") from None
        known = all(a in TIFF_AXES for a in axes)
        return data, "".join(TIFF_AXES[a] for a in axes) if known else None, calibration
    if suffix == ".zarr" or (path.is_dir() and (path / "zarr.json").exists()):
        return _read_zarr(path)
    if suffix in (".png", ".jpg", ".jpeg"):
        import imageio.v3 as iio

        try:
            return iio.imread(path), None, ({}, None)
        except Exception as err:
            raise InputError(f"{path} is not a readable image: {err}") from None
    raise InputError(f"{path}: unsupported file type {suffix!r} (use TIFF, PNG, JPEG or Zarr)")


def _zarr_dims(array) -> str | None:
    """Axes stored with a Zarr array: v3 ``dimension_names`` or xarray's v2 ``_ARRAY_DIMENSIONS``."""
    dims = getattr(array.metadata, "dimension_names", None) or array.attrs.get("_ARRAY_DIMENSIONS")
    return "".join(str(d) for d in dims) if dims and all(dims) else None


def _read_zarr(path: Path):
    """``(lazy array, axes or None, ({axis: pixel size}, unit))`` of a Zarr array, group or OME-Zarr."""
    import dask.array as da
    import zarr

    try:
        node = zarr.open(str(path), mode="r")
    except Exception as err:
        raise InputError(f"{path} is not a readable Zarr store: {err}") from None
    if isinstance(node, zarr.Array):
        return da.from_zarr(node), _zarr_dims(node), _stored_sizes(node.attrs)
    multiscales = node.attrs.get("multiscales") or node.attrs.get("ome", {}).get("multiscales")
    if not multiscales:
        # an xarray dataset (what write_labels and samzoo segment write): its one image array;
        # 1D arrays are coordinates
        images = {name: a for name, a in node.arrays() if a.ndim >= 2}
        if len(images) == 1:
            array = next(iter(images.values()))
            return da.from_zarr(array), _zarr_dims(array), _stored_sizes(array.attrs)
        raise InputError(f"{path} is a Zarr group without OME 'multiscales' metadata and with "
                         f"{len(images) or 'no'} image arrays; point to the array inside it")
    first = multiscales[0]
    axes = "".join(a["name"] if isinstance(a, dict) else a for a in first.get("axes", []))
    return da.from_zarr(node[first["datasets"][0]["path"]]), axes or None, ome_zarr_sizes(multiscales)


def _stored_sizes(attrs) -> tuple[dict[str, float], str | None]:
    """Pixel sizes that samzoo wrote as array attributes (see :mod:`samzoo.io.calibration`)."""
    sizes = {d: attrs[f"pixel_size_{d}"] for d in "zyx" if isinstance(attrs.get(f"pixel_size_{d}"), (int, float))}
    return sizes, attrs.get("pixel_unit")


@dataclass(frozen=True)
class PixelSummary:
    """What an image's pixels hold, for the checks before segmenting it (:func:`pixel_summary`).

    Attributes
    ----------
    pixels : int
        Pixels (a colour pixel counts once).
    missing : int
        Pixels with a NaN or infinite value (in any channel).
    low, high : float
        The smallest and largest finite value (NaN when there is none).
    """

    pixels: int
    missing: int
    low: float
    high: float

    @property
    def blank(self) -> str | None:
        """Why the image holds nothing to segment (no finite value, or one value everywhere); None if it does."""
        if self.missing == self.pixels:
            return "every pixel is NaN or infinite"
        if self.low == self.high:
            return f"every pixel has the value {self.low:g}" + (" or is NaN or infinite" if self.missing else "")
        return None


def pixel_summary(image: xr.DataArray) -> PixelSummary:
    """Count the NaN/infinite pixels of an image and find its finite range, in one pass (lazy images too).

    Examples
    --------
    >>> summary = pixel_summary(read_image(np.array([[1.0, np.nan], [1.0, 1.0]])))
    >>> summary.missing, summary.blank
    (1, 'every pixel has the value 1 or is NaN or infinite')
    """
    data = image.data
    channels = image.dims.index("c") if "c" in image.dims else None
    if data.dtype.kind == "f":
        finite = np.isfinite(data)
        good = finite.all(axis=channels) if channels is not None else finite
        parts = [(~good).sum(), np.where(finite, data, np.inf).min(), np.where(finite, data, -np.inf).max()]
    else:
        parts = [0, data.min(), data.max()]
    if not all(isinstance(p, (int, np.generic, np.ndarray)) for p in parts):
        import dask

        parts = dask.compute(*parts)  # one pass over the chunks for all three
    missing, low, high = int(parts[0]), float(parts[1]), float(parts[2])
    pixels = int(np.prod([n for d, n in image.sizes.items() if d != "c"]))
    if low > high:  # no finite value
        low = high = float("nan")
    return PixelSummary(pixels, missing, low, high)
