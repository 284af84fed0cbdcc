import numpy as np
import pytest
import tifffile

from samzoo.errors import InputError
from samzoo.io.sequence import find_movies, frame_sequence, natural_key, read_frames, read_movie

SIM = "ctc/Fluo-N2DH-SIM+/01"


def test_natural_order_puts_t2_before_t10(tmp_path):
    names = ["t10.tif", "t2.tif", "t1.tif", "t100.tif"]
    assert sorted(names, key=natural_key) == ["t1.tif", "t2.tif", "t10.tif", "t100.tif"]


def test_a_ctc_folder_is_one_movie_numbered_like_its_files(shared_data):
    movie = read_movie(str(shared_data / SIM / "t01[0-2].tif"))
    assert movie.dims == ("t", "y", "x") and movie.shape == (3, 690, 628)
    assert movie.t.values.tolist() == [10, 11, 12]
    assert np.array_equal(movie.values[1], tifffile.imread(shared_data / SIM / "t011.tif"))
    assert "assumed_axes" not in movie.attrs


def test_frames_sort_naturally_and_keep_their_numbers(tmp_path):
    for t in (2, 10, 1):
        tifffile.imwrite(tmp_path / f"t{t}.tif", np.full((4, 5), t, np.uint8))
    movie = read_movie(tmp_path)
    assert movie.t.values.tolist() == [1, 2, 10] and movie.values[:, 0, 0].tolist() == [1, 2, 10]
    assert movie.attrs["source"] == str(tmp_path)


def test_shell_expanded_frames_are_one_movie_and_movies_stay_a_batch(tmp_path):
    frames = tmp_path / "frames"
    movies = tmp_path / "movies"
    frames.mkdir(), movies.mkdir()
    for t in range(3):
        tifffile.imwrite(frames / f"t{t:03d}.tif", np.zeros((6, 7), np.uint16))
        tifffile.imwrite(movies / f"m{t}.tif", np.zeros((2, 6, 7), np.uint16))
    files = sorted(frames.iterdir(), reverse=True)
    assert find_movies([str(p) for p in files]) == [tuple(sorted(files))]
    assert find_movies([frames]) == [tuple(sorted(files))]
    assert find_movies([movies]) == sorted(movies.iterdir())
    assert find_movies([frames, movies]) == [tuple(sorted(files)), *sorted(movies.iterdir())]


def test_mixed_folders_are_files_and_frames_of_other_shapes_are_refused(tmp_path):
    tifffile.imwrite(tmp_path / "t000.tif", np.zeros((6, 7), np.uint16))
    tifffile.imwrite(tmp_path / "t001.tif", np.zeros((2, 6, 7), np.uint16), photometric="minisblack")
    assert find_movies([tmp_path]) == [tmp_path / "t000.tif", tmp_path / "t001.tif"]  # each a movie of its own
    tifffile.imwrite(tmp_path / "t001.tif", np.zeros((6, 8), np.uint16))
    with pytest.raises(InputError, match="one shape"):
        frame_sequence(sorted(tmp_path.iterdir()))


def test_a_3d_movie_without_axes_is_tyx_unless_told(tmp_path):
    tifffile.imwrite(tmp_path / "m.tif", np.zeros((4, 6, 7), np.uint16), photometric="minisblack")  # axes QYX: unknown
    movie = read_movie(tmp_path / "m.tif")
    assert movie.dims == ("t", "y", "x") and movie.attrs["assumed_axes"] == "tyx"
    volume = read_movie(tmp_path / "m.tif", axes="zyx")
    assert volume.dims == ("z", "y", "x") and "assumed_axes" not in volume.attrs
    assert read_movie(np.zeros((4, 6, 7))).attrs["assumed_axes"] == "tyx"
    assert "assumed_axes" not in read_movie(np.zeros((4, 6, 3))).attrs  # colour, as read_image says


def test_axes_metadata_wins_over_the_default(tmp_path):
    tifffile.imwrite(tmp_path / "v.tif", np.zeros((4, 6, 7), np.uint16), photometric="minisblack",
                     metadata={"axes": "ZYX"})
    volume = read_movie(tmp_path / "v.tif")
    assert volume.dims == ("z", "y", "x") and "assumed_axes" not in volume.attrs


def test_read_frames_takes_movie_axes_and_checks_frames(tmp_path):
    tifffile.imwrite(tmp_path / "a1.tif", np.zeros((6, 7), np.uint8))
    tifffile.imwrite(tmp_path / "a2.tif", np.zeros((7, 6), np.uint8))
    assert read_frames([tmp_path / "a1.tif"], axes="tyx").dims == ("t", "y", "x")
    with pytest.raises(InputError, match="one shape"):
        read_frames([tmp_path / "a1.tif", tmp_path / "a2.tif"])
    with pytest.raises(InputError, match="holds 2 movies"):
        tifffile.imwrite(tmp_path / "a2.tif", np.zeros((2, 6, 7), np.uint8), metadata={"axes": "TYX"})
        tifffile.imwrite(tmp_path / "a1.tif", np.zeros((2, 6, 7), np.uint8), metadata={"axes": "TYX"})
        read_movie(tmp_path)
