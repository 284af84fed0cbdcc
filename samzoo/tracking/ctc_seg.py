"""The Cell Tracking Challenge's SEG measure, on the annotated frames of a CTC ground truth.

The CTC's definition (Ulman et al., Nature Methods 2017; Maška et al., Nature Methods 2023):
a reference object ``R`` of an annotated frame and a result object ``S`` match when
``|R ∩ S| > 0.5 |R|`` (so at most one ``S`` matches each ``R``); the score of ``R`` is the
Jaccard index ``|R ∩ S| / |R ∪ S|`` of its match, or 0 without one; SEG is the mean over all
reference objects of all annotated frames. Result objects that match nothing cost nothing.

Ground truth: ``SEG/man_segTTT.tif`` (a whole frame ``TTT``, 2-D or 3-D) and, in 3-D datasets,
``SEG/man_seg_TTT_ZZZ.tif`` (slice ``ZZZ`` of frame ``TTT`` only). Frame numbers are those of
the file names; the result's ``maskTTT.tif`` of the same number is compared.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from samzoo.errors import InputError

_WHOLE = re.compile(r"^man_seg(\d+)\.tiff?$")
_SLICE = re.compile(r"^man_seg_(\d+)_(\d+)\.tiff?$")


@dataclass(frozen=True)
class SegAnnotation:
    """One annotated frame (or slice of a 3-D frame) of a CTC ``SEG`` folder."""

    frame: int  # frame number, as in the file name
    z: int | None  # the slice of a 3-D frame, or None for the whole frame
    path: Path


def read_seg_folder(folder: str | Path) -> list[SegAnnotation]:
    """The annotations of a CTC ``SEG`` folder, sorted by frame and slice.

    Raises
    ------
    InputError
        The folder is missing or holds no ``man_seg*.tif``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder (CTC segmentation ground truth: SEG/man_seg000.tif ...)")
    found = []
    for path in folder.iterdir():
        if match := _WHOLE.match(path.name):
            found.append(SegAnnotation(int(match.group(1)), None, path))
        elif match := _SLICE.match(path.name):
            found.append(SegAnnotation(int(match.group(1)), int(match.group(2)), path))
    if not found:
        raise InputError(f"{folder} holds no man_seg*.tif files")
    return sorted(found, key=lambda a: (a.frame, -1 if a.z is None else a.z))


def object_scores(result: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The SEG score of each reference object in one frame: Jaccard of its match, or 0.

    Parameters
    ----------
    result, reference : ndarray of int, same shape
        Label images (0 is background).

    Returns
    -------
    ndarray of float, one score per reference label, in increasing label order.
    """
    if result.shape != reference.shape:
        raise InputError(f"result {result.shape} and reference {reference.shape} differ in shape")
    reference, result = reference.ravel().astype(np.int64), result.ravel().astype(np.int64)
    ref_labels, ref_sizes = np.unique(reference[reference > 0], return_counts=True)
    if not len(ref_labels):
        return np.zeros(0)
    res_labels, res_sizes = np.unique(result[result > 0], return_counts=True)
    both = (reference > 0) & (result > 0)
    # each (reference, result) pair's overlap, from one pass over the overlapping pixels
    r = np.searchsorted(ref_labels, reference[both])
    s = np.searchsorted(res_labels, result[both])
    pairs, overlap = np.unique(r * len(res_labels) + s, return_counts=True)
    scores = np.zeros(len(ref_labels))
    for pair, inter in zip(pairs, overlap):
        i, j = divmod(int(pair), len(res_labels))
        if inter > 0.5 * ref_sizes[i]:  # the one result object covering more than half of R
            scores[i] = inter / (ref_sizes[i] + res_sizes[j] - inter)
    return scores


def seg_measure(result_masks: np.ndarray, annotations: list[SegAnnotation], *, first_frame: int = 0) -> dict:
    """The CTC SEG measure of a result movie against the annotated frames.

    Parameters
    ----------
    result_masks : ndarray (T, [Z,] Y, X) int
        The result, ``result_masks[i]`` being frame number ``first_frame + i``.
    annotations : list of SegAnnotation
        From :func:`read_seg_folder`.
    first_frame : int
        Frame number of ``result_masks[0]``.

    Returns
    -------
    dict with ``SEG`` (NaN when the annotations hold no object), ``seg_objects`` (reference
    objects scored) and ``seg_frames`` (annotated frames or slices).
    """
    import tifffile

    scores = []
    for annotation in annotations:
        index = annotation.frame - first_frame
        if not 0 <= index < len(result_masks):
            raise InputError(f"{annotation.path.name} annotates frame {annotation.frame}, but the result has frames "
                             f"{first_frame} to {first_frame + len(result_masks) - 1}")
        result = np.asarray(result_masks[index])
        if annotation.z is not None:
            if result.ndim != 3 or not 0 <= annotation.z < result.shape[0]:
                raise InputError(f"{annotation.path.name} annotates slice {annotation.z}, but the result's frames "
                                 f"have shape {result.shape}")
            result = result[annotation.z]
        reference = tifffile.imread(annotation.path)
        if reference.shape != result.shape:
            raise InputError(f"{annotation.path.name} has shape {reference.shape}, the result's frame {result.shape}")
        scores.append(object_scores(result, reference))
    scores = np.concatenate(scores) if scores else np.zeros(0)
    return {"SEG": float(scores.mean()) if len(scores) else float("nan"), "seg_objects": int(len(scores)),
            "seg_frames": len(annotations)}
