"""Peak memory of ``samzoo track`` on a Zarr movie: in memory against frame by frame (out of core).

A simulated movie (:func:`samzoo.tracking.simulate_movie`) is tiled ``--tiles`` x ``--tiles``
times into a large movie (each tile's labels offset so that they stay distinct) and saved as
Zarr, image and masks. ``samzoo track movie.zarr --masks masks.zarr`` then runs twice, each
time in a fresh Python process that reports its own peak resident memory (``VmHWM``, Linux):

- ``in memory``: ``--max-memory 1000`` (the movie is read whole, as for a TIFF);
- ``frame by frame``: ``--max-memory 0`` (:func:`samzoo.tracking.track.track_on_disk`).

Both must write identical CTC folders (checked); the table gives peak memory and wall time of
each and their ratios, measured in the same run.

Usage::

    OMP_NUM_THREADS=1 python scripts/bench_track_memory.py [--frames 20] [--size 256] [--tiles 8]
"""

from __future__ import annotations

import argparse
import filecmp
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent at fork, VmHWM starts anew at exec
CHILD = """
import sys
from samzoo.cli.main import main
code = main(sys.argv[1:])
status = open("/proc/self/status").read().splitlines()
print("PEAK_KIB", next(line.split()[1] for line in status if line.startswith("VmHWM")))
sys.exit(code)
"""


def tiled_movie(frames: int, size: int, tiles: int) -> tuple[np.ndarray, np.ndarray]:
    """Image and masks ``(frames, size * tiles, size * tiles)`` made of one simulated movie."""
    from samzoo.tracking.simulate import simulate_movie

    movie = simulate_movie(n_frames=frames, shape=(size, size), n_cells=8, seed=0)
    top = int(movie.masks.max())
    images = np.tile(movie.images, (1, tiles, tiles))
    masks = np.zeros(images.shape, dtype=np.uint32)
    for i in range(tiles):
        for j in range(tiles):
            offset = (i * tiles + j) * top
            tile = movie.masks.astype(np.uint32)
            masks[:, i * size:(i + 1) * size, j * size:(j + 1) * size] = np.where(tile > 0, tile + offset, 0)
    return images, masks


def save_zarr(path: Path, array: np.ndarray) -> None:
    import zarr

    store = zarr.create_array(str(path), shape=array.shape, chunks=(1, *array.shape[1:]), dtype=array.dtype)
    store[:] = array


def run(folder: Path, out: str, max_memory: str) -> tuple[float, float]:
    """Peak memory (MiB) and wall time (s) of one ``samzoo track`` process."""
    argv = [sys.executable, "-c", CHILD, "track", str(folder / "movie.zarr"), "--masks", str(folder / "masks.zarr"),
            "--axes", "tyx", "--linker", "overlap", "-o", str(folder / out), "--max-memory", max_memory]
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(done.stderr)
    peak = next(int(line.split()[1]) for line in done.stdout.splitlines() if line.startswith("PEAK_KIB"))
    return peak / 1024, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--tiles", type=int, default=8)
    args = parser.parse_args()
    images, masks = tiled_movie(args.frames, args.size, args.tiles)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        save_zarr(folder / "movie.zarr", images)
        save_zarr(folder / "masks.zarr", masks)
        movie_mib = (images.nbytes + masks.nbytes) / 2 ** 20
        del images, masks
        memory = run(folder, "memory", "1000")
        disk = run(folder, "disk", "0")
        names = sorted(p.name for p in (folder / "memory").iterdir())
        same = names == sorted(p.name for p in (folder / "disk").iterdir()) and all(
            filecmp.cmp(folder / "memory" / n, folder / "disk" / n, shallow=False) for n in names)
    print(f"movie: {args.frames} frames of {args.size * args.tiles} x {args.size * args.tiles}, "
          f"image + uint32 masks {movie_mib:.0f} MiB; outputs identical: {same}")
    print(f"{'path':<16}{'peak MiB':>10}{'wall s':>9}")
    for name, (peak, wall) in (("in memory", memory), ("frame by frame", disk)):
        print(f"{name:<16}{peak:>10.0f}{wall:>9.1f}")
    print(f"{'ratio':<16}{disk[0] / memory[0]:>10.2f}{disk[1] / memory[1]:>9.2f}  (frame by frame / in memory)")


if __name__ == "__main__":
    main()
