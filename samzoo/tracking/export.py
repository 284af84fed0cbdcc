"""Tracking results for other tools: Fiji's TrackMate (XML) and a per-object table (CSV or Parquet).

- TrackMate: the XML that TrackMate saves and loads (``File > Load a TrackMate file``):
  ``Model`` (spots per frame with ``FRAME``, ``POSITION_X/Y/Z/T``, ``RADIUS``, ``QUALITY``; tracks
  as connected components of the lineage graph, one ``Edge`` per link, divisions as splits;
  ``FilteredTracks``) and ``Settings`` (``ImageData`` with the image size and calibration).
  Positions and radii are in physical units when the pixel size is known, else in pixels; a
  spot's ``QUALITY`` is its area in pixels (what TrackMate's label-image detector gives).
- Table: one row per object per frame, ``track_id, frame, [centroid_z,] centroid_y, centroid_x,
  area, mean_intensity, parent_track_id``; track IDs are the labels that the CTC export writes,
  so the table, ``mask*.tif`` and ``res_track.txt`` of one run agree. As Parquet (``.parquet``,
  needs pyarrow) the columns keep their types: int64 IDs, frames and areas, float64 centroids and
  intensities (NaN without images).
"""

from __future__ import annotations

import csv
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np

from samzoo.errors import InputError, OutputError
from samzoo.io.write import atomic_path
from samzoo.tracking.frames import read_frame
from samzoo.tracking.lineage import track_ids

TRACKMATE_VERSION = "7.11.1"  # the XML layout that TrackMate 7 saves
TABLE_FORMATS = ("csv", "parquet")  # what write_table writes, by the file's suffix


@dataclass(frozen=True)
class Calibration:
    """Physical size of a pixel (``y``, ``x``; ``z`` for volumes) and of a frame, with their units."""

    pixel_size: tuple[float, ...] = (1.0, 1.0)  # (y, x) or (z, y, x)
    spatial_unit: str = "pixel"
    frame_interval: float = 1.0
    time_unit: str = "frame"


def movie_calibration(source: str | Path, ndim: int, *, pixel_size: float | None = None,
                      frame_interval: float | None = None) -> Calibration:
    """The calibration of a movie: the given pixel size (µm) and frame interval (s), else the file's own.

    Without either, positions stay in pixels and times in frames (:func:`samzoo.io.calibration.tiff_calibration`
    reads what a TIFF stores). ``ndim`` is 2 or 3 (the spatial axes of a frame).
    """
    from samzoo.io.calibration import tiff_calibration

    stored = tiff_calibration(source)
    size = tuple(stored.get("pixel_size", (1.0,) * ndim))
    size = (1.0,) * (ndim - len(size)) + size if len(size) < ndim else size[-ndim:]  # no z spacing: 1
    unit = stored.get("spatial_unit", "pixel")
    if pixel_size:
        size, unit = (float(pixel_size),) * ndim, "µm"
    interval, time_unit = stored.get("frame_interval", 1.0), stored.get("time_unit", "frame")
    if frame_interval:
        interval, time_unit = float(frame_interval), "sec"
    return Calibration(size, unit, interval, time_unit)


def mean_intensities(graph: nx.DiGraph, masks: np.ndarray, images: np.ndarray | None) -> dict[int, float]:
    """Mean image intensity of every node's object (NaN for all without images); colour channels averaged."""
    if images is None:
        return {n: math.nan for n in graph}
    if len(images) != len(masks):
        raise InputError(f"the images have {len(images)} frames, the masks {len(masks)}")
    by_frame: dict[int, list[int]] = {}
    for n, d in graph.nodes(data=True):
        by_frame.setdefault(d["t"], []).append(n)
    out = {}
    for t, nodes in by_frame.items():
        labels = read_frame(masks, t)
        image = np.asarray(images[t], dtype=np.float64)
        if image.ndim == labels.ndim + 1:  # a trailing colour axis
            image = image.mean(-1)
        if image.shape != labels.shape:
            raise InputError(f"frame {t}: image {image.shape} and labels {labels.shape} differ in shape")
        wanted = np.array([graph.nodes[n]["label"] for n in nodes])
        sums = np.bincount(labels.ravel(), weights=image.ravel(), minlength=wanted.max() + 1)
        counts = np.bincount(labels.ravel(), minlength=wanted.max() + 1)
        out.update({n: float(sums[l] / counts[l]) if counts[l] else math.nan for n, l in zip(nodes, wanted)})
    return out


