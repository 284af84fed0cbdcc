"""micro-sam's automatic mask generation (AMG), step by step: what SAM-family models get by default.

micro-sam 1.8.14's ``AutomaticMaskGenerator`` (and, for tiled embeddings,
``TiledAutomaticMaskGenerator``) with ``automatic_instance_segmentation``'s defaults:

- a grid of ``points_per_side`` x ``points_per_side`` points over each tile *with* its halo (over
  the whole image when it is one tile), SAM's ``build_point_grid``: point ``i`` at ``(i + 0.5) / n``
  of the tile's height and width;
- every point decoded on its tile, each with all three of SAM's multimask outputs as candidates;
- a candidate is kept when its predicted IoU is above ``pred_iou_threshold`` (0.88) and its
  stability score (IoU of the mask at logits > 1 and > -1) at least ``stability_threshold`` (0.95);
  with tiles, a mask whose box lies within 20 pixels of a tile edge that is not an image edge is
  dropped (SAM's ``is_box_near_crop_edge``);
- box NMS per tile (IoU 0.7, by predicted IoU), then, with several tiles, box NMS across tiles
  preferring masks of smaller tiles (``crop_nms_thresh``);
- with ``min_size`` > 0 (micro-sam's ``min_mask_region_area``, 0 by default): SAM's removal of small
  holes and islands (8-connected) and a second NMS preferring masks it did not change;
- ``util.mask_data_to_segmentation(with_background=True, merge_exclusively=False)``: masks painted
  largest first (smaller ones over larger ones), each label's connected parts (4-connected) made
  objects of their own, the largest label removed when it is larger than the background (it
  "often covers the background"), labels made consecutive.

The same operations in the same order, with the same tie-breaking (torchvision's NMS on the same
boxes and scores in the same order). Only the decoding is samzoo's, the same numbers computed with
less work (:func:`samzoo.segmentation.mask_decoder.decode_tokens` with ``factored=True``): a prompt's
masks are only upscaled when one of its predicted IoUs passed, and only those masks are brought to
full resolution (micro-sam upsamples all three masks of every point to the tile's size first).
On seeded vit_b weights, with the same (float32) embeddings, the labels equal micro-sam's object for
object; ``scripts/parity_microsam.py`` compares them, ``scripts/bench_microsam_speed.py`` times them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage as ndi
from skimage.measure import label as connected_components
from skimage.segmentation import relabel_sequential
from torchvision.ops import batched_nms
from tqdm import tqdm

from samzoo.models.model import SamzooModel
from samzoo.segmentation.embeddings import ImageEmbeddings
from samzoo.segmentation.mask_decoder import decode_tokens, token_major, upscale_masks
from samzoo.segmentation.sam_input import postprocess_logits, scale_xy
from samzoo.segmentation.tiling import Tile

# AutomaticMaskGenerator.generate's defaults in micro-sam 1.8.14
PRED_IOU_THRESHOLD = 0.88
STABILITY_THRESHOLD = 0.95
NMS_IOU = 0.7
EDGE_TOLERANCE = 20.0  # segment_anything.utils.amg.is_box_near_crop_edge's atol, pixels
# prompts decoded together on a CPU (at most batch_size; elsewhere batch_size): with 4096 image tokens
# per prompt, one at a time is fastest there (vit_b, one thread: 52 ms per prompt alone, 58-66 ms per
# prompt in calls of 4-8, while measuring during development)
CPU_PROMPTS_PER_CALL = 1


@dataclass
class MaskCandidate:
    """An accepted mask: its box ``(x0, y0, x1, y1)`` in the image, corners inclusive (SAM's boxes),
    the mask inside that box, its predicted IoU, and the tile it was decoded in."""

    box: tuple[int, int, int, int]
    mask: np.ndarray
    score: float
    tile: int

    @property
    def area(self) -> int:
        return int(self.mask.sum())

    def full_mask(self, shape: tuple[int, int]) -> np.ndarray:
        full = np.zeros(shape, dtype=bool)
        if self.mask.size:
            x0, y0, x1, y1 = self.box
            full[y0:y1 + 1, x0:x1 + 1] = self.mask
        return full

    @classmethod
    def of(cls, mask: np.ndarray, score: float, tile: Tile) -> MaskCandidate:
        """From a mask of the tile: SAM's box (``[0, 0, 0, 0]`` for an empty mask), in image pixels."""
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        if not len(rows):
            return cls((0, 0, 0, 0), np.zeros((0, 0), bool), score, tile.index)
        crop = mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].copy()
        y0, x0 = tile.outer[0] + rows[0], tile.outer[1] + cols[0]
        return cls((int(x0), int(y0), int(x0 + crop.shape[1] - 1), int(y0 + crop.shape[0] - 1)), crop, score,
                   tile.index)


