import json

import numpy as np
import pytest
import tifffile

from samzoo.cli.main import main
from samzoo.tracking.formats import read_ctc, read_geff
from samzoo.tracking.simulate import shuffle_labels


@pytest.fixture
def movie_files(small_movie, tmp_path):
    tifffile.imwrite(tmp_path / "movie.tif", small_movie.images)
    tifffile.imwrite(tmp_path / "masks.tif", shuffle_labels(small_movie.masks, seed=2))
    return tmp_path / "movie.tif", tmp_path / "masks.tif", small_movie.save_ctc(tmp_path / "sim")


def test_track_given_masks_all_formats_then_evaluate(movie_files, tmp_path, capsys):
    movie, masks, gt_dir = movie_files
    out = tmp_path / "out"
    code = main(["track", str(movie), "--axes", "tyx", "--masks", str(masks), "-o", str(out),
                 "--format", "ctc,napari,geff", "--lineage-plot", str(tmp_path / "lineage.png")])
    assert code == 0
    printed = capsys.readouterr().out
    assert "linker: overlap" in printed and "divisions" in printed
    assert (out / "mask000.tif").is_file() and (out / "res_track.txt").is_file()  # directly in OUTDIR
    graph, result, tracks = read_ctc(out)
    assert result.shape == tifffile.imread(masks).shape
    napari = np.loadtxt(out / "napari_tracks.csv", delimiter=",", skiprows=1)
    assert napari.shape == (graph.number_of_nodes(), 4)
    parents = json.loads((out / "napari_graph.json").read_text())
    assert parents and all(int(v[0]) in tracks[:, 0] for v in parents.values())
    assert read_geff(out / "tracks.geff").number_of_edges() == graph.number_of_edges()
    assert (tmp_path / "lineage.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["evaluate-tracking", str(out), str(gt_dir)]) == 0
    lines = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    assert set(lines) == {"TRA", "DET", "LNK", "div_F1"}
    assert float(lines["TRA"]) >= 0.98 and float(lines["div_F1"].split()[0]) >= 0.9
    assert main(["evaluate-tracking", str(out), str(gt_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["DET"] == 1.0


def test_track_segmenting_with_a_model_and_propagating(movie_files, model_file, tmp_path, capsys):
    movie, _, _ = movie_files
    small = tmp_path / "small.tif"
    tifffile.imwrite(small, tifffile.imread(movie)[:2, :128, :128])
    assert main(["track", str(small), "--axes", "tyx", "-o", str(tmp_path / "auto"), "--model", str(model_file)]) == 0
    assert read_ctc(tmp_path / "auto")[1].shape == (2, 128, 128)
    prompts = tmp_path / "p.csv"
    prompts.write_text("object_id,y,x,positive\n1,60,60,1\n")
    assert main(["track", str(small), "--axes", "tyx", "-o", str(tmp_path / "prop"), "--mode", "propagate",
                 "--prompts", str(prompts), "--model", str(model_file)]) == 0
    assert "linker: propagate" in capsys.readouterr().out
    assert (tmp_path / "prop" / "res_track.txt").is_file()


def test_track_errors_are_one_line(movie_files, tmp_path, capsys):
    movie, masks, _ = movie_files
    assert main(["track", str(movie), "--axes", "tyx", "--masks", str(masks), "-o", str(tmp_path / "o"),
                 "--format", "ctc,xml"]) == 1
    assert "unknown --format 'xml'" in capsys.readouterr().err
    assert main(["track", str(movie), "--axes", "zyx", "--masks", str(masks), "-o", str(tmp_path / "o")]) == 1
    assert "needs a t axis" in capsys.readouterr().err
    assert main(["track", str(movie), "--axes", "tyx", "--mode", "propagate", "-o", str(tmp_path / "o"),
                 "--model", "/nonexistent.safetensors"]) == 1
    assert main(["track", str(movie), "--axes", "tyx", "--masks", str(masks), "-o", str(tmp_path / "o"),
                 "--linker", "trackastra", "--trackastra-model", "nope"]) == 1
    assert "unknown trackastra model 'nope'" in capsys.readouterr().err
    assert main(["evaluate-tracking", str(tmp_path), str(tmp_path)]) == 1
    assert "_track.txt" in capsys.readouterr().err


def _classical_first_frame(movie, outdir, *options) -> np.ndarray:
    """Track ``movie`` with the classical segmenter (no model needed) and ``options``; frame 0's labels."""
    assert main(["track", str(movie), "--axes", "tyx", "--segmenter", "classical", *options,
                 "-o", str(outdir), "--format", "ctc"]) == 0
    return tifffile.imread(outdir / "mask000.tif")


def test_track_scale(movie_files, tmp_path, capsys):
    """--scale reaches the segmentation and is refused where it cannot apply."""
    from samzoo.segmentation.rescale import segment_rescaled
    from samzoo.tracking.track import classical

    movie, masks, _ = movie_files
    first, frame = _classical_first_frame(movie, tmp_path / "half", "--scale", "0.5"), tifffile.imread(movie)[0]
    assert np.array_equal(first > 0, segment_rescaled(classical, frame, 0.5) > 0)
    assert not np.array_equal(first > 0, classical(frame) > 0)  # the scale made a difference
    capsys.readouterr()
    assert main(["track", str(movie), "--axes", "tyx", "--masks", str(masks), "--scale", "2",
                 "-o", str(tmp_path / "o")]) == 1
    assert "--scale applies when track segments" in capsys.readouterr().err


def test_track_gamma(movie_files, tmp_path, capsys):
    """--gamma compresses each frame's intensities before segmenting; a gamma out of range is one error line."""
    from samzoo.io.normalize import compress_intensities
    from samzoo.tracking.track import classical

    movie, masks, _ = movie_files
    first, frame = _classical_first_frame(movie, tmp_path / "g", "--gamma", "0.3"), tifffile.imread(movie)[0]
    assert np.array_equal(first > 0, classical(compress_intensities(frame, 0.3)) > 0)
    assert not np.array_equal(first > 0, classical(frame) > 0)  # the gamma made a difference
    capsys.readouterr()
    assert main(["track", str(movie), "--axes", "tyx", "--gamma", "0", "-o", str(tmp_path / "bad")]) == 1
    assert "gamma must be from 0.1 to 10" in capsys.readouterr().err
    # given masks, track does not segment: a gamma would be ignored, so it is refused
    assert main(["track", str(movie), "--axes", "tyx", "--masks", str(masks), "--gamma", "0.5",
                 "-o", str(tmp_path / "m")]) == 1
    assert "--gamma applies when track segments the frames itself" in capsys.readouterr().err
    assert main(["track", str(movie), "--axes", "tyx", "--masks", str(masks), "--gamma", "auto",
                 "-o", str(tmp_path / "m")]) == 1
    assert "--gamma applies when track segments the frames itself" in capsys.readouterr().err
    # auto: the steadier of gamma 1 and 0.5, said in the report
    first = _classical_first_frame(movie, tmp_path / "auto", "--gamma", "auto")
    chosen = float(capsys.readouterr().out.split("segmented at gamma ")[1].split(")")[0])
    assert chosen in (1.0, 0.5)
    np.testing.assert_array_equal(first, _classical_first_frame(movie, tmp_path / "same", "--gamma", str(chosen)))


def test_track_views_are_refused_where_track_does_not_run_ais(movie_files, tmp_path, capsys):
    movie, masks, _ = movie_files
    assert main(["track", str(movie), "--axes", "tyx", "--masks", str(masks), "--views", "2",
                 "-o", str(tmp_path / "m")]) == 1
    assert "--views applies when track segments the frames itself" in capsys.readouterr().err
    assert main(["track", str(movie), "--axes", "tyx", "--segmenter", "classical", "--views", "2",
                 "-o", str(tmp_path / "c")]) == 1
    assert "--views 2 applies to AIS only, not to 'classical'" in capsys.readouterr().err


def test_a_3d_stack_is_a_movie_by_default(movie_files, tmp_path, capsys):
    movie, masks, _ = movie_files  # written by tifffile without axes metadata
    assert main(["track", str(movie), "--masks", str(masks), "-o", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "movie.tif does not name its axes; reading its 3 dimensions as t,y,x" in err and len(err.splitlines()) == 1
    assert read_ctc(tmp_path / "out")[1].shape == tifffile.imread(masks).shape
    assert main(["track", str(movie), "--axes", "zyx", "--masks", str(masks), "-o", str(tmp_path / "o")]) == 1
    assert "needs a t axis" in capsys.readouterr().err  # --axes still decides


def test_a_ctc_folder_of_frames_is_one_movie(shared_data, tmp_path, capsys):
    sequence = shared_data / "ctc" / "Fluo-N2DH-SIM+"
    frames, gt = tmp_path / "01", tmp_path / "gt"
    frames.mkdir(), gt.mkdir()
    for t in (8, 9, 10, 11):  # a division at frame 10; the folder starts at frame 8
        (frames / f"t{t:03d}.tif").symlink_to(sequence / "01" / f"t{t:03d}.tif")
        (gt / f"man_track{t:03d}.tif").symlink_to(sequence / "01_GT" / "TRA" / f"man_track{t:03d}.tif")
    assert main(["track", str(frames), "--masks", str(gt), "-o", str(tmp_path / "out")]) == 0
    assert "over 4 frames" in capsys.readouterr().out
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["mask008.tif", "mask009.tif", "mask010.tif", "mask011.tif",
                                                     "res_track.txt"]
    assert tifffile.imread(out / "mask010.tif").shape == tifffile.imread(frames / "t010.tif").shape
    tracks = np.loadtxt(out / "res_track.txt", dtype=int)
    assert tracks[:, 1].min() == 8 and tracks[:, 2].max() == 11 and (tracks[:, 3] > 0).sum() >= 4
    # two folders of frames are a batch of two movies: one output folder each, named after the frames' folder
    other = tmp_path / "02"
    other.mkdir()
    for t in (0, 1):
        (other / f"t{t:03d}.tif").symlink_to(sequence / "01" / f"t{t:03d}.tif")
    assert main(["track", str(frames / "t00[89].tif"), str(other), "-o", str(tmp_path / "batch"),
                 "--segmenter", "classical", "--no-progress"]) == 0
    assert sorted(p.name for p in (tmp_path / "batch" / "01").glob("*.tif")) == ["mask008.tif", "mask009.tif"]
    assert sorted(p.name for p in (tmp_path / "batch" / "02").glob("*.tif")) == ["mask000.tif", "mask001.tif"]


def test_evaluate_tracking_prints_seg_with_a_ctc_ground_truth_folder(shared_data, tmp_path, capsys):
    from tracking_helpers import ctc_subset

    root = ctc_subset(shared_data / "ctc" / "Fluo-N2DH-GOWT1", tmp_path / "gowt1", range(0, 6))
    res = tmp_path / "res"
    res.mkdir()
    for t in range(6):  # the TRA markers as a result
        (res / f"mask{t:03d}.tif").symlink_to(root / "01_GT" / "TRA" / f"man_track{t:03d}.tif")
    (res / "res_track.txt").symlink_to(root / "01_GT" / "TRA" / "man_track.txt")
    assert main(["evaluate-tracking", str(res), str(root / "01_GT")]) == 0
    lines = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    assert set(lines) == {"TRA", "DET", "LNK", "SEG", "div_F1"}
    assert float(lines["TRA"]) == 1.0
    # GOWT1's markers are small: they cover few annotated nuclei by more than half
    assert 0 < float(lines["SEG"].split()[0]) < 0.9 and "annotated frames" in lines["SEG"]