def object_table(graph: nx.DiGraph, masks: np.ndarray, images: np.ndarray | None = None, *,
                 first_frame: int = 0) -> list[dict]:
    """One row per object per frame: what users plot next.

    Parameters
    ----------
    graph, masks
        A tracking result (see :mod:`samzoo.tracking.lineage`).
    images : ndarray (T, [Z,] Y, X[, C]), optional
        For ``mean_intensity`` (NaN without).
    first_frame : int
        Number of the first frame (``frame`` is ``first_frame + t``).

    Returns
    -------
    list of dict with ``track_id``, ``frame``, ``[centroid_z,] centroid_y, centroid_x`` (pixels),
    ``area`` (pixels), ``mean_intensity`` and ``parent_track_id`` (0: none), sorted by track and frame.
    """
    intensity = mean_intensities(graph, masks, images)
    relabelled, tracks, _ = track_ids(graph)
    parents = {int(l): int(p) for l, _, _, p in tracks}
    rows = []
    for n, d in relabelled.nodes(data=True):
        centroid = dict(zip(("centroid_z", "centroid_y", "centroid_x")[-len(d["centroid"]):], d["centroid"]))
        rows.append({"track_id": int(d["track_id"]), "frame": first_frame + int(d["t"]), **centroid,
                     "area": int(d["area"]), "mean_intensity": intensity[n],
                     "parent_track_id": parents[int(d["track_id"])]})
    return sorted(rows, key=lambda r: (r["track_id"], r["frame"]))


def require_parquet() -> None:
    """Fail early, in one line, where Parquet cannot be written (pyarrow missing).

    pyarrow reaches samzoo only through other packages' dependencies, so it is not guaranteed;
    callers check before long work rather than after it.

    Raises
    ------
    OutputError
        pyarrow is not installed.
    """
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise OutputError("writing a Parquet table needs pyarrow, which is not installed: pip install pyarrow") \
            from None


def write_table(graph: nx.DiGraph, masks: np.ndarray, path: str | Path, images: np.ndarray | None = None, *,
                first_frame: int = 0) -> Path:
    """Write :func:`object_table` (atomically) as CSV or Parquet, chosen by the suffix of ``path``.

    Parameters
    ----------
    graph, masks, images, first_frame
        As for :func:`object_table`.
    path : path
        ``.csv``: text with 4 decimals, ``mean_intensity`` empty without images. ``.parquet``
        (needs pyarrow): typed columns, int64 ``track_id``, ``frame``, ``area`` and
        ``parent_track_id``, float64 centroids and ``mean_intensity`` (NaN without images).

    Returns
    -------
    Path of the file.

    Raises
    ------
    InputError
        A suffix other than ``.csv`` or ``.parquet``.
    OutputError
        ``.parquet`` without pyarrow, or a file that cannot be written.
    """
    path = Path(path)
    kind = path.suffix.lower().lstrip(".")
    if kind not in TABLE_FORMATS:
        raise InputError(f"a table is written as {' or '.join('.' + f for f in TABLE_FORMATS)}, not {path.name!r}")
    if kind == "parquet":
        require_parquet()  # before the table is computed
    rows = object_table(graph, masks, images, first_frame=first_frame)
    ndim = masks.ndim - 1
    fields = ["track_id", "frame", *("centroid_z", "centroid_y", "centroid_x")[-ndim:], "area", "mean_intensity",
              "parent_track_id"]
    if kind == "parquet":
        import pandas as pd

        # explicit types: an empty table (no objects) would otherwise have untyped (object) columns
        types = {f: "float64" if f.startswith("centroid") or f == "mean_intensity" else "int64" for f in fields}
        frame = pd.DataFrame(rows, columns=fields).astype(types)
        with atomic_path(path) as tmp:
            # pyarrow, the engine require_parquet checked: pandas' "auto" could take fastparquet instead
            frame.to_parquet(tmp, engine="pyarrow", index=False)
        return path
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else
                                 f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items()})
    return path


# (feature, name, short name, dimension, is integer), as TrackMate declares them
SPOT_FEATURES = [("QUALITY", "Quality", "Quality", "QUALITY", False),
                 ("POSITION_X", "X", "X", "POSITION", False), ("POSITION_Y", "Y", "Y", "POSITION", False),
                 ("POSITION_Z", "Z", "Z", "POSITION", False), ("POSITION_T", "T", "T", "TIME", False),
                 ("FRAME", "Frame", "Frame", "NONE", True), ("RADIUS", "Radius", "R", "LENGTH", False),
                 ("VISIBILITY", "Visibility", "Visibility", "NONE", True),
                 ("MEAN_INTENSITY_CH1", "Mean intensity ch1", "Mean ch1", "INTENSITY", False)]
