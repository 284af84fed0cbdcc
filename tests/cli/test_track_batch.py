"""``samzoo track`` over many movies: one folder per movie, equal to single runs, resumable, robust.

Simulated movies with their ground-truth label movies as ``--masks`` (no model needed), the
classical segmenter for one test and the untrained test model for propagation.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from samzoo.cli.main import main
from samzoo.tracking.formats import read_ctc
from samzoo.tracking.simulate import shuffle_labels, simulate_movie

LINK = ["--axes", "tyx", "--linker", "overlap", "--no-progress"]  # overlap: no trackastra model, even with a mirror


def _write_movies(root: Path, n: int, *, n_frames: int = 12, size: int = 128) -> tuple[Path, Path]:
    """``root/movies/m<i>.tif`` and their label movies ``root/masks/m<i>.tif`` (labels shuffled per frame)."""
    movies, masks = root / "movies", root / "masks"
    movies.mkdir(parents=True)
    masks.mkdir()
    for i in range(n):
        movie = simulate_movie(n_frames=n_frames, shape=(size, size), n_cells=6, seed=i)
        # minisblack: tifffile would store a movie of 3 or 4 frames as one colour image
        tifffile.imwrite(movies / f"m{i}.tif", movie.images, photometric="minisblack")
        tifffile.imwrite(masks / f"m{i}.tif", shuffle_labels(movie.masks, seed=i), photometric="minisblack")
    return movies, masks


def _files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative name, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def three(tmp_path):
    return _write_movies(tmp_path, 3)


def test_one_folder_per_movie_equal_to_single_runs_and_resume(tmp_path, three, capsys):
    movies, masks = three
    out, plots = tmp_path / "out", tmp_path / "plots"
    args = ["track", str(movies), "-o", str(out), "--masks", str(masks), "--format", "ctc,napari",
            "--lineage-plot", str(plots), *LINK]
    assert main(args) == 0
    assert "3 movies tracked, 0 already done" in capsys.readouterr().out
    # one folder per movie, nothing else but the job record (no temporaries)
    assert sorted(p.name for p in out.iterdir()) == [".samzoo-job.json", "m0", "m1", "m2"]
    for name in ("m0", "m1", "m2"):
        single = tmp_path / f"single_{name}"
        assert main(["track", str(movies / f"{name}.tif"), "-o", str(single), "--masks", str(masks / f"{name}.tif"),
                     "--format", "ctc,napari", "--lineage-plot", str(tmp_path / f"{name}.png"), *LINK]) == 0
        batch = _files(out / name)
        assert {"mask000.tif", "mask011.tif", "res_track.txt", "napari_tracks.csv"} <= set(batch)
        assert batch == _files(single)
        assert (plots / f"{name}.png").read_bytes() == (tmp_path / f"{name}.png").read_bytes()
        assert read_ctc(out / name)[2].shape[0] >= 6  # tracks were really found
    capsys.readouterr()

    before = _files(out)
    assert main([*args[:1], str(movies / "*.tif"), *args[2:]]) == 0  # a glob names the same movies: same job
    assert "0 movies tracked, 3 already done" in capsys.readouterr().out
    assert _files(out) == before
    shutil.rmtree(out / "m1")
    assert main(args) == 0
    assert "1 movies tracked, 2 already done" in capsys.readouterr().out
    assert _files(out) == before

    # other settings into the same folder would mix results: refused in one line, then --overwrite
    assert main([*args, "--max-distance", "3"]) == 1
    err = capsys.readouterr().err
    assert "other settings (max_distance)" in err and err.count("\n") == 1
    assert main([*args, "--max-distance", "3", "--overwrite"]) == 0
    assert "3 movies tracked, 0 already done" in capsys.readouterr().out


def test_a_bad_movie_is_named_and_the_others_finish(tmp_path, three, capsys):
    movies, masks = three
    for name in ("bad", "bad2"):  # one frame: no t axis
        tifffile.imwrite(movies / f"{name}.tif", np.zeros((128, 128), np.uint16))
        tifffile.imwrite(masks / f"{name}.tif", np.zeros((128, 128), np.uint16))
    out = tmp_path / "out"
    args = ["track", str(movies), "-o", str(out), "--masks", str(masks), *LINK]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "2 of 5 movies failed (3 finished and kept" in err
    # both named (dask finishes them in either order), the first with its error
    assert "First: bad" in err and "also failed: bad" in err and "bad2" in err
    assert "2 dimensions" in err.split("First:")[1]  # the reason, from reading the movie with --axes tyx
    assert sorted(p.name for p in out.iterdir()) == [".samzoo-job.json", "m0", "m1", "m2"]
    assert all((out / f"m{i}" / "res_track.txt").is_file() for i in range(3))
    # fixed, the rerun does only the bad movie
    movie = simulate_movie(n_frames=5, shape=(96, 96), n_cells=3, seed=9)
    tifffile.imwrite(movies / "bad.tif", movie.images)
    tifffile.imwrite(masks / "bad.tif", movie.masks)
    (movies / "bad2.tif").unlink()
    assert main(args) == 0
    assert "1 movies tracked, 3 already done" in capsys.readouterr().out
    assert read_ctc(out / "bad")[1].shape == (5, 96, 96)


def test_per_movie_options_name_folders(tmp_path, three, capsys):
    movies, masks = three
    out = str(tmp_path / "out")
    assert main(["track", str(movies), "-o", out, "--masks", str(masks / "m0.tif"), *LINK]) == 1
    assert "--masks must be a folder holding one file per movie" in capsys.readouterr().err
    (masks / "m2.tif").unlink()
    assert main(["track", str(movies), "-o", out, "--masks", str(masks), *LINK]) == 1
    assert "not so for: m2 (none)" in capsys.readouterr().err
    assert main(["track", str(movies), "-o", out, "--masks", str(movies), *LINK]) == 1
    assert "is the movies' own folder" in capsys.readouterr().err
    assert main(["track", str(movies / "m0.tif"), str(movies / "m1.tif"), "-o", out, "--segmenter", "classical",
                 "--lineage-plot", str(tmp_path / "tree.png"), *LINK]) == 1
    assert "--lineage-plot must be a folder" in capsys.readouterr().err
    other = tmp_path / "other"
    other.mkdir()
    tifffile.imwrite(other / "m0.tif", np.zeros((2, 8, 8), np.uint16))
    assert main(["track", str(movies), str(other), "-o", out, "--segmenter", "classical", *LINK]) == 1
    assert "would both write" in capsys.readouterr().err
    assert not Path(out).exists()  # refused before anything was written


def test_classical_segmenter_batch_equals_single_runs(tmp_path, capsys):
    movies, _ = _write_movies(tmp_path, 2, n_frames=6)
    out = tmp_path / "out"
    assert main(["track", str(movies / "*.tif"), "-o", str(out), "--segmenter", "classical", "--workers", "2",
                 *LINK]) == 0
    assert "2 movies tracked" in capsys.readouterr().out
    for name in ("m0", "m1"):
        single = tmp_path / name
        assert main(["track", str(movies / f"{name}.tif"), "-o", str(single), "--segmenter", "classical", *LINK]) == 0
        assert _files(out / name) == _files(single) and read_ctc(single)[1].max() >= 3


def test_on_an_existing_scheduler(tmp_path, capsys):
    import distributed

    movies, masks = _write_movies(tmp_path, 2, n_frames=4)
    out = tmp_path / "out"
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        assert main(["track", str(movies), "-o", str(out), "--masks", str(masks), "--scheduler",
                     cluster.scheduler_address, *LINK]) == 0
    assert "2 movies tracked" in capsys.readouterr().out
    assert [read_ctc(out / f"m{i}")[1].shape for i in range(2)] == [(4, 128, 128)] * 2


def test_propagation_with_prompt_folders(tmp_path, capsys):
    """With samzoo's shipped model (offline): the prompted object is followed in each movie."""
    movies, _ = _write_movies(tmp_path, 2, n_frames=2)
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    for i in range(2):
        (prompts / f"m{i}.csv").write_text(f"object_id,y,x,positive\n1,{60 + i},60,1\n")
    common = ["--mode", "propagate", *LINK]
    assert main(["track", str(movies), "-o", str(tmp_path / "out"), "--prompts", str(prompts), *common]) == 0
    assert "2 movies tracked" in capsys.readouterr().out
    assert main(["track", str(movies / "m1.tif"), "-o", str(tmp_path / "single"), "--prompts",
                 str(prompts / "m1.csv"), *common]) == 0
    assert _files(tmp_path / "out" / "m1") == _files(tmp_path / "single")
    assert all(read_ctc(tmp_path / "out" / f"m{i}")[1][0].any() for i in range(2))


@pytest.mark.slow
def test_killed_batch_resumes_to_identical_results(tmp_path):
    movies, masks = _write_movies(tmp_path, 10, n_frames=30, size=256)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def command(out):
        return [sys.executable, "-m", "samzoo", "track", str(movies), "-o", str(out), "--masks", str(masks), *LINK]

    reference = tmp_path / "reference"
    assert subprocess.run(command(reference), env=env, capture_output=True, timeout=600).returncode == 0
    out = tmp_path / "out"

    def finished() -> int:
        return len([p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")]) if out.exists() else 0

    process = subprocess.Popen(command(out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while finished() < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = finished()
    if process.returncode != -signal.SIGKILL or done >= 10:
        pytest.fail(f"the job ended before it could be killed mid-run ({done} of 10 done)")
    rerun = subprocess.run(command(out), env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{10 - done} movies tracked, {done} already done" in rerun.stdout
    assert _files(out) == _files(reference)  # every file of every movie, and no temporaries left behind
