"""Make the pictures of the documentation (``docs/images/*.png``) from the real data in ``../shared/data``.

Usage::

    python scripts/make_doc_figures.py [--shared ../shared] [--out docs/images] [--only tracking ...]

Every picture is made by samzoo's own code on real microscopy data, and its title names the
method that made it: samzoo's default model (AIS) when it is installed, otherwise the classical
baseline (smoothing, Otsu threshold, watershed), which needs no model. The tracking pictures
(``--only tracking``: ``tracks.png``, ``lineage.png``) track the first 20 frames of the shared CTC
sequence Fluo-N2DH-SIM+ 01 with the default model and the overlap linker (about 20 s on a 2-core CPU).
The PNGs are kept small (downscaled crops, 8-bit palette) so that they can live in the repository.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FIGURES = ["automatic", "prompts", "tiling", "blocks", "volume", "tracking"]  # --only: tracking = tracks.png + lineage.png


def segmenter():
    """``(function image -> labels, name)``: the default model's AIS if installed, else the classical baseline."""
    from samzoo.errors import SamzooError
    from samzoo.segmentation.classical import classical_baseline

    try:
        from samzoo.models.load import load_model
        from samzoo.segmentation.ais import segment_ais

        model = load_model()
        return (lambda image: segment_ais(model, image)), f"{model.name} (AIS)"
    except SamzooError:  # the default model is not shipped yet
        return classical_baseline, "classical baseline (no model)"


def _save(fig, path: Path) -> None:
    """Save a figure as a small palette PNG, atomically."""
    from PIL import Image

    from samzoo.io.write import atomic_path

    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    image = Image.fromarray(rgb).quantize(colors=128, method=Image.Quantize.MEDIANCUT)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG", optimize=True)
    print(f"{path} ({path.stat().st_size // 1024} KiB)")


def _overlay(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    from skimage.color import label2rgb
    from skimage.segmentation import find_boundaries

    from samzoo.io.normalize import percentile_normalize

    gray = percentile_normalize(image)
    rgb = label2rgb(labels, image=np.stack([gray] * 3, -1), alpha=0.3, bg_label=0, image_alpha=1.0)
    rgb[find_boundaries(labels, mode="inner")] = (1.0, 1.0, 0.0)
    return np.clip(rgb, 0, 1)


def figure_automatic(data: Path, out: Path, segment, made_with: str) -> None:
    """HeLa nuclei and E. coli: input, automatic result."""
    import matplotlib.pyplot as plt
    import tifffile

    from samzoo.segmentation.classical import classical_baseline

    hela = tifffile.imread(data / "Fluo_Hela_02_img.tif", key=17)[150:450, 300:700]
    bacteria = tifffile.imread(data / "trpL_150310-11_img.tif", key=17)[230:510, 120:400]  # the colony
    fig, axes = plt.subplots(2, 2, figsize=(7, 6.6), dpi=80)
    dark = (lambda image: classical_baseline(image, dark_objects=True, sigma=1.5, min_size=20)) \
        if made_with.startswith("classical") else segment
    for row, (name, image, fn) in enumerate([("HeLa nuclei (Fluo-N2DL-HeLa, frame 17)", hela, segment),
                                             ("E. coli, phase contrast (trpL, frame 17)", bacteria, dark)]):
        labels = fn(image)
        axes[row, 0].imshow(image, cmap="gray")
        axes[row, 0].set_title(name, fontsize=9)
        axes[row, 1].imshow(_overlay(image, labels))
        axes[row, 1].set_title(f"{labels.max()} objects, made with: {made_with}", fontsize=9)
    for ax in axes.ravel():
        ax.axis("off")
    fig.tight_layout()
    _save(fig, out / "automatic.png")
    plt.close(fig)


def figure_prompts(data: Path, out: Path) -> None:
    """HeLa nuclei prompted by one click or one box each (the default model), and what it returned."""
    import matplotlib.pyplot as plt
    import tifffile
    from matplotlib.patches import Rectangle
    from skimage.measure import regionprops

    from samzoo.evaluation.interactive import _deepest_pixel
    from samzoo.models.load import load_model
    from samzoo.segmentation.embeddings import compute_embeddings
    from samzoo.segmentation.predictor import Prompt, paint_labels, predict

    # frame 17 is held out from the default model's training; its ground truth places the prompts
    rows, cols = slice(150, 406), slice(300, 556)
    image = tifffile.imread(data / "Fluo_Hela_02_img.tif", key=17)[rows, cols]
    truth = tifffile.imread(data / "Fluo_Hela_02_ERR_SEG.tif", key=17)[rows, cols]
    model = load_model()
    objects = [r for r in regionprops(truth) if r.area >= 50 and min(r.bbox[:2]) > 2
               and r.bbox[2] < truth.shape[0] - 2 and r.bbox[3] < truth.shape[1] - 2]
    prompts = {}
    for i, r in enumerate(objects):  # alternately a click at the nucleus' deepest pixel and a box around it
        if i % 2 == 0:
            prompts[r.label] = Prompt(points=[_deepest_pixel(truth == r.label)], point_labels=[1])
        else:
            y0, x0, y1, x1 = r.bbox
            prompts[r.label] = Prompt(box=[y0, x0, y1 - 1, x1 - 1])
    results = predict(model, compute_embeddings(model, image), prompts)
    labels = paint_labels(results, truth.shape)
    masks = {k: r.full_mask(truth.shape) for k, r in results.items()}
    ious = [(masks[k] & (truth == k)).sum() / (masks[k] | (truth == k)).sum() for k in prompts]
    fig, axes = plt.subplots(1, 2, figsize=(7, 4.1), dpi=80)
    axes[0].imshow(image, cmap="gray")
    for k, p in prompts.items():
        if p.box is None:
            axes[0].plot(p.points[0][1], p.points[0][0], "o", color="lime", markersize=4)
        else:
            y0, x0, y1, x1 = p.box
            axes[0].add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="cyan", linewidth=1))
    axes[0].set_title("HeLa frame 17 (held out): a click (green)\nor a box (cyan) per annotated nucleus", fontsize=9)
    axes[1].imshow(_overlay(image, labels))
    axes[1].set_title(f"{model.name}: {len(prompts)} masks, mean IoU with\nthe ground truth {np.mean(ious):.2f}",
                      fontsize=9)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    _save(fig, out / "prompts.png")
    plt.close(fig)


