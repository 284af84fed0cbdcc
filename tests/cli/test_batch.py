"""Batches (folders, globs) and images larger than a block, on dask: results, resuming, job records."""

import numpy as np
import pytest
import tifffile
import zarr
from scipy import ndimage as ndi
from skimage.filters import gaussian, threshold_otsu

from samzoo.batch import expand_inputs, output_paths, run_batch
from samzoo.cli.main import main
from samzoo.errors import BatchError, InputError
from samzoo.io import read_image
from samzoo.io.blocks import matching_pairs, plan_blocks, segment_block, stitch_blocks


@pytest.fixture
def frames(tmp_path, shared_data):
    """Three real HeLa crops as TIFFs in a folder."""
    movie = tifffile.imread(shared_data / "Fluo_Hela_02_img.tif", key=range(3))
    folder = tmp_path / "in"
    folder.mkdir()
    for i, frame in enumerate(movie):
        tifffile.imwrite(folder / f"frame{i}.tif", frame[100:260, 200:400])
    return folder


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two label images describe the same objects (ids may differ)."""
    if not np.array_equal(a > 0, b > 0):
        return False
    pairs = np.unique(np.stack([a[a > 0], b[b > 0]]), axis=1)
    return pairs.shape[1] == len(np.unique(a[a > 0])) == len(np.unique(b[b > 0]))


def test_expand_inputs(tmp_path, frames):
    (frames / ".frame9.tif.abc.tmp").write_bytes(b"")  # a killed run's temporary: not an input
    (frames / "notes.txt").write_text("x")
    found = expand_inputs([str(frames)])
    assert [p.name for p in found] == ["frame0.tif", "frame1.tif", "frame2.tif"]
    assert expand_inputs([str(frames / "frame[12].tif"), str(frames / "frame1.tif")]) == found[1:]
    with pytest.raises(InputError, match="matches no images"):
        expand_inputs([str(tmp_path / "*.png")])
    with pytest.raises(InputError, match="does not exist"):
        expand_inputs([str(tmp_path / "nope.tif")])
    other = tmp_path / "other"
    other.mkdir()
    tifffile.imwrite(other / "frame0.tif", np.zeros((4, 4), np.uint8))
    with pytest.raises(InputError, match="would both write"):
        output_paths(expand_inputs([str(frames), str(other)]), tmp_path / "out", ".tif")


def test_batch_equals_single_runs_and_resumes(tmp_path, frames, capsys):
    out = tmp_path / "out"
    assert main(["segment", str(frames), "-o", str(out), "--mode", "classical", "--no-progress"]) == 0
    assert "3 images segmented, 0 already done" in capsys.readouterr().out
    for name in ("frame0", "frame1", "frame2"):
        assert main(["segment", str(frames / f"{name}.tif"), "-o", str(tmp_path / f"{name}.tif"),
                     "--mode", "classical", "--no-progress"]) == 0
        batch, single = tifffile.imread(out / f"{name}.tif"), tifffile.imread(tmp_path / f"{name}.tif")
        assert batch.max() > 3 and np.array_equal(batch, single)
    capsys.readouterr()
    before = (out / "frame0.tif").read_bytes()
    (out / "frame1.tif").unlink()
    assert main(["segment", str(frames / "*.tif"), "-o", str(out), "--mode", "classical", "--no-progress"]) == 0
    assert "1 images segmented, 2 already done" in capsys.readouterr().out
    assert (out / "frame0.tif").read_bytes() == before
    assert np.array_equal(tifffile.imread(out / "frame1.tif"), tifffile.imread(tmp_path / "frame1.tif"))
    # other settings into the same folder would mix results: refused, in one line
    assert main(["segment", str(frames), "-o", str(out), "--mode", "classical", "--axes", "xy"]) == 1
    err = capsys.readouterr().err
    assert "other settings (axes)" in err and err.count("\n") == 1
    assert main(["segment", str(frames), "-o", str(out), "--mode", "classical", "--axes", "xy",
                 "--overwrite", "--no-progress"]) == 0
    assert "3 images segmented" in capsys.readouterr().out
    transposed = tifffile.imread(out / "frame0.tif")  # recomputed with the new axes
    assert transposed.shape == (200, 160) and transposed.max() > 3


def test_batch_with_a_model_to_zarr(tmp_path, frames, model_file):
    out = tmp_path / "out"
    assert main(["segment", str(frames), "-o", str(out), "--model", str(model_file), "--format", "zarr",
                 "--no-progress"]) == 0
    single = tmp_path / "single.tif"
    assert main(["segment", str(frames / "frame2.tif"), "-o", str(single), "--model", str(model_file),
                 "--no-progress"]) == 0
    back = read_image(out / "frame2.zarr")  # samzoo reads its own Zarr output back
    assert back.dims == ("y", "x")
    np.testing.assert_array_equal(back.values, tifffile.imread(single))
    # resuming with a model: a redone image equals the first run's (without the embedding cache too)
    first = np.asarray(read_image(out / "frame1.zarr").values)
    import shutil

    shutil.rmtree(out / "frame1.zarr")
    assert main(["segment", str(frames), "-o", str(out), "--model", str(model_file), "--format", "zarr",
                 "--no-cache", "--no-progress"]) == 0  # the cache does not change results: same job
    np.testing.assert_array_equal(np.asarray(read_image(out / "frame1.zarr").values), first)


def _components(block: np.ndarray, threshold: float) -> np.ndarray:
    """A segmentation that sees only its block: blobs above a fixed threshold."""
    return ndi.label(block > threshold)[0]


def test_blocks_stitch_to_the_whole_image_result(tmp_path, hela_frame):
    image = gaussian(hela_frame[0].astype(np.float32), 2, preserve_range=True)
    threshold = threshold_otsu(image)
    whole = _components(image, threshold)
    assert whole.max() > 50
    array = read_image(image)
    units = plan_blocks(array, "unused", None, block=192, halo=40)
    assert len(units) > 20
    parts = [tmp_path / u.name for u in units]
    # run_batch hands work to the local dask cluster; units read from memory here
    import samzoo.io.blocks as blocks

    blocks._open.cache_clear()
    original = blocks._open
    blocks._open = lambda source, axes: array
    try:
        run_batch(units, lambda u, p: segment_block(lambda b: _components(b, threshold), u, p), parts, progress=False)
    finally:
        blocks._open = original
    n = stitch_blocks(units, parts, tmp_path / "out.zarr", array)
    stitched = np.asarray(zarr.open_group(str(tmp_path / "out.zarr"), mode="r")["labels"][:])
    assert n == whole.max() and stitched.max() == n
    assert same_partition(stitched, whole)


def test_matching_pairs_needs_overlap():
    a = np.array([[1, 1, 1, 0, 2, 2]])
    b = np.array([[3, 3, 0, 0, 0, 4]])
    assert matching_pairs(a, b, 0.5) == [(1, 3), (2, 4)]
    assert matching_pairs(a, b, 0.7) == []


def test_zarr_larger_than_a_block(tmp_path, hela_frame, capsys):
    source = tmp_path / "big.zarr"
    array = zarr.create_array(str(source), shape=(2,) + hela_frame[0].shape, dtype="uint16", chunks=(1, 256, 256),
                              dimension_names=["t", "y", "x"])
    array[:] = np.stack([hela_frame[0], hela_frame[0]])
    out = tmp_path / "labels.zarr"
    assert main(["segment", str(source), "-o", str(tmp_path / "labels.tif"), "--block", "512", "--mode", "classical"]) == 1
    assert "must be a .zarr" in capsys.readouterr().err
    assert main(["segment", str(source), "-o", str(out), "--mode", "classical", "--block", "512",
                 "--block-halo", "48", "--no-progress"]) == 0
    assert "12 blocks: 12 segmented" in capsys.readouterr().out
    labels = read_image(out)
    assert labels.dims == ("t", "y", "x") and labels.shape == (2,) + hela_frame[0].shape
    values = np.asarray(labels.values)
    # the same objects in both planes (the same frame twice), numbered once across planes
    assert len(np.unique(values[0])) - 1 > 100 and same_partition(values[0], values[1])
    assert not set(np.unique(values[0])[1:]) & set(np.unique(values[1])[1:])
    assert not (tmp_path / "labels.zarr.parts").exists()


def test_run_batch_keeps_good_items_and_names_the_failure(tmp_path):
    def work(item, out):
        if item == 2:
            raise InputError("item two is bad")
        out.write_text(str(item))

    outs = [tmp_path / f"{i}.txt" for i in range(4)]
    with pytest.raises(BatchError, match=r"1 of 4 items failed \(3 finished.*2.txt: item two is bad"):
        run_batch(range(4), work, outs, progress=False, scheduler="synchronous")
    assert [p.exists() for p in outs] == [True, True, False, True]


def test_run_batch_on_an_existing_scheduler(tmp_path):
    import distributed

    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        outs = [tmp_path / f"{i}.txt" for i in range(3)]
        report = run_batch([1, 2, 3], lambda x, out: out.write_text(str(x * x)), outs,
                           scheduler=cluster.scheduler_address, progress=False)
    assert [p.read_text() for p in outs] == ["1", "4", "9"] and len(report.done) == 3
    with pytest.raises(Exception, match="cannot reach the dask scheduler"):
        run_batch([1], lambda x, out: None, [tmp_path / "x"], scheduler="tcp://127.0.0.1:9", progress=False)


@pytest.mark.slow
def test_external_cluster_with_relative_paths(tmp_path, frames, monkeypatch, capsys):
    """A real scheduler and worker in other processes and another working directory: tasks are
    pickled, and relative paths given on the command line must still resolve on the worker."""
    import json
    import os
    import subprocess
    import sys
    import time

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    (tmp_path / "elsewhere").mkdir()
    scheduler_file = tmp_path / "scheduler.json"
    processes = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--scheduler-file",
                                   str(scheduler_file), "--port", "0", "--no-dashboard"], env=env,
                                  cwd=tmp_path / "elsewhere", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 120
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        processes.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file",
                                           str(scheduler_file), "--nthreads", "1", "--no-dashboard"], env=env,
                                          cwd=tmp_path / "elsewhere", stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
        address = json.loads(scheduler_file.read_text())["address"]
        monkeypatch.chdir(tmp_path)
        source = tmp_path / "big.zarr"
        array = zarr.create_array(str(source), shape=(300, 400), dtype="uint16", chunks=(128, 128),
                                  dimension_names=["y", "x"])
        array[:] = tifffile.imread(frames / "frame0.tif")[:150].repeat(2, 0)[:, :200].repeat(2, 1)
        # the worker may still be connecting: the client waits for it
        assert main(["segment", "in", "-o", "out", "--mode", "classical", "--scheduler", address,
                     "--no-progress"]) == 0
        assert main(["segment", "big.zarr", "-o", "labels.zarr", "--mode", "classical", "--block", "160", "--block-halo", "16",
                     "--scheduler", address, "--no-progress"]) == 0
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=60)
    out = capsys.readouterr().out
    assert "3 images segmented" in out and "12 blocks: 12 segmented" in out
    assert sorted(p.name for p in (tmp_path / "out").glob("*.tif")) == ["frame0.tif", "frame1.tif", "frame2.tif"]
    assert read_image(tmp_path / "labels.zarr").shape == (300, 400)


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_ome_zarr_block_by_block(tmp_path, hela_frame, version, capsys):
    """OME-Zarr (multiscales metadata, v0.4 in the group attributes or v0.5 under "ome") is read lazily."""
    frame = hela_frame[0][:300, :520]
    group = zarr.open_group(str(tmp_path / "image.ome.zarr"), mode="w")
    multiscales = [{"version": version, "axes": [{"name": "y", "type": "space"}, {"name": "x", "type": "space"}],
                    "datasets": [{"path": "0"}]}]
    group.attrs.update({"multiscales": multiscales} if version == "0.4" else {"ome": {"multiscales": multiscales}})
    group.create_array("0", shape=frame.shape, dtype=frame.dtype, chunks=(128, 128))[:] = frame
    image = read_image(tmp_path / "image.ome.zarr")
    assert image.dims == ("y", "x") and not isinstance(image.data, np.ndarray)  # lazy
    assert main(["segment", str(tmp_path / "image.ome.zarr"), "-o", str(tmp_path / "labels.zarr"), "--mode",
                 "classical", "--block", "256", "--block-halo", "32", "--no-progress"]) == 0
    assert "blocks: 6 segmented" in capsys.readouterr().out
    assert read_image(tmp_path / "labels.zarr").shape == frame.shape


def test_volume_larger_than_a_block_joins_slices(tmp_path, shared_data, capsys):
    """Block mode joins z-slices into 3D objects exactly as merge_slices does on its per-slice labels."""
    from samzoo.segmentation.volume import merge_slices

    movie = tifffile.imread(shared_data / "Fluo-N3DH-CHO_02_img.tif")[:2, :, :320, 100:420]  # t, z, y, x
    source = tmp_path / "cho.zarr"
    zarr.create_array(str(source), shape=movie.shape, dtype=movie.dtype, chunks=(1, 1, 256, 256),
                      dimension_names=["t", "z", "y", "x"])[:] = movie
    common = ["--mode", "classical", "--block", "192", "--block-halo", "24", "--no-progress"]
    assert main(["segment", str(source), "-o", str(tmp_path / "slices.zarr"), "--no-merge-z"] + common) == 0
    assert main(["segment", str(source), "-o", str(tmp_path / "volume.zarr"), "--min-z-extent", "2"] + common) == 0
    assert "objects" in capsys.readouterr().out
    slices = np.asarray(read_image(tmp_path / "slices.zarr").values)
    volume = read_image(tmp_path / "volume.zarr")
    assert volume.dims == ("t", "z", "y", "x") and volume.shape == movie.shape
    for t in range(2):
        expected = merge_slices(slices[t], min_z_extent=2)
        assert np.array_equal(np.asarray(volume.values[t]), expected)
        # real 3D objects: fewer of them than per-slice objects, each spanning several slices
        assert 0 < expected.max() < sum(len(np.unique(s)) - 1 for s in slices[t])
    assert not (tmp_path / "volume.zarr.parts").exists()


def test_merge_slices_streams_zarr_like_memory(shared_data):
    """merge_slices reading from and writing to Zarr gives the in-memory result."""
    from skimage.measure import label

    from samzoo.segmentation.volume import merge_slices

    mask = tifffile.imread(shared_data / "nuclei3d_mask.tif")
    per_slice = np.stack([label(s) for s in mask]).astype(np.int32)  # ids not consistent across z
    source = zarr.create_array(zarr.storage.MemoryStore(), shape=per_slice.shape, dtype="int32",
                               chunks=(1,) + per_slice.shape[1:])
    source[:] = per_slice
    out = zarr.create_array(zarr.storage.MemoryStore(), shape=per_slice.shape, dtype="uint16",
                            chunks=(1,) + per_slice.shape[1:])
    merge_slices(source, out=out, min_z_extent=2)
    expected = merge_slices(per_slice, min_z_extent=2)
    assert np.array_equal(out[:], expected)
    assert 30 < expected.max() < 60  # 51 annotated nuclei, a few touching or short


def test_prompts_on_an_image_larger_than_a_block(tmp_path, hela_frame, capsys):
    """Prompted objects of a Zarr larger than --block are segmented in windows around them, like in memory."""
    image, truth = hela_frame
    source = tmp_path / "big.zarr"
    zarr.create_array(str(source), shape=image.shape, dtype=image.dtype, chunks=(256, 256),
                      dimension_names=["y", "x"])[:] = image
    tifffile.imwrite(tmp_path / "whole.tif", image)
    # the innermost pixel of four nuclei far apart (one per corner region) and two close together
    ids = [i for i in np.unique(truth)[1:] if (truth == i).sum() > 200]
    centres = {int(i): np.unravel_index(np.argmax(ndi.distance_transform_edt(truth == i)), truth.shape)
               for i in ids}
    chosen = [min(centres, key=lambda i: abs(centres[i][0] - y) + abs(centres[i][1] - x))
              for y, x in [(0, 0), (0, 1100), (700, 0), (700, 1100), (350, 550)]]
    csv = tmp_path / "points.csv"
    csv.write_text("object_id,y,x,positive\n" + "".join(f"{n + 1},{centres[i][0]},{centres[i][1]},1\n"
                                                         for n, i in enumerate(chosen)))
    common = ["--points", str(csv), "--no-progress"]
    assert main(["segment", str(source), "-o", str(tmp_path / "windows.zarr"), "--block", "256"] + common) == 0
    out = capsys.readouterr().out
    assert "5 windows: 5 segmented" in out and "5 of 5 prompted objects" in out
    assert main(["segment", str(tmp_path / "whole.tif"), "-o", str(tmp_path / "whole.tif.labels.tif")] + common) == 0
    windows = np.asarray(read_image(tmp_path / "windows.zarr").values)
    whole = tifffile.imread(tmp_path / "whole.tif.labels.tif")
    assert windows.shape == image.shape and set(np.unique(windows)) == set(range(6))
    agreement = []
    for n, i in enumerate(chosen):
        a, b, nucleus = windows == n + 1, whole == n + 1, truth == i
        # on the prompted nucleus (a window shifted by a wrong offset would miss it entirely)
        assert (a & nucleus).sum() / (a | nucleus).sum() > 0.35 and (a & nucleus).sum() / a.sum() > 0.4
        agreement.append((a & b).sum() / (a | b).sum())
    # the same objects as in memory; each path tiles differently, so a young model's masks differ at the edges
    assert np.mean(agreement) > 0.6, agreement
    assert not (tmp_path / "windows.zarr.parts").exists()


def test_frames_to_one_file_are_one_movie(tmp_path, frames, capsys):
    out = tmp_path / "movie_labels.tif"
    assert main(["segment", str(frames), "-o", str(out), "--mode", "classical", "--no-progress"]) == 0
    assert "in 3 frames" in capsys.readouterr().out
    labels = read_image(out)
    assert labels.dims == ("t", "y", "x") and labels.shape == (3, 160, 200)
    # to a folder, the frames stay a batch of the same per-frame labels
    assert main(["segment", str(frames), "-o", str(tmp_path / "each"), "--mode", "classical", "--no-progress"]) == 0
    for i in range(3):
        assert same_partition(tifffile.imread(tmp_path / "each" / f"frame{i}.tif"), labels.values[i])
