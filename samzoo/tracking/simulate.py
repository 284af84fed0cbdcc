"""A simulator of fluorescent nuclei with exact ground truth: masks, tracks and lineage.

Nuclei are ellipses with a wobbly outline (a few Fourier harmonics of the radius) that
drift with persistent random motion, slowly deform and rotate, push each other apart,
enter through the image border, leave it, and divide. A division replaces the mother (last
seen in frame ``t``) by two daughters in frame ``t + 1``, each with about half its area,
placed on either side of the mother's centre; daughters grow back to a normal size.

Images are the masks painted with per-nucleus brightness and a little texture, brighter in
the middle than at the rim (a nucleus is a flattened ellipsoid, so the stained chromatin in a
widefield column is thickest at its centre: ``dome``), blurred by a Gaussian (the microscope's
point-spread function) and corrupted by Poisson and Gaussian noise. Ground truth follows the
Cell Tracking Challenge (CTC) convention: every track segment between divisions has its own
label, and ``tracks`` holds one ``L B E P`` row per label (label, first frame, last frame,
parent label or 0).

Example
-------
>>> movie = simulate_movie(n_frames=5, shape=(96, 96), n_cells=4, seed=1)
>>> movie.images.shape, movie.masks.shape, movie.tracks.shape[1]
((5, 96, 96), (5, 96, 96), 4)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from samzoo.errors import InputError


@dataclass
class SimulatedMovie:
    """A simulated movie and its ground truth.

    Attributes
    ----------
    images : ndarray (T, H, W) uint16
    masks : ndarray (T, H, W) uint16
        CTC-style labels: one label per track segment, constant over its frames.
    tracks : ndarray (N, 4) int
        ``L B E P`` rows: label, first frame, last frame, parent label (0 for none).
    """

    images: np.ndarray
    masks: np.ndarray
    tracks: np.ndarray

    @property
    def n_divisions(self) -> int:
        """Number of mothers with daughters."""
        _, counts = np.unique(self.tracks[self.tracks[:, 3] > 0, 3], return_counts=True)
        return int((counts >= 2).sum())

    def save_ctc(self, root: str | Path, sequence: str = "01") -> Path:
        """Write the movie in CTC layout: ``root/01/t000.tif`` and ``root/01_GT/TRA/``.

        Returns
        -------
        Path of the ground-truth folder (``root/01_GT/TRA``) holding ``man_track000.tif`` and
        ``man_track.txt``.
        """
        import tifffile

        from samzoo.io.write import atomic_path
        from samzoo.tracking.formats import write_ctc

        image_dir = Path(root) / sequence
        with atomic_path(image_dir, directory=True) as tmp:
            tmp.mkdir()
            for t, image in enumerate(self.images):
                tifffile.imwrite(tmp / f"t{t:03d}.tif", image)
        return write_ctc(Path(root) / f"{sequence}_GT" / "TRA", self.masks, self.tracks,
                         mask_pattern="man_track{:03d}.tif", track_file="man_track.txt")


@dataclass
class _Cell:
    label: int
    parent: int
    center: np.ndarray  # (y, x)
    velocity: np.ndarray
    radii: np.ndarray  # (a, b), the current semi-axes
    target_radii: np.ndarray  # what the radii relax to (daughters grow back)
    angle: float
    harmonics: np.ndarray  # (k, 2): amplitude, phase of radius harmonics 2..k+1
    brightness: float
    age: int = 0
    cycle: int = 0  # frames until this cell divides
    start: int = 0
    frames: list = field(default_factory=list)


def simulate_movie(n_frames: int = 30, shape: tuple[int, int] = (256, 256), *, n_cells: int = 12,
                   radius: float = 9.0, speed: float = 1.5, cycle_frames: tuple[int, int] = (12, 30),
                   enter_rate: float = 0.15, blur: float = 1.5, noise: float = 0.08, dome: float = 0.5,
                   seed: int = 0, min_area: int = 12) -> SimulatedMovie:
    """Simulate a 2D movie of moving, deforming, entering, leaving and dividing nuclei.

    Parameters
    ----------
    n_frames : int
    shape : (int, int)
        Image height and width.
    n_cells : int
        Nuclei in the first frame.
    radius : float
        Typical nucleus radius in pixels (each nucleus varies around it).
    speed : float
        Typical displacement per frame in pixels (persistent random walk).
    cycle_frames : (int, int)
        A nucleus divides after a number of frames drawn uniformly from this range (the first
        generation starts at a random point of its cycle, so divisions start early).
    enter_rate : float
        Expected number of nuclei entering through the border per frame.
    blur : float
        Gaussian blur sigma in pixels.
    noise : float
        Gaussian noise standard deviation relative to the nuclear brightness (Poisson noise
        is added too).
    dome : float
        How much dimmer a nucleus is towards its rim: the brightness is scaled by
        ``1 - dome + dome * sqrt(1 - r**2)`` (an ellipsoid's thickness is ``sqrt(1 - r**2)`` at
        relative radius ``r``). The default 0.5 matches real nuclei: 1, 2 and 3 pixels inside
        the outline, the 124 HeLa nuclei of frame 0 in ``../shared/data`` are at 0.45, 0.72 and
        0.84 of their brightness 6 pixels deep (median), the simulated ones at 0.49, 0.73 and
        0.84 (CHO and the 3D nuclei are domed more: 0.37 / 0.49 / 0.58 and 0.21 / 0.48 / 0.78).
        ``dome=0`` gives flat nuclei (the simulator before 2026-12: 0.65, 0.89, 0.98), on which
        touching nuclei of the same brightness show no dip between them.
    seed : int
    min_area : int
        A nucleus whose visible area falls below this has left the field for good.

    Returns
    -------
    SimulatedMovie
    """
    if n_frames < 1 or min(shape) < 4 * radius:
        raise InputError(f"need n_frames >= 1 and an image of at least 4 radii ({4 * radius:.0f} px); "
                         f"got n_frames={n_frames}, shape={shape}")
    rng = np.random.default_rng(seed)
    shape = (int(shape[0]), int(shape[1]))
    next_label = [1]

    def new_cell(center, parent=0, radii=None, velocity=None, start=0, cycle_phase=0.0) -> _Cell:
        target = radius * rng.uniform(0.8, 1.2) * np.array([rng.uniform(1.0, 1.3), 1.0])
        cell = _Cell(label=next_label[0], parent=parent, center=np.asarray(center, float),
                     velocity=rng.normal(0, speed / 2, 2) if velocity is None else velocity,
                     radii=target.copy() if radii is None else radii, target_radii=target,
                     angle=rng.uniform(0, np.pi),
                     harmonics=np.c_[rng.uniform(0, 0.08, 3), rng.uniform(0, 2 * np.pi, 3)],
                     brightness=rng.uniform(0.6, 1.0), start=start)
        cell.cycle = int(rng.integers(*cycle_frames, endpoint=True) * (1 - cycle_phase))
        next_label[0] += 1
        return cell

    margin = 2 * radius
    cells = [new_cell(rng.uniform((margin, margin), (shape[0] - margin, shape[1] - margin)),
                      cycle_phase=rng.uniform(0, 0.9)) for _ in range(n_cells)]
    _separate(cells, 0.0)
    masks = np.zeros((n_frames,) + shape, dtype=np.uint16)
    signal = np.zeros((n_frames,) + shape, dtype=np.float32)
    finished: list[_Cell] = []
    for t in range(n_frames):
        if t > 0:
            cells = _step(cells, t, rng, speed, new_cell, finished)
            for _ in range(rng.poisson(enter_rate)):
                cells.append(_entering(shape, radius, speed, rng, new_cell, t))
            _separate(cells, 0.0)
        alive = []
        for cell in cells:
            area = _paint(cell, masks[t], signal[t], rng, dome)
            if area >= min_area:
                cell.frames.append(t)
                alive.append(cell)
            else:  # left the field (or never made it in): the track ends for good
                masks[t][masks[t] == cell.label] = 0
                if cell.frames:
                    finished.append(cell)
        cells = alive
    finished.extend(cells)
    images = _render(signal, blur, noise, rng)
    rows = [(c.label, c.frames[0], c.frames[-1], c.parent) for c in finished if c.frames]
    labels_kept = {r[0] for r in rows}
    # a daughter whose mother never became visible has no parent in the movie
    tracks = np.array(sorted((l, b, e, p if p in labels_kept else 0) for l, b, e, p in rows), dtype=np.int64)
    return SimulatedMovie(images=images, masks=masks, tracks=tracks.reshape(-1, 4))


def shuffle_labels(masks: np.ndarray, seed: int = 0) -> np.ndarray:
    """The same objects with labels permuted independently in every frame.

    Turns a movie's ground-truth masks into detections without track identities: what a
    perfect segmenter would give a linker.

    Parameters
    ----------
    masks : ndarray (T, ...) of int labels
    seed : int

    Returns
    -------
    ndarray, same shape and dtype; in each frame the labels are 1..n in random order.
    """
    rng = np.random.default_rng(seed)
    out = np.zeros_like(masks)
    for t, frame in enumerate(masks):
        ids = np.unique(frame)[1:]
        lookup = np.zeros(int(frame.max()) + 1, dtype=masks.dtype)
        lookup[ids] = rng.permutation(len(ids)) + 1
        out[t] = lookup[frame]
    return out


def _step(cells: list[_Cell], t: int, rng, speed: float, new_cell, finished: list[_Cell]) -> list[_Cell]:
    """Move, deform and age every cell by one frame; dividing cells become two daughters."""
    out = []
    for cell in cells:
        cell.age += 1
        if cell.age >= cell.cycle:
            finished.append(cell)
            axis = np.array([np.cos(cell.angle), np.sin(cell.angle)])  # along the long axis
            offset = 0.6 * cell.radii[0] * axis
            for sign in (1, -1):
                # each daughter has about half the mother's area, then grows back
                daughter = new_cell(cell.center + sign * offset, parent=cell.label,
                                    radii=cell.radii / np.sqrt(2) * rng.uniform(0.95, 1.05),
                                    velocity=sign * axis * speed * 0.5, start=t)
                daughter.angle = cell.angle + rng.normal(0, 0.2)
                daughter.brightness = cell.brightness
                out.append(daughter)
            continue
        # persistent random walk: velocity keeps most of its direction from frame to frame
        cell.velocity = 0.8 * cell.velocity + rng.normal(0, speed * 0.5, 2)
        norm = np.linalg.norm(cell.velocity)
        if norm > 2.5 * speed:
            cell.velocity *= 2.5 * speed / norm
        cell.center = cell.center + cell.velocity
        cell.radii = cell.radii + 0.15 * (cell.target_radii - cell.radii) + rng.normal(0, 0.1, 2)
        cell.angle += rng.normal(0, 0.08)
        cell.harmonics[:, 1] += rng.normal(0, 0.1, len(cell.harmonics))
        out.append(cell)
    return out


def _entering(shape, radius, speed, rng, new_cell, t: int) -> _Cell:
    """A cell just outside a random border, moving inwards."""
    side = rng.integers(4)
    height, width = shape
    along = rng.uniform(radius, (width if side < 2 else height) - radius)
    y, x, direction = {0: (-0.3 * radius, along, (1, 0)), 1: (height + 0.3 * radius, along, (-1, 0)),
                       2: (along, -0.3 * radius, (0, 1)), 3: (along, width + 0.3 * radius, (0, -1))}[int(side)]
    return new_cell((y, x), velocity=np.array(direction, float) * speed * 1.5, start=t,
                    cycle_phase=rng.uniform(0, 0.5))


def _separate(cells: list[_Cell], _unused: float, iterations: int = 10) -> None:
    """Push overlapping cells apart so that no nucleus hides another (soft repulsion)."""
    if len(cells) < 2:
        return
    for _ in range(iterations):
        centers = np.array([c.center for c in cells])
        reach = np.array([c.radii.max() for c in cells])
        delta = centers[:, None] - centers[None]
        dist = np.linalg.norm(delta, axis=-1) + np.eye(len(cells)) * 1e9
        # allow a little contact (0.85 of the sum of long radii) like packed nuclei
        overlap = np.clip(0.85 * (reach[:, None] + reach[None]) - dist, 0, None)
        if not overlap.any():
            return
        push = (delta / dist[..., None] * overlap[..., None] * 0.5).sum(1)
        for cell, p in zip(cells, push):
            cell.center = cell.center + p


def _paint(cell: _Cell, mask: np.ndarray, signal: np.ndarray, rng, dome: float) -> int:
    """Paint one cell into the frame's mask (only onto background) and signal; its visible area."""
    reach = int(np.ceil(cell.radii.max() * 1.3)) + 1
    cy, cx = cell.center
    y0, y1 = max(int(cy) - reach, 0), min(int(cy) + reach + 1, mask.shape[0])
    x0, x1 = max(int(cx) - reach, 0), min(int(cx) + reach + 1, mask.shape[1])
    if y0 >= y1 or x0 >= x1:
        return 0
    yy, xx = np.mgrid[y0:y1, x0:x1]
    dy, dx = yy - cy, xx - cx
    c, s = np.cos(cell.angle), np.sin(cell.angle)
    u, v = dy * c + dx * s, -dy * s + dx * c
    theta = np.arctan2(v, u)
    wobble = 1 + sum(a * np.cos((k + 2) * theta + p) for k, (a, p) in enumerate(cell.harmonics))
    r2 = ((u / cell.radii[0]) ** 2 + (v / cell.radii[1]) ** 2) / wobble ** 2  # relative radius, squared
    inside = r2 <= 1
    inside &= mask[y0:y1, x0:x1] == 0
    mask[y0:y1, x0:x1][inside] = cell.label
    texture = 1 + 0.15 * rng.standard_normal(inside.shape)
    thickness = 1 - dome + dome * np.sqrt(np.clip(1 - r2, 0, None))
    signal[y0:y1, x0:x1][inside] = cell.brightness * (texture * thickness)[inside]
    return int(inside.sum())


def _render(signal: np.ndarray, blur: float, noise: float, rng) -> np.ndarray:
    """Blur, add background and noise; uint16 like a camera."""
    images = np.empty(signal.shape, dtype=np.uint16)
    for t, frame in enumerate(signal):
        smooth = ndi.gaussian_filter(frame, blur) if blur > 0 else frame
        photons = rng.poisson(np.clip(smooth, 0, None) * 400 + 40).astype(np.float32)
        noisy = photons + rng.normal(0, noise * 400, frame.shape)
        images[t] = np.clip(noisy + 100, 0, 65535).astype(np.uint16)
    return images
