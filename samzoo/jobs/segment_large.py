"""Images larger than a block: segmented block by block (:mod:`samzoo.io.blocks`), or, with prompts,
window by window around the prompted objects (:mod:`samzoo.io.prompt_windows`), on dask, into a Zarr.

Each block or window is one work unit of :func:`samzoo.batch.run_batch`, saved as a part file in
``<output>.parts/`` (resumable work, next to the output, with its job record) until the parts are
stitched into the output. ``scale="auto"`` is resolved once for the whole image and recorded, so
every block and every plane uses the same scale and a resumed job keeps it.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from samzoo.api import planes_of
from samzoo.batch import check_job_record, run_batch
from samzoo.errors import InputError, option
from samzoo.io.blocks import merge_z_zarr, plan_blocks, segment_block, stitch_blocks
from samzoo.io.image import pixel_summary
from samzoo.io.prompt_windows import paste_windows, plan_windows, segment_window
from samzoo.io.write import check_writable
from samzoo.jobs.common import remove_outputs
from samzoo.jobs.segment_settings import SegmentResult, SegmentSettings, check_prompts_fit
from samzoo.segmentation.autoscale import resolve_scale

SCALE_WINDOW = 2048  # pixels of the central window "auto" scale is estimated on


def segment_large(settings: SegmentSettings, source: Path, image: xr.DataArray, output: Path, *, block: int,
                  block_halo: int, scheduler: Any = None, workers: int = 1, overwrite: bool = False,
                  progress: bool = False) -> SegmentResult:
    """Segment an image whose planes are larger than ``block`` into the ``.zarr`` ``output``.

    Without prompts every plane is cut into blocks (overlapping by ``block_halo``), with prompts
    each group of nearby objects gets a window; see the module docstring. Arguments as
    :func:`samzoo.segment_files`.
    """
    source, out = source.absolute(), output.absolute()
    if out.suffix.lower() != ".zarr":
        raise InputError(f"{source} is segmented block by block (larger than {option('block')} {block}); "
                         f"the output must be a .zarr folder, not {out.name}")
    check_writable(out)
    summary = pixel_summary(image)
    if summary.blank:
        raise InputError(f"{source}: {summary.blank}: there is nothing to segment")
    warnings = [f"{source}: {summary.missing} of {summary.pixels} pixels are NaN or infinite; they were segmented "
                "as background (label 0)"] if summary.missing else []
    prompts = settings.prompts()
    settings = fixed_scale(settings, image, prompts)
    batch = {"scheduler": scheduler, "workers": workers, "progress": progress}
    if prompts is not None:
        result = _prompt_windows(settings, source, out, image, prompts, block, overwrite, batch)
    else:
        result = _blocks(settings, source, out, image, block, block_halo, overwrite, batch)
    result.warnings = warnings
    return result


def _blocks(settings: SegmentSettings, source: Path, out: Path, image: xr.DataArray, block: int, block_halo: int,
            overwrite: bool, batch: dict) -> SegmentResult:
    units = plan_blocks(image, str(source), settings.axes, block, block_halo)
    parts_dir = out.with_name(out.name + ".parts")  # visible: it is resumable work, not a temporary
    check_job_record(parts_dir, settings.record(source=str(source), block=block, block_halo=block_halo),
                     overwrite=overwrite)
    parts = [parts_dir / u.name for u in units]
    if overwrite:
        remove_outputs(parts)
    report = run_batch(units, partial(segment_block, settings.segment_plane), parts, desc="blocks", unit="block",
                       **batch)
    merge_z = "z" in image.dims and settings.merge_z
    # with z-merging the stitched per-slice labels are an intermediate, kept with the parts until merged
    stitched = parts_dir / "slices.zarr" if merge_z else out
    n = stitch_blocks(units, parts, stitched, image, attrs={**image.attrs, "model": settings.model_name},
                      progress=batch["progress"])
    if merge_z:
        n = merge_z_zarr(stitched, out, min_z_extent=settings.min_z_extent, progress=batch["progress"])
    shutil.rmtree(parts_dir, ignore_errors=True)
    return SegmentResult("blocks", out, settings.model_name, outputs=[out], units=len(units), done=len(report.done),
                         skipped=len(report.skipped), objects=n, scale=float(settings.scale), source=source)


def fixed_scale(settings: SegmentSettings, image: xr.DataArray, prompts: dict | None) -> SegmentSettings:
    """Settings with ``scale="auto"`` (or None, the model's default) resolved once for the whole image.

    Every block and every plane then uses it. Estimated on the middle plane's central window of
    :data:`SCALE_WINDOW` pixels, read alone from a lazy image; the number goes into the job
    record, so a resumed job keeps it.
    """
    if settings.scale not in ("auto", None):
        return settings
    planes = planes_of(image)
    plane = planes.isel(plane=planes.sizes["plane"] // 2)
    h, w, half = plane.sizes["y"], plane.sizes["x"], SCALE_WINDOW // 2
    window = plane.isel(y=slice(max(h // 2 - half, 0), h // 2 + half), x=slice(max(w // 2 - half, 0), w // 2 + half))
    scale = resolve_scale(settings.load_model(), np.asarray(window.transpose("y", "x", ...).values), settings.scale,
                          prompts=prompts)
    return replace(settings, scale=scale)


def _prompt_windows(settings: SegmentSettings, source: Path, out: Path, image: xr.DataArray, prompts: dict,
                    block: int, overwrite: bool, batch: dict) -> SegmentResult:
    """Prompts on an image larger than a block: each group of nearby objects in its own window."""
    check_prompts_fit(prompts, image, source)
    model = settings.load_model()
    windows = plan_windows((image.sizes["y"], image.sizes["x"]), prompts, str(source), settings.axes, block=block,
                           margin=((settings.tile or model.input_size) - 1) // 2)  # one object: one tile
    parts_dir = out.with_name(out.name + ".parts")
    check_job_record(parts_dir, settings.record(source=str(source), block=block), overwrite=overwrite)
    parts = [parts_dir / w.name for w in windows]
    if overwrite:
        remove_outputs(parts)
    report = run_batch(windows, partial(segment_window, settings.segment_plane), parts, desc="windows",
                       unit="window", **batch)
    n = paste_windows(windows, parts, out, image, attrs={**image.attrs, "model": settings.model_name})
    shutil.rmtree(parts_dir, ignore_errors=True)
    return SegmentResult("windows", out, settings.model_name, outputs=[out], units=len(windows),
                         done=len(report.done), skipped=len(report.skipped), objects=n, prompted=len(prompts),
                         scale=float(settings.scale), source=source)
