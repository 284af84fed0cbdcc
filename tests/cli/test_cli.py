import numpy as np
import pytest
import tifffile

from samzoo.cli.main import main


def test_help_everywhere(capsys):
    for command in ([], ["models"], ["fetch"], ["segment"]):
        with pytest.raises(SystemExit) as exit_:
            main(command + ["--help"])
        assert exit_.value.code == 0
    assert "segment" in capsys.readouterr().out


def test_models_table(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "vit_b_lm" in out and "samzoo_tiny_lm (default)" in out


def test_errors_are_one_line(capsys, tmp_path):
    assert main(["fetch", "vit_q"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown model 'vit_q'" in err and "Traceback" not in err
    assert main(["segment", str(tmp_path / "missing.tif"), "-o", str(tmp_path / "o.tif")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_segment_with_prompts(tmp_path, hela_frame, model_file, capsys):
    image_path = tmp_path / "frame.tif"
    tifffile.imwrite(image_path, hela_frame[0][:200, :250])
    (tmp_path / "p.csv").write_text("object_id,y,x,positive\n7,100,120,1\n7,110,130,0\n")
    (tmp_path / "b.csv").write_text("object_id,ymin,xmin,ymax,xmax\n9,20,30,60,80\n")
    out = tmp_path / "labels.tif"
    code = main(["segment", str(image_path), "-o", str(out), "--model", str(model_file),
                 "--points", str(tmp_path / "p.csv"), "--boxes", str(tmp_path / "b.csv")])
    assert code == 0
    labels = tifffile.imread(out)
    assert labels.shape == (200, 250) and set(np.unique(labels)) <= {0, 7, 9}
    assert (tmp_path / "labels_overlay.png").exists()
    assert str(out) in capsys.readouterr().out


def test_segment_movie_automatically(tmp_path, shared_data, model_file):
    movie = tifffile.imread(shared_data / "nuclei3d_img.tif")[:3]
    tifffile.imwrite(tmp_path / "m.tif", movie)
    assert main(["segment", str(tmp_path / "m.tif"), "-o", str(tmp_path / "l.tif"), "--axes", "tyx",
                 "--model", str(model_file)]) == 0
    assert tifffile.imread(tmp_path / "l.tif").shape == movie.shape


def test_segment_volume_joins_slices(tmp_path, shared_data, model_file, capsys):
    out = tmp_path / "v.tif"
    assert main(["segment", str(shared_data / "nuclei3d_img.tif"), "--axes", "zyx", "-o", str(out),
                 "--model", str(model_file), "--mode", "ais"]) == 0
    assert tifffile.imread(out).shape == (31, 61, 57)
    assert "objects in 31 plane(s)" in capsys.readouterr().out


def test_default_model_missing_is_said_plainly(tmp_path, hela_frame, capsys):
    tifffile.imwrite(tmp_path / "f.tif", hela_frame[0][:64, :64])
    code = main(["segment", str(tmp_path / "f.tif"), "-o", str(tmp_path / "o.tif")])
    err = capsys.readouterr().err
    from samzoo.zoo.fetch import package_file
    from samzoo.zoo.registry import get_model_spec
    if package_file(get_model_spec("samzoo_tiny_lm")).exists():
        assert code == 0
    else:
        assert code == 1 and "has not been trained" in err