def figure_tiling(data: Path, out: Path) -> None:
    """How a HeLa frame is cut into model tiles: inner regions and halos."""
    import matplotlib.pyplot as plt
    import tifffile
    from matplotlib.patches import Rectangle

    from samzoo.segmentation.tiling import tile_grid

    frame = tifffile.imread(data / "Fluo_Hela_02_img.tif", key=17)
    tiles = tile_grid(frame.shape, 512, 64)
    fig, ax = plt.subplots(figsize=(8, 5.3), dpi=80)
    ax.imshow(frame, cmap="gray", vmin=np.percentile(frame, 1), vmax=np.percentile(frame, 99.8))
    colours = plt.cm.tab10(np.arange(len(tiles)))
    for tile, colour in zip(tiles, colours):
        for region, style in ((tile.outer, "--"), (tile.inner, "-")):
            y0, x0, y1, x1 = region
            ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec=colour, ls=style, lw=2))
    ax.set_title(f"{len(tiles)} tiles of 512 px with a 64 px halo on a 700 x 1100 frame: inner regions (solid) "
                 "partition the image,\nouter regions (dashed) are what the model sees", fontsize=9)
    ax.axis("off")
    fig.tight_layout()
    _save(fig, out / "tiling.png")
    plt.close(fig)


def figure_blocks(data: Path, out: Path) -> None:
    """A frame segmented block by block and stitched: objects across block borders stay whole."""
    import matplotlib.pyplot as plt
    import tifffile
    import zarr

    from samzoo.batch import run_batch
    from samzoo.io import read_image
    from samzoo.io.blocks import plan_blocks, segment_block, stitch_blocks
    from samzoo.segmentation.classical import classical_baseline

    frame = tifffile.imread(data / "Fluo_Hela_02_img.tif", key=17)[:400, :600]
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "frame.zarr"
        array = zarr.create_array(str(source), shape=frame.shape, dtype=frame.dtype, chunks=(128, 128),
                                  dimension_names=["y", "x"])
        array[:] = frame
        image = read_image(source)
        units = plan_blocks(image, str(source), None, block=256, halo=48)
        parts = [Path(tmp) / u.name for u in units]
        run_batch(units, lambda u, p: segment_block(classical_baseline, u, p), parts, progress=False)
        stitch_blocks(units, parts, Path(tmp) / "labels.zarr", image)
        labels = np.asarray(zarr.open_group(str(Path(tmp) / "labels.zarr"), mode="r")["labels"][:])
    fig, ax = plt.subplots(figsize=(8, 5.6), dpi=80)
    ax.imshow(_overlay(frame, labels))
    for unit in units:
        y0, x0, y1, x1 = unit.tile.inner
        ax.plot([x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0], color="cyan", lw=1.2)
    ax.set_title(f"{len(units)} blocks of 256 px (cyan: inner borders), each segmented on its own and stitched "
                 f"where blocks overlap:\n{labels.max()} objects. Made with: classical baseline (no model; it "
                 "normalises each block, so faint nuclei next to bright ones are missed)", fontsize=9)
    ax.axis("off")
    fig.tight_layout()
    _save(fig, out / "blocks.png")
    plt.close(fig)


