"""SIGKILL in the middle of a batch or a block job, then a rerun: the same results as an uninterrupted run.

The jobs run as real ``samzoo segment`` processes on real HeLa frames with the classical mode
(no model is shipped yet; the resume logic does not depend on the mode).
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr


def _env(tmp_path: Path) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "SAMZOO_CACHE_DIR": str(tmp_path / "cache")}


def _segment(tmp_path, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "samzoo", "segment", *map(str, args), "--mode", "classical",
                           "--no-progress"], env=_env(tmp_path), capture_output=True, text=True, timeout=600)


def _kill_when(tmp_path, args, done, *, minimum: int, total: int) -> int:
    """Start ``samzoo segment ARGS``, SIGKILL it once ``done()`` counts ``minimum`` finished units."""
    process = subprocess.Popen([sys.executable, "-m", "samzoo", "segment", *map(str, args), "--mode", "classical",
                                "--no-progress"], env=_env(tmp_path), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while done() < minimum and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = done()
    if process.returncode != -signal.SIGKILL or finished >= total:
        pytest.fail(f"the job ended before it could be killed mid-run ({finished} of {total} done)")
    return finished


def _outputs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.tif") if not p.name.startswith("."))


@pytest.mark.slow
def test_killed_batch_resumes_to_identical_results(tmp_path, shared_data):
    movie = tifffile.imread(shared_data / "Fluo_Hela_02_img.tif", key=range(8))
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i, frame in enumerate(movie):
        tifffile.imwrite(inputs / f"f{i}.tif", frame)
    reference = tmp_path / "reference"
    assert _segment(tmp_path, inputs, "-o", reference).returncode == 0

    out = tmp_path / "out"
    finished = _kill_when(tmp_path, [inputs, "-o", out], lambda: len(_outputs(out)) if out.exists() else 0,
                          minimum=2, total=8)
    rerun = _segment(tmp_path, inputs, "-o", out)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{8 - finished} images segmented, {finished} already done" in rerun.stdout
    assert [p.name for p in _outputs(out)] == [p.name for p in _outputs(reference)]
    for a, b in zip(_outputs(out), _outputs(reference)):
        assert a.read_bytes() == b.read_bytes(), a.name
    # no temporaries of the killed run are left behind
    assert sorted(p.name for p in out.iterdir()) == [".samzoo-job.json"] + [p.name for p in _outputs(out)]


@pytest.mark.slow
def test_killed_block_job_resumes_to_identical_results(tmp_path, shared_data):
    movie = tifffile.imread(shared_data / "Fluo_Hela_02_img.tif", key=range(2))
    source = tmp_path / "movie.zarr"
    array = zarr.create_array(str(source), shape=movie.shape, dtype=movie.dtype, chunks=(1, 256, 256),
                              dimension_names=["t", "y", "x"])
    array[:] = movie
    options = ["--block", "256", "--block-halo", "32"]
    reference = tmp_path / "reference.zarr"
    assert _segment(tmp_path, source, "-o", reference, *options).returncode == 0

    out = tmp_path / "labels.zarr"
    parts = tmp_path / "labels.zarr.parts"
    total = 2 * 4 * 6  # planes x block rows x block columns (700 x 1100 in 192-pixel steps)
    finished = _kill_when(tmp_path, [source, "-o", out, *options],
                          lambda: len(list(parts.glob("*.npy"))) if parts.exists() else 0, minimum=10, total=total)
    assert not out.exists()
    rerun = _segment(tmp_path, source, "-o", out, *options)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{total} blocks: {total - finished} segmented, {finished} already done" in rerun.stdout
    got = np.asarray(zarr.open_group(str(out), mode="r")["labels"][:])
    want = np.asarray(zarr.open_group(str(reference), mode="r")["labels"][:])
    assert got.dtype == want.dtype and np.array_equal(got, want) and want.max() > 100
    assert not parts.exists()
