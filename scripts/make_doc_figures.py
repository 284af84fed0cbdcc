"""Make the pictures of the documentation (``docs/images/*.png``) from the real data in ``../shared/data``.

Usage::

    python scripts/make_doc_figures.py [--shared ../shared] [--out docs/images]

Every picture is made by samzoo's own code on real microscopy data, and its title names the
method that made it: samzoo's default model (AIS) when it is installed, otherwise the classical
baseline (smoothing, Otsu threshold, watershed), which needs no model. The PNGs are kept small
(downscaled crops, 8-bit palette) so that they can live in the repository.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", default=os.environ.get("SAMZOO_SHARED", str(REPO.parent / "shared")))
    parser.add_argument("--out", default=str(REPO / "docs" / "images"))
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    data, out = Path(args.shared) / "data", Path(args.out)
    if not data.is_dir():
        print(f"no real data at {data}; pass --shared", file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    segment, made_with = segmenter()
    figure_automatic(data, out, segment, made_with)
    figure_tiling(data, out)
    figure_blocks(data, out)
    figure_volume(data, out, segment, made_with)
    return 0


if __name__ == "__main__":
    sys.exit(main())
