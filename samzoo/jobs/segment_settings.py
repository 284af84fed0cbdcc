"""The settings of a segmentation job (sent to dask workers) and what the job reports back."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from samzoo.api import CLASSICAL_NAME, MODES, segment_plane_at
from samzoo.errors import InputError, option
from samzoo.io.normalize import check_gamma
from samzoo.jobs.common import absolute, check_scale, check_workers, job_model
from samzoo.segmentation.views import resolve_views


@dataclass(frozen=True)
class SegmentSettings:
    """Everything that determines a result, and is sent to dask workers (small, picklable)."""

    model: Any  # a name or file (None: samzoo's own model), or a loaded model
    mode: str
    axes: str | None
    tile: int | None
    halo: int | None
    cache: bool
    merge_z: bool
    min_z_extent: int
    points: str | None
    boxes: str | None
    scale: float | str | None = None  # a number, "auto" or None: the model's default (resolved per image; per job
    # for blocks and windows)
    decoder: str | None = None  # micro-sam's AIS decoder file, for SAM / micro-sam model files
    gamma: float = 1.0  # intensity compression before segmenting (images in memory only)
    views: int | None = None  # AIS test-time views; None: the model's default (a number once checked)

    @property
    def needs_model(self) -> bool:
        return self.mode != "classical" or bool(self.points or self.boxes)

    @property
    def automatic(self) -> bool:
        """Objects are found by a model, without prompts (where finding none deserves a warning)."""
        return self.mode != "classical" and not (self.points or self.boxes)

    def absolute(self) -> SegmentSettings:
        """The settings with absolute file paths, for workers in another working directory."""
        return replace(self, model=absolute(self.model), points=absolute(self.points), boxes=absolute(self.boxes),
                       decoder=absolute(self.decoder))

    def load_model(self):
        """The job's model (loaded once per worker); None where none is needed."""
        return job_model(self.model, self.decoder) if self.needs_model else None

    @property
    def model_name(self) -> str:
        return self.load_model().name if self.needs_model else CLASSICAL_NAME

    def prompts(self) -> dict | None:
        """``{object id: Prompt}`` from the points and boxes CSVs; None without prompts."""
        from samzoo.io import read_boxes_csv, read_points_csv
        from samzoo.segmentation.predictor import Prompt

        if not (self.points or self.boxes):
            return None
        points = read_points_csv(self.points) if self.points else {}
        boxes = read_boxes_csv(self.boxes) if self.boxes else {}
        empty = (np.zeros((0, 2)), np.zeros(0, dtype=int))
        return {i: Prompt(points=points.get(i, empty)[0], point_labels=points.get(i, empty)[1], box=boxes.get(i))
                for i in sorted(set(points) | set(boxes))}

    def segment_plane(self, plane: np.ndarray, prompts: dict | None = None, *, progress: bool = False) -> np.ndarray:
        """Labels ``(H, W)`` of one 2D plane with these settings (a block, a window)."""
        return segment_plane_at(self.load_model(), plane, float(self.scale), prompts=prompts, mode=self.mode,
                                tile_size=self.tile, halo=self.halo, cache=self.cache, progress=progress,
                                views=self.views or 1)

    def record(self, **extra) -> dict:
        """The job record: settings plus the weights hash (a retrained model under the same name differs)."""
        record = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "cache"}  # cache: same results
        for key in ("gamma", "views"):  # at 1, as before they existed: earlier jobs' records stay valid
            if record[key] == 1:
                del record[key]
        record.update(extra, model=self.model_name)
        if self.needs_model:
            record["weights_hash"] = self.load_model().weights_hash
        for key in ("points", "boxes"):  # the prompts themselves, not just the file names
            if record[key]:
                record[key] = Path(record[key]).read_text(encoding="utf-8", errors="replace")
        return record


def check_prompts_fit(prompts: dict | None, image, name) -> None:
    """Prompts are for one 2D image: refuse them for a movie or volume, naming the input."""
    if prompts is not None and any(d in image.dims for d in ("t", "z")):
        raise InputError(f"prompts need a 2D image, but {name} has axes {''.join(image.dims)}; select one plane first")


