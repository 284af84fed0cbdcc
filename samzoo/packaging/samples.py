"""Test data and cover images for the packages, made from a real microscopy image.

Every package's test tensors are computed by samzoo itself from one central crop of a real
image (the model input size for the prompt package; larger than one tile for the AIS package),
so ``bioimageio test`` checks that a consumer reproduces samzoo's own results, and the covers
show what the model does on real data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage as ndi
from torch.nn import functional as F

from samzoo.errors import InputError
from samzoo.io.normalize import to_model_input

MAX_PROMPT_OBJECTS = 3
MIN_PROMPT_AREA = 50
MASK_PROMPT_LOGIT = 8.0  # the same value samzoo's predictor gives binary mask prompts


def default_test_image() -> np.ndarray:
    """Frame 17 (held out from samzoo's training) of the shared HeLa movie, ``(700, 1100)`` uint16.

    Looked up in ``$SAMZOO_SHARED/data``, else ``../shared/data`` beside the source checkout.
    """
    import tifffile

    root = Path(os.environ.get("SAMZOO_SHARED", Path(__file__).resolve().parents[3] / "shared"))
    path = root / "data" / "Fluo_Hela_02_img.tif"
    if not path.is_file():
        raise InputError(f"no test image given and the default one ({path}) is missing; pass an image "
                         "(--image) for the package's test tensors and covers")
    return tifffile.imread(path, key=17)


def square_crop(image: np.ndarray, size: int) -> np.ndarray:
    """The central ``size x size`` crop of a ``(H, W[, C])`` image, reflect-padded when smaller."""
    return central_crop(image, size, size)


def central_crop(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """The central ``height x width`` crop of a ``(H, W[, C])`` image, reflect-padded when smaller."""
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise InputError(f"the test image must be 2D (y, x) or (y, x, c), got shape {image.shape}")
    pads = [(0, max(size - n, 0)) for n, size in zip(image.shape[:2], (height, width))] + [(0, 0)] * (image.ndim - 2)
    if any(p[1] for p in pads):
        image = np.pad(image, pads, mode="reflect")
    y0, x0 = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
    return np.ascontiguousarray(image[y0:y0 + height, x0:x0 + width])


def channels_first(image: np.ndarray) -> np.ndarray:
    """``(H, W)`` or ``(H, W, C)`` -> ``(1, C, H, W)`` float32 (the packages' raw input layout)."""
    image = np.asarray(image, dtype=np.float32)
    image = image[..., None] if image.ndim == 2 else image
    return np.ascontiguousarray(np.moveaxis(image, -1, 0)[None])


@dataclass
class PromptSample:
    """Prompts for a few objects of one image, in the prompt package's layout (batch size 1).

    Attributes
    ----------
    boxes : ndarray (1, N, 4) float32, ``(xmin, ymin, xmax, ymax)``
    points : ndarray (1, N, 2, 2) float32, ``(x, y)``: one positive point inside, one negative outside
    point_labels : ndarray (1, N, 2) int64
    masks : ndarray (1, N, 1, 4g, 4g) float32, mask logits
    object_masks : ndarray (N, S, S) bool, the objects the prompts came from
    """

    boxes: np.ndarray
    points: np.ndarray
    point_labels: np.ndarray
    masks: np.ndarray
    object_masks: np.ndarray


def prompts_from_labels(labels: np.ndarray, mask_size: int) -> PromptSample:
    """Box, point and mask prompts for the (up to 3) largest objects of a label image.

    Parameters
    ----------
    labels : ndarray (S, S) int
        Instances; 0 is background.
    mask_size : int
        Side of the low-resolution mask prompt (``4 * input_size // 16``).
    """
    ids, areas = np.unique(labels[labels > 0], return_counts=True)
    order = np.argsort(-areas, kind="stable")
    chosen = ids[order][areas[order] >= MIN_PROMPT_AREA][:MAX_PROMPT_OBJECTS]
    if len(chosen) == 0:
        raise InputError(f"the test image crop has no object of at least {MIN_PROMPT_AREA} pixels to prompt")
    height, width = labels.shape
    boxes, points, masks, objects = [], [], [], []
    for object_id in chosen:
        obj = labels == object_id
        ys, xs = np.nonzero(obj)
        box = [xs.min(), ys.min(), xs.max(), ys.max()]
        inside = np.unravel_index(np.argmax(ndi.distance_transform_edt(obj)), obj.shape)  # deepest pixel
        outside = (min(max(box[1] - 4, 0), height - 1), min(max(box[0] - 4, 0), width - 1))
        boxes.append(box)
        points.append([[inside[1], inside[0]], [outside[1], outside[0]]])
        low = F.interpolate(torch.from_numpy(obj.astype(np.float32))[None, None], size=(mask_size, mask_size),
                            mode="area")[0]
        masks.append(((low * 2 - 1) * MASK_PROMPT_LOGIT).numpy())
        objects.append(obj)
    n = len(chosen)
    return PromptSample(
        boxes=np.asarray(boxes, dtype=np.float32)[None],
        points=np.asarray(points, dtype=np.float32)[None],
        point_labels=np.tile(np.array([1, 0], dtype=np.int64), (1, n, 1)),
        masks=np.stack(masks).astype(np.float32)[None],
        object_masks=np.stack(objects),
    )


def _overlay(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``(S, S, 3)`` uint8: the image with coloured, outlined objects (as ``samzoo segment`` draws them)."""
    from skimage.color import label2rgb
    from skimage.segmentation import find_boundaries

    rgb = np.moveaxis(to_model_input(image), 0, -1) / 255.0
    out = label2rgb(labels, image=rgb, alpha=0.3, bg_label=0, image_alpha=1.0)
    out[find_boundaries(labels, mode="outer")] = (1.0, 1.0, 0.0)
    return (np.clip(out, 0, 1) * 255).astype(np.uint8)


def write_cover(image: np.ndarray, labels: np.ndarray, path: str | os.PathLike,
                boxes: np.ndarray | None = None) -> Path:
    """A 2:1 PNG cover: the image on the left, the objects on the right (boxes drawn in cyan).

    Parameters
    ----------
    image : ndarray (S, S) or (S, S, C)
    labels : ndarray (S, S) int
    boxes : ndarray (N, 4), optional
        ``(xmin, ymin, xmax, ymax)`` box prompts to draw.
    """
    import imageio.v3 as iio
    from skimage.draw import rectangle_perimeter

    left = np.moveaxis(to_model_input(image), 0, -1).astype(np.uint8)
    right = _overlay(image, labels)
    for xmin, ymin, xmax, ymax in ([] if boxes is None else boxes):
        for grow in (0, 1):  # two pixels wide, visible when the cover is shown small
            rr, cc = rectangle_perimeter((ymin - grow, xmin - grow), (ymax + grow, xmax + grow), shape=labels.shape)
            right[rr, cc] = (0, 255, 255)
    iio.imwrite(path, np.concatenate([left, right], axis=1), extension=".png")
    return Path(path)
