"""Physical pixel sizes: read from OME-TIFF, ImageJ TIFF and OME-Zarr files, written with the labels.

In a DataArray (what :func:`samzoo.read_image` returns, and :func:`samzoo.segment` passes on to
its labels) the sizes are attributes: ``pixel_size_x``, ``pixel_size_y`` and, for volumes,
``pixel_size_z``, in ``pixel_unit`` (``"µm"``, ``"nm"``, ...). :func:`samzoo.write_labels`
stores them again: in a TIFF as OME metadata (``PhysicalSizeX``...), in a Zarr as attributes of
the label array; both are read back by :func:`samzoo.read_image`.

Examples
--------
>>> size_attrs({"y": 0.5, "x": 0.5, "z": 2.0}, "micrometer", ("z", "y", "x"))
{'pixel_size_z': 2.0, 'pixel_size_y': 0.5, 'pixel_size_x': 0.5, 'pixel_unit': 'µm'}
"""

from __future__ import annotations

import os
from pathlib import Path

# unit names of OME-XML, OME-Zarr (UDUNITS) and ImageJ, as OME-XML writes them
UNITS = {"µm": "µm", "um": "µm", "micron": "µm", "micrometer": "µm", "\\u00B5m": "µm", "μm": "µm",
         "nm": "nm", "nanometer": "nm", "mm": "mm", "millimeter": "mm", "cm": "cm", "centimeter": "cm",
         "m": "m", "meter": "m", "Å": "Å", "angstrom": "Å"}
SPATIAL = ("z", "y", "x")


def size_attrs(sizes: dict[str, float], unit: str | None, dims) -> dict:
    """The attributes of :mod:`this module <samzoo.io.calibration>` for the spatial ``dims`` that have a size."""
    attrs = {f"pixel_size_{d}": float(sizes[d]) for d in SPATIAL if d in dims and sizes.get(d, 0) > 0}
    if attrs:
        attrs["pixel_unit"] = UNITS.get(str(unit or "µm").strip(), str(unit).strip())
    return attrs


def calibration_attrs(attrs: dict) -> dict:
    """Only the pixel-size attributes of ``attrs``."""
    return {k: v for k, v in attrs.items() if k.startswith("pixel_size_") or k == "pixel_unit"}


def ome_tiff_metadata(attrs: dict) -> dict:
    """``PhysicalSizeX``... for ``tifffile.imwrite(..., ome=True, metadata=...)``; empty without sizes.

    Sizes in a unit OME-XML does not know are left out rather than written in the wrong unit.
    """
    unit = attrs.get("pixel_unit", "µm")
    if unit not in UNITS.values():
        return {}
    out = {}
    for d in SPATIAL:
        size = attrs.get(f"pixel_size_{d}")
        if isinstance(size, (int, float)) and size > 0:
            out[f"PhysicalSize{d.upper()}"] = float(size)
            out[f"PhysicalSize{d.upper()}Unit"] = unit
    return out


def tiff_sizes(tif) -> tuple[dict[str, float], str | None]:
    """``({axis: size}, unit)`` stored in an open ``tifffile.TiffFile``: OME-XML, else ImageJ or resolution tags.

    Resolution tags count only with an ImageJ unit or in centimetres (inch-based resolutions are
    mostly a screen's 72 dpi, not a microscope's).
    """
    if tif.is_ome and tif.ome_metadata:
        import tifffile

        try:
            image = tifffile.xml2dict(tif.ome_metadata)["OME"]["Image"]
            pixels = (image[0] if isinstance(image, list) else image)["Pixels"]
        except (KeyError, IndexError, TypeError, ValueError):
            pixels = {}
        sizes = {d: float(pixels[f"PhysicalSize{d.upper()}"]) for d in SPATIAL
                 if f"PhysicalSize{d.upper()}" in pixels}
        if "x" in sizes or "y" in sizes:
            sizes.setdefault("x", sizes.get("y")), sizes.setdefault("y", sizes.get("x"))
            return sizes, pixels.get("PhysicalSizeXUnit", pixels.get("PhysicalSizeYUnit", "µm"))
    page = tif.pages[0]
    imagej = tif.imagej_metadata or {}
    tags = {name: page.tags[name].value for name in ("XResolution", "YResolution", "ResolutionUnit")
            if name in page.tags}
    unit = str(imagej.get("unit", "")).strip()
    resolution = int(tags.get("ResolutionUnit", 1))
    if "XResolution" not in tags or "YResolution" not in tags or not (unit or resolution == 3):
        return {}, None
    (xn, xd), (yn, yd) = tags["XResolution"], tags["YResolution"]
    if not (xn > 0 and yn > 0):
        return {}, None
    scale = 1e4 if resolution == 3 and not unit else 1.0  # centimetres -> micrometres
    sizes = {"y": scale * yd / yn, "x": scale * xd / xn}
    if "spacing" in imagej:
        sizes["z"] = float(imagej["spacing"])
    if set(sizes.values()) == {1.0} and unit in ("", "pixel"):
        return {}, None  # ImageJ's "no calibration"
    return sizes, unit or "µm"


def ome_zarr_sizes(multiscales: list) -> tuple[dict[str, float], str | None]:
    """``({axis: size}, unit)`` of the first resolution of OME-Zarr ``multiscales`` metadata (v0.4, v0.5)."""
    try:
        first = multiscales[0]
        axes = [a if isinstance(a, dict) else {"name": a} for a in first.get("axes", [])]
        scale = [1.0] * len(axes)
        for transforms in (first["datasets"][0].get("coordinateTransformations", []),
                           first.get("coordinateTransformations", [])):
            for transform in transforms:
                if transform.get("type") == "scale" and len(transform.get("scale", [])) == len(axes):
                    scale = [a * float(b) for a, b in zip(scale, transform["scale"])]
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        return {}, None
    sizes = {a["name"]: s for a, s in zip(axes, scale) if a.get("name") in SPATIAL}
    units = [a.get("unit") for a in axes if a.get("name") in SPATIAL and a.get("unit")]
    if not units and set(sizes.values()) <= {1.0}:
        return {}, None  # no unit and no scale: nothing is known
    return sizes, units[0] if units else None


def tiff_calibration(path: str | os.PathLike) -> dict:
    """Pixel size and frame interval stored in a TIFF (OME-XML, ImageJ metadata or resolution tags in cm).

    Returns
    -------
    dict with any of ``pixel_size`` (``(y, x)``, or ``(z, y, x)`` when the file gives a z spacing),
    ``spatial_unit``, ``frame_interval`` and ``time_unit``; empty when the file says nothing usable.
    """
    path = Path(path)
    if path.suffix.lower() not in (".tif", ".tiff") or not path.is_file():
        return {}
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            sizes, unit = tiff_sizes(tif)
            imagej = tif.imagej_metadata or {}
    except Exception:  # calibration is optional: an unreadable file fails later, with its own message
        return {}
    out: dict = {}
    if sizes:
        out["pixel_size"] = tuple(sizes[d] for d in SPATIAL if d in sizes)
        out["spatial_unit"] = UNITS.get(unit, unit)
    if float(imagej.get("finterval", 0) or 0) > 0:
        out["frame_interval"] = float(imagej["finterval"])
        out["time_unit"] = str(imagej.get("tunit", "sec"))
    return out