EDGE_FEATURES = [("SPOT_SOURCE_ID", "Source spot ID", "Source ID", "NONE", True),
                 ("SPOT_TARGET_ID", "Target spot ID", "Target ID", "NONE", True),
                 ("LINK_COST", "Edge cost", "Cost", "COST", False),
                 ("EDGE_TIME", "Edge time", "Edge T", "TIME", False)]
TRACK_FEATURES = [("TRACK_INDEX", "Track index", "Index", "NONE", True), ("TRACK_ID", "Track ID", "ID", "NONE", True),
                  ("NUMBER_SPOTS", "Number of spots in track", "N spots", "NONE", True),
                  ("NUMBER_GAPS", "Number of gaps", "N gaps", "NONE", True),
                  ("LONGEST_GAP", "Longest gap", "Lgst gap", "NONE", True),
                  ("NUMBER_SPLITS", "Number of split events", "N splits", "NONE", True),
                  ("NUMBER_MERGES", "Number of merge events", "N merges", "NONE", True),
                  ("NUMBER_COMPLEX", "Number of complex points", "N complex", "NONE", True),
                  ("TRACK_DURATION", "Track duration", "Duration", "TIME", False),
                  ("TRACK_START", "Track start", "Track start", "TIME", False),
                  ("TRACK_STOP", "Track stop", "Track stop", "TIME", False)]


def _declare(parent: ET.Element, tag: str, features: list) -> None:
    group = ET.SubElement(parent, tag)
    for feature, name, short, dimension, is_int in features:
        ET.SubElement(group, "Feature", feature=feature, name=name, shortname=short, dimension=dimension,
                      isint=str(is_int).lower())


def _num(value: float) -> str:
    return repr(float(value))


