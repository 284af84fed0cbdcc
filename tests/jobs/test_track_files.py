"""samzoo.track_files: movie files in, tracks out, a result instead of printed lines; outputs checked first."""

import numpy as np
import pytest
import tifffile

import samzoo
from samzoo.errors import BatchError, InputError, OutputError, option_style
from samzoo.tracking.formats import read_ctc
from samzoo.tracking.simulate import simulate_movie


@pytest.fixture
def movies(tmp_path):
    """Two simulated movies (without axes metadata: read as t, y, x) and their label movies."""
    folder, masks = tmp_path / "movies", tmp_path / "masks"
    folder.mkdir(), masks.mkdir()
    for i in range(2):
        movie = simulate_movie(n_frames=5, shape=(96, 96), n_cells=4, seed=i)
        tifffile.imwrite(folder / f"m{i}.tif", movie.images)
        tifffile.imwrite(masks / f"m{i}.tif", movie.masks)
    return folder, masks


def test_one_movie_and_a_batch(tmp_path, movies):
    folder, masks = movies
    one = samzoo.track_files(folder / "m0.tif", tmp_path / "one", masks=masks / "m0.tif", format="ctc,table",
                             linker="overlap", lineage_plot=tmp_path / "m0.png")
    assert one.kind == "movie" and one.frames == 5 and one.linker == "overlap" and one.formats == ("ctc", "table")
    assert one.tracks == len(read_ctc(tmp_path / "one")[2]) >= 4 and (tmp_path / "one" / "table.csv").is_file()
    assert one.lineage_plot.is_file()
    assert one.warnings == ["m0.tif does not name its axes; reading its 3 dimensions as t,y,x "
                            "(pass axes to say otherwise)"]

    batch = samzoo.track_files(folder, tmp_path / "batch", masks=masks, linker="overlap")
    assert batch.kind == "batch" and (batch.units, batch.done, batch.skipped) == (2, 2, 0)
    assert [p.name for p in batch.outputs] == ["m0", "m1"]
    assert len(batch.warnings) == 2  # each worker's warning comes back to the caller
    assert read_ctc(tmp_path / "batch" / "m0")[2].tolist() == read_ctc(tmp_path / "one")[2].tolist()
    again = samzoo.track_files(str(folder / "m*.tif"), tmp_path / "batch", masks=masks, linker="overlap")
    assert (again.done, again.skipped, again.warnings) == (0, 2, [])


def test_worker_messages_name_options_as_the_caller(tmp_path, movies):
    folder, masks = movies
    tifffile.imwrite(folder / "m2.tif", np.zeros((96, 96), np.uint16))  # one frame: no t axis
    tifffile.imwrite(masks / "m2.tif", np.zeros((96, 96), np.uint16))
    with pytest.raises(BatchError, match=r"m2.*tracking needs a t axis \(pass axes, e.g. tyx\)"):
        samzoo.track_files(folder, tmp_path / "a", masks=masks, linker="overlap")
    with option_style("cli"), pytest.raises(BatchError, match=r"\(pass --axes, e.g. tyx\)"):
        samzoo.track_files(folder, tmp_path / "b", masks=masks, linker="overlap")


def test_bad_options(tmp_path, movies):
    folder, masks = movies
    with pytest.raises(InputError, match="^max_memory must be 0 or more GiB"):
        samzoo.track_files(folder / "m0.tif", tmp_path / "o", masks=masks / "m0.tif", max_memory=-1)
    with pytest.raises(InputError, match="^unknown format 'xml'"):
        samzoo.track_files(folder / "m0.tif", tmp_path / "o", masks=masks / "m0.tif", format=["ctc", "xml"])
    with pytest.raises(InputError, match="^scale applies when track segments the frames itself"):
        samzoo.track_files(folder / "m0.tif", tmp_path / "o", masks=masks / "m0.tif", scale=2)
    with pytest.raises(InputError, match="^gamma applies when track segments the frames itself"):
        samzoo.track_files(folder / "m0.tif", tmp_path / "o", masks=masks / "m0.tif", gamma=0.5)
    with pytest.raises(InputError, match="^gamma applies when track segments the frames itself"):
        samzoo.track_files(folder / "m0.tif", tmp_path / "o", mode="propagate", prompts=folder / "m0.tif", gamma=0.5)
    with pytest.raises(InputError, match="^views applies when track segments the frames itself"):
        samzoo.track_files(folder / "m0.tif", tmp_path / "o", masks=masks / "m0.tif", views=2)
    with pytest.raises(InputError, match="^views 2 applies to AIS only, not to 'classical'"):
        samzoo.track_files(folder / "m0.tif", tmp_path / "o", segmenter="classical", views=2)
    with pytest.raises(InputError, match="^views must be one of 1, 2, 4, 8, got 3"):
        samzoo.track_files(folder / "m0.tif", tmp_path / "o", views=3)
    with pytest.raises(InputError, match="^mode propagate needs prompts, boxes or start_labels"):
        samzoo.track_files(folder / "m0.tif", tmp_path / "o", mode="propagate")


def test_outputs_are_checked_before_any_work(tmp_path, movies, monkeypatch):
    import samzoo.jobs.track_jobs as jobs

    folder, masks = movies
    monkeypatch.setattr(jobs, "track_movie", lambda *a: pytest.fail("tracked before the output was checked"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match=r"cannot write .*file/tracks: .*file is a file, not a folder"):
        samzoo.track_files(folder / "m0.tif", tmp_path / "file" / "tracks", masks=masks / "m0.tif")
    with pytest.raises(OutputError, match=r"cannot write .*file: it is a file|file is a file, not a folder"):
        samzoo.track_files(folder / "m0.tif", tmp_path / "file", masks=masks / "m0.tif")
    with pytest.raises(OutputError, match="file is a file, not a folder"):
        samzoo.track_files(folder / "m0.tif", tmp_path / "o", masks=masks / "m0.tif",
                           lineage_plot=tmp_path / "file" / "tree.png")
    with pytest.raises(OutputError, match=r"cannot write .*file/batch/.samzoo-job.json"):
        samzoo.track_files(folder, tmp_path / "file" / "batch", masks=masks)
    assert not (tmp_path / "o").exists()