def sam_grid(tile: Tile, points_per_side: int) -> np.ndarray:
    """SAM's point grid over a tile (its outer region): ``(N, 2)`` ``(y, x)`` image pixels, row by row."""
    offset = 1 / (2 * points_per_side)
    side = np.linspace(offset, 1 - offset, points_per_side)
    y0, x0, y1, x1 = tile.outer
    ys, xs = np.meshgrid(side * (y1 - y0), side * (x1 - x0), indexing="ij")
    return np.stack([ys.ravel() + y0, xs.ravel() + x0], -1)


@torch.no_grad()
def tile_candidates(model: SamzooModel, embeddings: ImageEmbeddings, tile: Tile, points_per_side: int, *,
                    pred_iou_threshold: float, stability_threshold: float, batch_size: int = 64,
                    bar: tqdm | None = None) -> list[MaskCandidate]:
    """Every grid point of one tile decoded (three masks each), filtered by predicted IoU and stability.

    In micro-sam's order: by point, then by SAM's mask index.
    """
    sam = model.sam
    device = next(model.parameters()).device
    y0, x0, y1, x1 = tile.outer
    hw = (y1 - y0, x1 - x0)
    size = model.input_size
    points = sam_grid(tile, points_per_side)
    embedding = torch.from_numpy(embeddings.features[tile.index][None]).to(device)
    grid = tuple(embedding.shape[-2:])
    decoder = sam.mask_decoder
    # the image with the "no mask" prompt, and the positional encoding, token-major once for every prompt
    no_mask = sam.prompt_encoder(points=None, boxes=None, masks=None)[1]
    image_tokens, pe_tokens = token_major(embedding + no_mask, sam.prompt_encoder.get_dense_pe())
    chunk = max(1, min(batch_size, CPU_PROMPTS_PER_CALL) if device.type == "cpu" else batch_size)
    out = []
    for start in range(0, len(points), chunk):
        part = points[start:start + chunk]
        coords = torch.as_tensor(scale_xy(part[:, None, ::-1] - (x0, y0), hw, size), device=device)
        labels = torch.ones(len(part), 1, dtype=torch.int, device=device)
        sparse, _ = sam.prompt_encoder(points=(coords, labels), boxes=None, masks=None)
        tokens, image = decode_tokens(decoder, image_tokens, pe_tokens, sparse, None, factored=True)
        iou = decoder.iou_prediction_head(tokens[:, 0])[:, 1:]  # SAM's three multimask outputs
        keep = iou > pred_iou_threshold if pred_iou_threshold > 0 else torch.ones_like(iou, dtype=torch.bool)
        rows = keep.any(1).nonzero()[:, 0]  # only prompts with a mask left are upscaled
        if len(rows):
            low_res = upscale_masks(decoder, tokens[rows], image[rows], grid, range(1, 4))
            which = keep[rows].flatten().nonzero()[:, 0]  # point-major, then mask index: micro-sam's order
            logits = postprocess_logits(low_res.flatten(0, 1)[which][:, None], hw, size)[:, 0]
            stability = (logits > 1).sum((1, 2)) / (logits > -1).sum((1, 2))  # NaN for no pixel > -1, as SAM
            stable = stability >= stability_threshold if stability_threshold > 0 else torch.ones_like(stability) > 0
            if stable.any():
                binary = (logits[stable] > 0).cpu().numpy()
                scores = iou[rows].flatten()[which][stable].tolist()
                out += [MaskCandidate.of(mask, score, tile) for mask, score in zip(binary, scores)]
        if bar is not None:
            bar.update(len(part))
    return out


def near_tile_edge(candidates: list[MaskCandidate], tile: Tile, shape: tuple[int, int]) -> np.ndarray:
    """SAM's ``is_box_near_crop_edge``: a box within 20 pixels of a tile edge that is not an image edge."""
    if not candidates:
        return np.zeros(0, bool)
    boxes = torch.tensor([c.box for c in candidates], dtype=torch.float)
    y0, x0, y1, x1 = tile.outer
    crop = torch.tensor([x0, y0, x1, y1], dtype=torch.float)
    image = torch.tensor([0, 0, shape[1], shape[0]], dtype=torch.float)
    near_crop = torch.isclose(boxes, crop[None], atol=EDGE_TOLERANCE, rtol=0)
    near_image = torch.isclose(boxes, image[None], atol=EDGE_TOLERANCE, rtol=0)
    return torch.any(near_crop & ~near_image, dim=1).numpy()


def box_nms(candidates: list, scores: torch.Tensor, iou: float, boxes: list | None = None) -> list:
    """torchvision's ``batched_nms`` with one category, as micro-sam calls it; best first.

    The boxes are the candidates' own unless given.
    """
    if not candidates:
        return []
    boxes = torch.tensor(boxes if boxes is not None else [c.box for c in candidates], dtype=torch.float)
    return [candidates[i] for i in batched_nms(boxes, scores, torch.zeros(len(boxes)), iou).tolist()]