def check_segment_options(settings: SegmentSettings, *, block: int | None, block_halo: int, workers: int,
                          fmt: str) -> SegmentSettings:
    """Numbers that are accepted by type but make no sense, as one clear message each; then the model.

    The model is loaded here, before any work: an unknown model or a halo too large for its tiles
    fails at once. Returns the settings with the scale checked and the number of views decided.
    """
    if settings.mode not in MODES:
        raise InputError(f"unknown {option('mode')} {settings.mode!r}; known: {', '.join(MODES)}")
    tile, halo = settings.tile, settings.halo
    if tile is not None and tile < 16:
        raise InputError(f"{option('tile')} must be at least 16 pixels, got {tile}")
    if halo is not None and (halo < 0 or 2 * halo >= (tile or 10**9)):
        raise InputError(f"{option('halo')} must satisfy 0 <= 2 * halo < tile, got halo {halo}"
                         + (f" and tile {tile}" if tile else ""))
    if settings.min_z_extent < 1:
        raise InputError(f"{option('min_z_extent')} must be at least 1, got {settings.min_z_extent}")
    if block is not None and block < 64:
        raise InputError(f"{option('block')} must be at least 64 pixels, got {block}")
    if block_halo < 0 or (block is not None and 4 * block_halo > block):
        # beyond a quarter, blocks mostly repeat their neighbours' pixels and their number explodes
        raise InputError(f"{option('block_halo')} must be from 0 to a quarter of {option('block')}, got {block_halo}; "
                         f"for large objects use a larger {option('block')}")
    check_workers(workers)
    if fmt not in ("tif", "zarr"):
        raise InputError(f"{option('format')} must be 'tif' or 'zarr', got {fmt!r}")
    settings = replace(settings, scale=check_scale(settings.scale), gamma=check_gamma(settings.gamma))
    if settings.needs_model:
        model = settings.load_model()
        settings = replace(settings, views=resolve_views(model, settings.views, settings.mode if settings.automatic
                                                         else "prompts"))
        tile = min(settings.tile or model.input_size, model.input_size)
        if halo is not None and 2 * halo >= tile:
            raise InputError(f"{option('halo')} {halo} is too large for tiles of {tile} pixels "
                             "(it must be less than half the tile)")
    else:  # no model: the classical baseline, which takes one view (more are refused)
        settings = replace(settings, views=resolve_views(None, settings.views, settings.mode))
    return settings


@dataclass
class SegmentResult:
    """What :func:`samzoo.segment_files` did.

    Attributes
    ----------
    kind : str
        ``"image"`` (one file in memory), ``"movie"`` (the frame files of one movie into one
        label file), ``"batch"`` (one label file per input), ``"blocks"`` (an image larger than a
        block, block by block) or ``"windows"`` (prompts on such an image).
    output : Path
        The label file, or the batch's folder.
    model : str
        The model's name (or the classical baseline's).
    outputs : list of Path
        Every label file of the job (a batch's too, finished earlier or now).
    units, done, skipped : int
        Work units (images of a batch, blocks, windows; 1 otherwise); computed by this call;
        finished by an earlier call and kept.
    objects : int or None
        Objects in the labels (one image, movie or block job; per plane for movies, 3D objects
        for volumes); None for a batch.
    planes : int or None
        2D planes segmented (one image or movie).
    prompted : int or None
        Prompted objects (windows).
    scale : float or None
        The scale used (``"auto"`` resolved; None for a batch, where each image has its own).
    overlay : Path or None
        The overlay PNG written.
    source : Path or None
        The input (a movie's: the folder of its frames).
    empty : list of Path
        Inputs that clearly show structure where the model found no object.
    blank : list of Path
        Batch inputs that hold nothing to segment (every pixel NaN or equal): their labels are empty.
    warnings : list of str
        One line each: NaN pixels, blank inputs, no objects found.
    """

    kind: str
    output: Path
    model: str
    outputs: list[Path] = field(default_factory=list)
    units: int = 1
    done: int = 1
    skipped: int = 0
    objects: int | None = None
    planes: int | None = None
    prompted: int | None = None
    scale: float | None = None
    overlay: Path | None = None
    source: Path | None = None
    empty: list[Path] = field(default_factory=list)
    blank: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