def figure_volume(data: Path, out: Path, segment, made_with: str) -> None:
    """3D nuclei: slices segmented one by one, joined into 3D objects (same colour = same object)."""
    import matplotlib.pyplot as plt
    import tifffile
    from skimage.color import label2rgb

    from samzoo.segmentation.volume import merge_slices

    from samzoo.segmentation.classical import classical_baseline

    volume = tifffile.imread(data / "nuclei3d_img.tif")
    # the nuclei are ~10 px across here: the baseline needs less smoothing than on the HeLa frames
    per_slice = (lambda plane: classical_baseline(plane, sigma=1.0, min_size=8)) \
        if made_with.startswith("classical") else segment
    slices = np.stack([per_slice(plane) for plane in volume])
    merged = merge_slices(slices)
    shown = [8, 12, 16, 20]
    fig, axes = plt.subplots(2, len(shown), figsize=(8, 4.4), dpi=80)
    for j, z in enumerate(shown):
        axes[0, j].imshow(volume[z], cmap="gray")
        axes[0, j].set_title(f"z = {z}", fontsize=9)
        axes[1, j].imshow(label2rgb(merged[z], bg_label=0, colors=plt.cm.tab20(np.arange(20))[:, :3]))
    for ax in axes.ravel():
        ax.axis("off")
    fig.suptitle(f"3D nuclei (stardist's nuclei3d): {merged.max()} objects joined across slices. "
                 f"Made with: {made_with}", fontsize=9)
    fig.tight_layout()
    _save(fig, out / "volume.png")
    plt.close(fig)


CTC_SEQUENCE = ("ctc", "Fluo-N2DH-SIM+", "01")  # under the shared data folder


def track_ctc_frames(data: Path, n_frames: int = 20):
    """``(images, result, model name)``: the first frames of a shared CTC sequence, tracked by samzoo.

    The frames are read as ``samzoo track`` reads a CTC folder (:func:`samzoo.io.read_movie`),
    segmented by the default model's AIS with ``samzoo track``'s defaults and linked by samzoo's
    overlap linker (named, so that a trackastra model in the cache does not change the picture).
    """
    from samzoo import tracking
    from samzoo.io import read_movie
    from samzoo.io.sequence import natural_key
    from samzoo.models.load import load_model

    folder = data.joinpath(*CTC_SEQUENCE)
    frames = sorted(folder.glob("t*.tif"), key=natural_key)[:n_frames]
    images = read_movie(frames).values
    model = load_model()
    # scale None: the model's default ("auto"), as samzoo track; gamma: its default too (the steadier of 1 and 0.5)
    result = tracking.track(images, model=model, linker="overlap", scale=None)
    return images, result, model.name


def _trails(graph, frame: int, length: int) -> dict[int, np.ndarray]:
    """Track id -> centroids ``(k, 2)`` of each object of ``frame`` and its ancestors, up to ``length`` frames back."""
    trails = {}
    for node, attrs in graph.nodes(data=True):
        if attrs["t"] != frame:
            continue
        points = [attrs["centroid"]]
        current = node
        while len(points) <= length:
            parents = list(graph.predecessors(current))
            if not parents:
                break
            current = parents[0]
            points.append(graph.nodes[current]["centroid"])
        trails[int(attrs["label"])] = np.asarray(points[::-1], dtype=float)
    return trails


def _ground_truth_counts(folder: Path, n_frames: int) -> tuple[int, int]:
    """``(tracks, divisions)`` of a CTC sequence's ground truth (``01_GT/TRA/man_track.txt``) in its first frames."""
    rows = np.loadtxt(folder.parent / f"{folder.name}_GT" / "TRA" / "man_track.txt", dtype=int, ndmin=2)
    rows = rows[rows[:, 1] < n_frames]
    parents, counts = np.unique(rows[rows[:, 3] > 0, 3], return_counts=True)
    return len(rows), int((counts >= 2).sum())