def remove_small_regions(mask: np.ndarray, min_size: int, mode: str) -> tuple[np.ndarray, bool]:
    """``segment_anything.utils.amg.remove_small_regions`` (8-connected, as its OpenCV call), with scipy."""
    holes = mode == "holes"
    regions, n = ndi.label(mask ^ holes, structure=np.ones((3, 3), bool))
    sizes = np.bincount(regions.ravel(), minlength=n + 1)[1:]
    small = [i + 1 for i, s in enumerate(sizes) if s < min_size]
    if not small:
        return mask, False
    fill = [0] + small
    if not holes:
        fill = [i for i in range(n + 1) if i not in fill] or [int(np.argmax(sizes)) + 1]
    return np.isin(regions, fill), True


def _small_regions(candidates: list[MaskCandidate], shape: tuple[int, int], min_size: int,
                   nms_iou: float) -> list[MaskCandidate]:
    """micro-sam's ``_postprocess_small_regions``: holes and islands removed, then NMS preferring unchanged masks."""
    if not candidates:
        return []
    updated, scores = [], []
    for c in candidates:
        mask, holes_changed = remove_small_regions(c.full_mask(shape), min_size, "holes")
        mask, islands_changed = remove_small_regions(mask, min_size, "islands")
        updated.append(MaskCandidate.of(mask, c.score, Tile(c.tile, (0, 0) + tuple(shape), (0, 0) + tuple(shape))))
        scores.append(0.0 if holes_changed or islands_changed else 1.0)
    # micro-sam replaces only the changed masks that survive; unchanged ones are the same either way
    chosen = box_nms(list(range(len(updated))), torch.tensor(scores), nms_iou, boxes=[c.box for c in updated])
    return [updated[i] if scores[i] == 0.0 else candidates[i] for i in chosen]


def paint_microsam(candidates: list[MaskCandidate], shape: tuple[int, int]) -> np.ndarray:
    """``mask_data_to_segmentation(with_background=True, merge_exclusively=False)``: ``(H, W)`` int32 labels."""
    labels = np.zeros(shape, dtype=np.int32)
    for i, c in enumerate(sorted(candidates, key=lambda c: -c.area), start=1):  # stable: ties keep their order
        if c.mask.size:
            x0, y0, x1, y1 = c.box
            labels[y0:y1 + 1, x0:x1 + 1][c.mask] = i
    labels = connected_components(labels, background=0, connectivity=1).astype(np.int32)
    ids, sizes = np.unique(labels, return_counts=True)
    largest = ids[np.argmax(sizes)]
    if largest:  # the largest label, unless it is the background, is taken to be the background
        labels[labels == largest] = 0
        labels = relabel_sequential(labels)[0].astype(np.int32, copy=False)
    return labels


def segment_amg_microsam(model: SamzooModel, embeddings: ImageEmbeddings, *, points_per_side: int = 32,
                         pred_iou_threshold: float = PRED_IOU_THRESHOLD,
                         stability_threshold: float = STABILITY_THRESHOLD, nms_iou: float = NMS_IOU,
                         min_size: int = 0, batch_size: int = 64, progress: bool = False) -> np.ndarray:
    """micro-sam's AMG on samzoo's embeddings (see the module's description).

    ``nms_iou`` is micro-sam's ``box_nms_thresh`` and ``crop_nms_thresh`` both (0.7 each by default);
    ``min_size`` is its ``min_mask_region_area``.
    """
    shape = embeddings.shape
    kept: list[MaskCandidate] = []
    bar = tqdm(total=points_per_side ** 2 * len(embeddings.tiles), desc="AMG", disable=not progress, leave=False)
    for tile in embeddings.tiles:
        candidates = tile_candidates(model, embeddings, tile, points_per_side, pred_iou_threshold=pred_iou_threshold,
                                     stability_threshold=stability_threshold, batch_size=batch_size, bar=bar)
        near = near_tile_edge(candidates, tile, shape)
        candidates = [c for c, n in zip(candidates, near) if not n]
        kept += box_nms(candidates, torch.tensor([c.score for c in candidates], dtype=torch.float), nms_iou)
    bar.close()
    if len(embeddings.tiles) > 1 and kept:
        # prefer masks of smaller tiles (micro-sam: 1 / the crop box's area)
        areas = {t.index: (t.outer[2] - t.outer[0]) * (t.outer[3] - t.outer[1]) for t in embeddings.tiles}
        kept = box_nms(kept, 1 / torch.tensor([areas[c.tile] for c in kept]), nms_iou)
    if min_size > 0:
        kept = _small_regions(kept, shape, min_size, nms_iou)
    return paint_microsam(kept, shape)
