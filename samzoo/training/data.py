"""Training data: 2D images with instance labels, their AIS targets, and augmented random crops.

A training pair is a 2D image ``(y, x)`` (one channel, any dtype) and an instance label image of
the same shape. Frames of movies and slices of volumes are separate pairs. Each pair is
normalised once (percentiles, as at inference), its AIS targets computed once, and every step
draws random crops from them.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import tifffile
import torch
from scipy import ndimage as ndi
from skimage.measure import regionprops
from torch.nn import functional as F

from samzoo.errors import InputError
from samzoo.io.normalize import colour_to_grey, percentile_normalize
from samzoo.segmentation.rescale import AUTO_SCALE_RANGE, object_diameter


@dataclass
class TrainingPair:
    """One 2D image, normalised to [0, 1], with its instance labels and AIS targets.

    Attributes
    ----------
    image : ndarray (H, W) float32 in [0, 1]
    labels : ndarray (H, W) int32, 0 = background
    targets : ndarray (3, H, W) float32: foreground, centre distance, boundary distance
    name : str
        Where the pair came from (file and frame), for logs.
    """

    image: np.ndarray
    labels: np.ndarray
    targets: np.ndarray
    name: str = ""


def instance_targets(labels: np.ndarray) -> np.ndarray:
    """Per-pixel AIS targets of an instance label image.

    Parameters
    ----------
    labels : ndarray (H, W) of int
        Instance labels, 0 = background.

    Returns
    -------
    ndarray (3, H, W) float32
        Foreground (0/1); distance to the object's centroid divided by the object's largest such
        distance (0 at the centre, 1 at its farthest pixel); distance to the object's boundary
        divided by the object's largest such distance (1 at its innermost pixel). Both
        distances are 0 on background. Normalising per object makes the targets independent of
        object size, so one set of watershed thresholds suits small and large objects.
    """
    targets = np.zeros((3,) + labels.shape, dtype=np.float32)
    targets[0] = labels > 0
    for region in regionprops(labels):
        y0, x0, y1, x1 = region.bbox
        # one pixel of margin so the edt sees the object's outside on every side
        y0, x0, y1, x1 = max(y0 - 1, 0), max(x0 - 1, 0), y1 + 1, x1 + 1
        mask = labels[y0:y1, x0:x1] == region.label
        boundary = ndi.distance_transform_edt(mask)
        yy, xx = np.nonzero(mask)
        cy, cx = region.centroid[0] - y0, region.centroid[1] - x0
        centre = np.hypot(yy - cy, xx - cx)
        targets[1, y0:y1, x0:x1][mask] = centre / max(centre.max(), 1e-6)
        targets[2, y0:y1, x0:x1][mask] = boundary[mask] / boundary.max()
    return targets


def _is_colour(image: np.ndarray, labels: np.ndarray) -> bool:
    return image.ndim == labels.ndim + 1 and image.shape[-1] in (3, 4) and image.shape[:-1] == labels.shape


def make_pair(image: np.ndarray, labels: np.ndarray, name: str = "") -> TrainingPair:
    """Normalise ``image`` and compute the AIS targets of ``labels``.

    ``image`` is ``(H, W)``, or colour ``(H, W, 3|4)`` turned into one channel as at inference
    (:func:`samzoo.io.normalize.colour_to_grey`); ``labels`` is ``(H, W)``.
    """
    if _is_colour(image, labels):
        image = colour_to_grey(image)
    if image.shape != labels.shape or image.ndim != 2:
        raise InputError(f"{name}: image {image.shape} and labels {labels.shape} must be equal 2D shapes")
    labels = labels.astype(np.int32)
    return TrainingPair(percentile_normalize(image), labels, instance_targets(labels), name)


def pairs_from_arrays(images: np.ndarray, labels: np.ndarray, name: str = "",
                      indices: Iterable[int] | None = None) -> list[TrainingPair]:
    """Training pairs from a stack ``(N, H, W)`` (colour: ``(N, H, W, 3)``) or a single image, and its labels."""
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim == labels.ndim == 2 or (labels.ndim == 2 and _is_colour(images, labels)):
        images, labels = images[None], labels[None]
    if images.shape != labels.shape and not _is_colour(images, labels):
        raise InputError(f"{name}: images {images.shape} and labels {labels.shape} differ in shape")
    indices = range(len(images)) if indices is None else indices
    return [make_pair(images[i], labels[i], f"{name}[{i}]") for i in indices]


def pairs_from_files(image_paths: Sequence[str] | str, label_paths: Sequence[str] | str) -> list[TrainingPair]:
    """Training pairs from matching image and label files (lists or glob patterns, sorted).

    Each file may hold one 2D image or a stack of 2D images (a movie or volume), one pair
    per plane.
    """
    def expand(paths):
        return sorted(glob.glob(paths)) if isinstance(paths, str) else [str(p) for p in paths]

    images, labels = expand(image_paths), expand(label_paths)
    if not images or len(images) != len(labels):
        raise InputError(f"found {len(images)} image files and {len(labels)} label files; they must match and be > 0")
    pairs = []
    for image_path, label_path in zip(images, labels):
        image, label = tifffile.imread(image_path), tifffile.imread(label_path)
        label = label.reshape((-1,) + label.shape[-2:])
        # colour planes (y, x, 3|4) keep their last axis; grey stacks are split into 2D planes
        colour = image.shape[-1] in (3, 4) and image.shape[-3:-1] == label.shape[-2:]
        image = image.reshape((-1,) + image.shape[-3:]) if colour else image.reshape((-1,) + image.shape[-2:])
        pairs += pairs_from_arrays(image, label, name=Path(image_path).name)
    return pairs


class CropSampler:
    """Draw augmented square crops from training pairs.

    Augmentation: random scale (``scale_range``, log-uniform), flips and 90-degree rotations,
    contrast/gamma/brightness jitter and Gaussian noise; optionally (``strong=True``) inverted
    contrast, Gaussian blur and a wider noise range, so that a generalist model sees dark objects
    on bright backgrounds (brightfield, stains), out-of-focus and noisy images. Crops are centred
    on a random object with probability ``object_bias`` so that sparse images (few cells in a
    large field) still teach something. Pairs smaller than the crop are zero-padded (labels 0
    there), as at inference.

    Parameters
    ----------
    pairs : list of TrainingPair
    weights : sequence of float, optional
        Sampling weight of each pair (e.g. to balance data sets); uniform by default.
    crop_size : int
    seed : int
    visible_targets : bool
        Objects cut by the crop's edge get the distance targets of their visible part, as
        objects cut by the image border have: every visible piece of an object then has a
        centre, and the watershed a seed for it. With False they keep the targets of the
        whole object, whose centre may lie outside the crop, and a model learns to give a
        sliver of an object at the edge no seed: such slivers (objects entering or leaving
        the field) are then lost at the image border.
    scale_range : (float, float)
        Smallest and largest zoom factor applied to a crop (>1 enlarges the objects).
    strong : bool
        Add inverted contrast (probability 0.3), blur (0.25) and stronger noise (up to 0.1).
    target_diameter : float, optional
        Bring each pair's objects to this median diameter (pixels) before the random zoom, as
        ``scale="auto"`` does at inference; a small model then learns one object size well
        instead of every size badly. None: pairs keep their own object sizes.
    dim_objects : float
        Probability that a crop gets some of its objects dimmed (see `dim_some_objects`), so
        that a model learns to find faint nuclei next to bright ones, as in movies where
        expression varies from cell to cell. 0 (the default) turns it off.
    paste_objects : float
        Probability that a crop gets objects of a second crop of the same image pasted onto it
        (see `paste_crop_objects`), so that sparse training images (a few bacteria in a large
        field) also teach crowded, touching objects. 0 (the default) turns it off.
    """

    def __init__(self, pairs: list[TrainingPair], weights: Sequence[float] | None = None,
                 crop_size: int = 512, seed: int = 0, object_bias: float = 0.7,
                 visible_targets: bool = False, scale_range: tuple[float, float] = (0.75, 1.33),
                 strong: bool = False, target_diameter: float | None = None,
                 dim_objects: float = 0.0, paste_objects: float = 0.0) -> None:
        if not pairs:
            raise InputError("no training pairs")
        self.pairs = pairs
        w = np.ones(len(pairs)) if weights is None else np.asarray(weights, dtype=float)
        self.p = w / w.sum()
        self.crop_size = crop_size
        self.object_bias = object_bias
        self.visible_targets = visible_targets
        self.scale_range = scale_range
        self.strong = strong
        self.target_diameter = target_diameter
        self.dim_objects = dim_objects
        self.paste_objects = paste_objects
        self.base_scale = np.ones(len(pairs))
        if target_diameter:
            diameters = np.array([object_diameter(p.labels) for p in pairs])
            # planes without objects keep their size; the clip keeps a crop's source region sensible
            self.base_scale = np.clip(np.nan_to_num(target_diameter / diameters, nan=1.0), *AUTO_SCALE_RANGE)
        self.rng = np.random.default_rng(seed)

    def sample(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return ``image (3, S, S)`` in 0..255, ``labels (S, S)`` int64, ``targets (3, S, S)``."""
        index = self.rng.choice(len(self.pairs), p=self.p)
        image, labels, targets, inside = self._crop(index)
        if self.paste_objects and self.rng.random() < self.paste_objects:
            donor_image, donor_labels, _, _ = self._crop(index)
            image, labels, targets = paste_crop_objects(image, labels, donor_image, donor_labels, inside, self.rng)
        if self.dim_objects and self.rng.random() < self.dim_objects:
            image = dim_some_objects(image, labels, inside, self.rng)
        image = self._jitter(image, inside)
        return image.expand(3, -1, -1) * 255.0, labels.long(), targets

    def _crop(self, index: int) -> tuple[torch.Tensor, ...]:
        """A zoomed, flipped and turned crop of pair ``index``: image, labels, targets, inside mask."""
        pair = self.pairs[index]
        scale = self.base_scale[index] * float(np.exp(self.rng.uniform(*np.log(self.scale_range))))
        src = int(round(self.crop_size / scale))  # side of the region read from the pair
        y0, x0 = self._crop_origin(pair, src)
        stack = np.concatenate([pair.image[None], pair.labels[None].astype(np.float32), pair.targets,
                                np.ones((1,) + pair.labels.shape, np.float32)])  # last: inside the image
        region = np.zeros((stack.shape[0], src, src), dtype=np.float32)
        part = stack[:, max(y0, 0):y0 + src, max(x0, 0):x0 + src]
        region[:, max(-y0, 0):max(-y0, 0) + part.shape[1], max(-x0, 0):max(-x0, 0) + part.shape[2]] = part
        region = torch.from_numpy(region)[None]
        size = (self.crop_size, self.crop_size)
        labels = F.interpolate(region[:, 1:2], size=size, mode="nearest")[0, 0]
        smooth = F.interpolate(region[:, [0, 2, 3, 4, 5]], size=size, mode="bilinear", align_corners=False)[0]
        image, targets, inside = smooth[0], smooth[1:4], smooth[4] > 0.5
        targets[0] = (labels > 0).float()
        if self.visible_targets:
            _retarget_cut_objects(labels, targets)
        return self._flip_rotate(image, labels, targets, inside)

    def _crop_origin(self, pair: TrainingPair, src: int) -> tuple[int, int]:
        h, w = pair.labels.shape
        if self.rng.random() < self.object_bias and pair.labels.any():
            ys, xs = np.nonzero(pair.labels)
            i = self.rng.integers(len(ys))
            cy, cx = ys[i] + self.rng.integers(-src // 4, src // 4 + 1), xs[i] + self.rng.integers(-src // 4, src // 4 + 1)
            y0, x0 = cy - src // 2, cx - src // 2
        else:
            y0, x0 = self.rng.integers(0, max(h - src, 0) + 1), self.rng.integers(0, max(w - src, 0) + 1)
        # keep the crop inside the image where the image is large enough
        y0 = int(np.clip(y0, 0, h - src)) if h >= src else int(min(y0, 0))
        x0 = int(np.clip(x0, 0, w - src)) if w >= src else int(min(x0, 0))
        return y0, x0

    def _flip_rotate(self, *maps: torch.Tensor) -> tuple[torch.Tensor, ...]:
        k = int(self.rng.integers(4))
        flip = bool(self.rng.random() < 0.5)
        out = []
        for m in maps:
            m = torch.rot90(m, k, dims=(-2, -1))
            out.append(torch.flip(m, dims=(-1,)) if flip else m)
        return tuple(o.contiguous() for o in out)

    def _jitter(self, image: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
        """Intensity augmentation; ``inside`` marks the pixels of the image (not padding)."""
        gamma = float(np.exp(self.rng.uniform(-0.4, 0.4)))
        contrast = float(self.rng.uniform(0.7, 1.3))
        brightness = float(self.rng.uniform(-0.1, 0.1))
        image = image.clamp(0, 1)
        if self.strong and self.rng.random() < 0.25:
            image = _blur(image, float(self.rng.uniform(0.5, 2.0)))
        if self.strong and self.rng.random() < 0.3:
            # the zero padding of a small image stays zero, as at inference
            image = torch.where(inside, 1.0 - image, image)
        # clamp again: rounding in the blur can leave -1e-9, and a negative base ** gamma is NaN
        image = image.clamp(0, 1) ** gamma * contrast + brightness
        if self.rng.random() < 0.5:
            image = image + torch.randn_like(image) * float(self.rng.uniform(0, 0.1 if self.strong else 0.05))
        return image.clamp(0, 1)


def paste_crop_objects(image: torch.Tensor, labels: torch.Tensor, donor_image: torch.Tensor,
                       donor_labels: torch.Tensor, inside: torch.Tensor, rng: np.random.Generator,
                       fraction: float = 0.5, max_overlap: float = 0.1
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Paste a random ``fraction`` of a donor crop's whole objects onto a crop (copy-paste augmentation).

    The donor is another crop of the same image (same object size and intensities), so the
    pasted objects look like the crop's own. They land where they were in the donor crop, next
    to or touching the crop's objects: an object that would cover more than ``max_overlap`` of
    its area of them (or of the padding of a small image) is not pasted, and the few pixels it
    covers become its own. Only objects not cut by the donor crop's edge are pasted. A 1-pixel
    blurred rim blends each pasted object into its new surroundings, so that no artificial
    edge marks it. All maps are ``(S, S)``.

    Returns
    -------
    image, labels, targets
        The new image, labels (pasted objects get new ids) and AIS targets ``(3, S, S)``,
        recomputed from the new labels.
    """
    ids = np.setdiff1d(torch.unique(donor_labels[donor_labels > 0]).numpy(), _cut_ids(donor_labels).numpy())
    # objects may touch the crop's own but not cover them: covered objects would become
    # crescents and rings, shapes that no image has
    taken = (labels > 0) | ~inside
    donor = donor_labels.long()
    area = torch.bincount(donor.flatten())
    covered = torch.bincount(donor[taken], minlength=len(area))
    ids = [i for i in ids[rng.random(len(ids)) < fraction] if covered[int(i)] < max_overlap * area[int(i)]]
    mask = torch.isin(donor_labels, torch.tensor(ids, dtype=donor_labels.dtype)) & inside
    if mask.any():
        alpha = torch.maximum(_blur(mask.float(), 1.0), mask.float())
        image = image * (1 - alpha) + donor_image * alpha
        labels = torch.where(mask, donor_labels + labels.max(), labels)
    return image, labels, torch.from_numpy(instance_targets(labels.numpy().astype(np.int32)))


def dim_some_objects(image: torch.Tensor, labels: torch.Tensor, inside: torch.Tensor,
                     rng: np.random.Generator, fraction: float = 0.4,
                     factor_range: tuple[float, float] = (0.03, 0.5)) -> torch.Tensor:
    """Bring a random ``fraction`` of the objects closer to the background level.

    Each chosen object's difference from the background (the median of the unlabelled pixels
    inside the image) is multiplied by a factor drawn log-uniformly from ``factor_range``; the
    object's mask is softened by a small blur so that no artificial edge appears. Works for
    bright-on-dark and dark-on-bright images alike. ``image``, ``labels``, ``inside``: ``(S, S)``.
    """
    ids = torch.unique(labels[labels > 0])
    background = image[inside & (labels == 0)]
    if len(ids) == 0 or background.numel() == 0:
        return image
    chosen = ids[torch.from_numpy(rng.random(len(ids)) < fraction)]
    if len(chosen) == 0:
        return image
    level = background.median()
    factor = torch.ones_like(image)
    for i in chosen.tolist():
        factor[labels == i] = float(np.exp(rng.uniform(*np.log(factor_range))))
    factor = _blur(factor, 1.0)
    return torch.where(inside, level + (image - level) * factor, image)


def _blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of a 2D image ``(S, S)`` (separable, reflect padding)."""
    radius = int(np.ceil(3 * sigma))
    kernel = torch.exp(-torch.arange(-radius, radius + 1, dtype=image.dtype) ** 2 / (2 * sigma ** 2))
    kernel = kernel / kernel.sum()
    x = F.pad(image[None, None], (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1))
    return F.conv2d(x, kernel.view(1, 1, -1, 1))[0, 0]


def _cut_ids(labels: torch.Tensor) -> torch.Tensor:
    """The ids of the objects that touch the edge of a crop ``(S, S)`` (0 left out)."""
    edges = torch.cat([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    return torch.unique(edges[edges > 0])


def _retarget_cut_objects(labels: torch.Tensor, targets: torch.Tensor) -> None:
    """Replace, in place, the distance targets of objects touching the crop's edge by those of their visible part."""
    cut = _cut_ids(labels)
    if len(cut) == 0:
        return
    inside = torch.isin(labels, cut)
    visible = instance_targets(torch.where(inside, labels, 0).numpy().astype(np.int32))
    targets[1:, inside] = torch.from_numpy(visible[1:])[:, inside]