def figure_tracking(data: Path, out: Path, n_frames: int = 20, shown=(0, 11, 19), tracked=None) -> None:
    """Tracks on frames of a real CTC sequence, and its lineage tree (``tracks.png``, ``lineage.png``).

    ``tracked`` is ``track_ctc_frames``'s result, when it is already at hand.
    """
    import matplotlib.pyplot as plt
    from matplotlib import patheffects
    from matplotlib.ticker import MaxNLocator
    from skimage.segmentation import find_boundaries

    from samzoo.io.normalize import percentile_normalize
    from samzoo.tracking import lineage_plot

    images, result, model_name = tracked or track_ctc_frames(data, n_frames)
    name = " ".join(CTC_SEQUENCE[1:])
    truth_tracks, truth_divisions = _ground_truth_counts(data.joinpath(*CTC_SEQUENCE), n_frames)
    n_tracks, n_divisions = len(result.tracks), int(sum(result.graph.out_degree(n) == 2 for n in result.graph))
    counts = (f"{n_tracks} tracks, {n_divisions} divisions (ground truth: {truth_tracks} tracks, "
              f"{truth_divisions} divisions)")
    made_with = f"Made with: {model_name} (AIS) + samzoo's overlap linker; not the ground truth"
    palette = plt.cm.tab20(np.arange(20))[:, :3]
    outline = [patheffects.withStroke(linewidth=1.5, foreground="black")]
    fig, axes = plt.subplots(1, len(shown), figsize=(3.4 * len(shown), 4.4), dpi=90)
    for ax, frame in zip(axes, shown):
        labels = np.asarray(result.masks[frame])
        rgb = np.stack([np.clip(percentile_normalize(images[frame]), 0, 1)] * 3, -1)
        edges = find_boundaries(labels, mode="thick")
        rgb[edges] = palette[labels[edges] % 20]
        ax.imshow(rgb)
        for track_id, points in _trails(result.graph, frame, length=frame).items():
            ax.plot(points[:, 1], points[:, 0], color=palette[track_id % 20], lw=1.5)
            ax.text(points[-1, 1], points[-1, 0], str(track_id), color="white", fontsize=7, ha="center",
                    va="center", path_effects=outline)
        ax.set_title(f"frame {frame} (t{frame:03d}.tif)", fontsize=9)
        ax.axis("off")
    fig.suptitle(f"{name}, frames 0-{n_frames - 1}: {counts}.\nOutlines and ids: track segments; lines: each "
                 f"nucleus's path since frame 0 (its mother's included).\n{made_with}", fontsize=8.5)
    fig.tight_layout()
    _save(fig, out / "tracks.png")
    plt.close(fig)

    fig = lineage_plot(result.graph, title=f"Lineage tree of {name}, frames 0-{n_frames - 1} (red dots: divisions)"
                                           f"\n{counts}\n{made_with}", max_labels=len(result.tracks))
    fig.set_size_inches(8, 0.085 * len(result.tracks) + 1.4)
    fig.set_dpi(80)
    ax = fig.axes[0]
    for text in ax.texts:
        text.set_fontsize(5.5)
    ax.title.set_fontsize(9)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    _save(fig, out / "lineage.png")
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", default=os.environ.get("SAMZOO_SHARED", str(REPO.parent / "shared")))
    parser.add_argument("--out", default=str(REPO / "docs" / "images"))
    parser.add_argument("--only", nargs="+", choices=FIGURES, default=FIGURES, metavar="FIGURE",
                        help=f"make only these figures ({', '.join(FIGURES)}; default: all)")
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    data, out = Path(args.shared) / "data", Path(args.out)
    if not data.is_dir():
        print(f"no real data at {data}; pass --shared", file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    if {"automatic", "volume"} & set(args.only):
        segment, made_with = segmenter()
    if "automatic" in args.only:
        figure_automatic(data, out, segment, made_with)
    if "prompts" in args.only:
        figure_prompts(data, out)
    if "tiling" in args.only:
        figure_tiling(data, out)
    if "blocks" in args.only:
        figure_blocks(data, out)
    if "volume" in args.only:
        figure_volume(data, out, segment, made_with)
    if "tracking" in args.only:
        figure_tracking(data, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