def to_trackmate(graph: nx.DiGraph, masks: np.ndarray, path: str | Path, *, images: np.ndarray | None = None,
                 calibration: Calibration | None = None, image_path: str | Path | None = None) -> Path:
    """Write a tracking result as a TrackMate XML file (atomically) that Fiji's TrackMate loads.

    Parameters
    ----------
    graph, masks
        A tracking result (see :mod:`samzoo.tracking.lineage`); ``masks`` gives the image size.
    path : path
        The ``.xml`` file to write.
    images : ndarray, optional
        For the spots' ``MEAN_INTENSITY_CH1`` (left out without).
    calibration : Calibration, optional
        Pixel size, frame interval and units (default: pixels and frames).
    image_path : path, optional
        The movie, named in ``ImageData`` so that TrackMate can open it with the tracks.

    Returns
    -------
    Path of the file.
    """
    cal = calibration or Calibration(pixel_size=(1.0,) * (masks.ndim - 1))
    ndim = masks.ndim - 1
    size = tuple(cal.pixel_size)[-ndim:]
    if len(size) != ndim or any(not s > 0 for s in size):
        raise InputError(f"pixel size {cal.pixel_size} does not fit {ndim}-D frames (positive, one per axis)")
    if not cal.frame_interval > 0:
        raise InputError(f"the frame interval must be positive, got {cal.frame_interval}")
    intensity = mean_intensities(graph, masks, images) if images is not None else None
    root = ET.Element("TrackMate", version=TRACKMATE_VERSION)
    ET.SubElement(root, "Log").text = "Written by samzoo (tracking result exported to TrackMate XML)."
    model = ET.SubElement(root, "Model", spatialunits=cal.spatial_unit, timeunits=cal.time_unit)
    declarations = ET.SubElement(model, "FeatureDeclarations")
    _declare(declarations, "SpotFeatures", SPOT_FEATURES if intensity is not None else SPOT_FEATURES[:-1])
    _declare(declarations, "EdgeFeatures", EDGE_FEATURES)
    _declare(declarations, "TrackFeatures", TRACK_FEATURES)

    spots = ET.SubElement(model, "AllSpots", nspots=str(graph.number_of_nodes()))
    by_frame: dict[int, list[int]] = {}
    for n, d in graph.nodes(data=True):
        by_frame.setdefault(int(d["t"]), []).append(n)
    for t in range(len(masks)):  # every frame, empty ones too, as TrackMate writes them
        frame = ET.SubElement(spots, "SpotsInFrame", frame=str(t))
        for n in sorted(by_frame.get(t, [])):
            d = graph.nodes[n]
            position = [c * s for c, s in zip(d["centroid"], size)]  # (z,) y, x in physical units
            z = position[0] if ndim == 3 else 0.0
            # the radius of a disk (ball in 3-D) of the object's area, in x units
            radius = (math.sqrt(d["area"] / math.pi) if ndim == 2 else (3 * d["area"] / (4 * math.pi)) ** (1 / 3))
            attrs = {"ID": str(int(n)), "name": f"ID{int(n)}", "QUALITY": _num(d["area"]),
                     "POSITION_X": _num(position[-1]), "POSITION_Y": _num(position[-2]), "POSITION_Z": _num(z),
                     "POSITION_T": _num(t * cal.frame_interval), "FRAME": str(t),
                     "RADIUS": _num(radius * size[-1]), "VISIBILITY": "1"}
            if intensity is not None:
                attrs["MEAN_INTENSITY_CH1"] = _num(intensity[n])
            ET.SubElement(frame, "Spot", attrs)

    all_tracks = ET.SubElement(model, "AllTracks")
    filtered = ET.SubElement(model, "FilteredTracks")
    # a TrackMate track is a connected component with links, divisions included; lone spots are in none
    components = sorted((c for c in nx.weakly_connected_components(graph) if len(c) > 1),
                        key=lambda c: min((graph.nodes[n]["t"], n) for n in c))
    for index, nodes in enumerate(components):
        sub = graph.subgraph(nodes)
        frames = [graph.nodes[n]["t"] for n in nodes]
        gaps = [graph.nodes[v]["t"] - graph.nodes[u]["t"] - 1 for u, v in sub.edges]
        splits = sum(1 for n in nodes if sub.out_degree(n) > 1)
        merges = sum(1 for n in nodes if sub.in_degree(n) > 1)
        track = ET.SubElement(all_tracks, "Track", {
            "name": f"Track_{index}", "TRACK_INDEX": str(index), "TRACK_ID": str(index),
            "NUMBER_SPOTS": str(len(nodes)), "NUMBER_GAPS": str(sum(g > 0 for g in gaps)),
            "LONGEST_GAP": str(max(gaps)), "NUMBER_SPLITS": str(splits), "NUMBER_MERGES": str(merges),
            "NUMBER_COMPLEX": str(sum(1 for n in nodes if sub.out_degree(n) > 1 and sub.in_degree(n) > 1)),
            "TRACK_DURATION": _num((max(frames) - min(frames)) * cal.frame_interval),
            "TRACK_START": _num(min(frames) * cal.frame_interval),
            "TRACK_STOP": _num(max(frames) * cal.frame_interval)})
        for u, v in sorted(sub.edges, key=lambda e: (graph.nodes[e[0]]["t"], e)):
            edge_time = (graph.nodes[u]["t"] + graph.nodes[v]["t"]) / 2 * cal.frame_interval
            # -1: no cost, as for links made by hand in TrackMate
            ET.SubElement(track, "Edge", SPOT_SOURCE_ID=str(int(u)), SPOT_TARGET_ID=str(int(v)), LINK_COST="-1.0",
                          EDGE_TIME=_num(edge_time))
        ET.SubElement(filtered, "TrackID", TRACK_ID=str(index))

    settings = ET.SubElement(root, "Settings")
    shape = masks.shape[1:]
    image = Path(image_path).absolute() if image_path else None
    ET.SubElement(settings, "ImageData", filename=image.name if image else "",
                  folder=str(image.parent) + "/" if image else "", width=str(shape[-1]), height=str(shape[-2]),
                  nslices=str(shape[0] if ndim == 3 else 1), nframes=str(len(masks)), pixelwidth=_num(size[-1]),
                  pixelheight=_num(size[-2]), voxeldepth=_num(size[0] if ndim == 3 else 1.0),
                  timeinterval=_num(cal.frame_interval))
    ET.SubElement(settings, "BasicSettings", xstart="0", xend=str(shape[-1] - 1), ystart="0", yend=str(shape[-2] - 1),
                  zstart="0", zend=str(shape[0] - 1 if ndim == 3 else 0), tstart="0", tend=str(len(masks) - 1))
    areas = [d["area"] for _, d in graph.nodes(data=True)]
    typical = math.sqrt(float(np.median(areas)) / math.pi) * size[-1] if areas else 1.0
    ET.SubElement(settings, "DetectorSettings", DETECTOR_NAME="MANUAL_DETECTOR", RADIUS=_num(typical))
    ET.SubElement(settings, "InitialSpotFilter", feature="QUALITY", value="0.0", isabove="true")
    ET.SubElement(settings, "SpotFilterCollection")
    ET.SubElement(settings, "TrackerSettings", TRACKER_NAME="MANUAL_TRACKER")
    ET.SubElement(settings, "TrackFilterCollection")
    ET.SubElement(root, "GUIState", state="ConfigureViews")
    ET.indent(root)
    path = Path(path)
    with atomic_path(path) as tmp:
        ET.ElementTree(root).write(tmp, encoding="UTF-8", xml_declaration=True)
    return path
