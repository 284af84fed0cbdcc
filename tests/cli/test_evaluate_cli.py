import numpy as np
import tifffile

from samzoo.cli.main import main


def test_evaluate_prints_per_image_and_overall(tmp_path, shared_data, capsys):
    gt = tifffile.imread(shared_data / "Fluo_Hela_02_ERR_SEG.tif", key=[16, 17])
    tifffile.imwrite(tmp_path / "gt.tif", gt)
    pred = gt.copy()
    pred[1][pred[1] == pred[1].max()] = 0
    tifffile.imwrite(tmp_path / "pred.tif", pred)
    assert main(["evaluate", str(tmp_path / "pred.tif"), str(tmp_path / "gt.tif")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["image", "msa", "sa50"]
    assert lines[1].split()[1] == "1.000" and lines[2].split()[1] != "1.000"
    assert lines[-1].startswith("overall")


def test_evaluate_shape_mismatch(tmp_path, capsys):
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((5, 6), np.uint8))
    tifffile.imwrite(tmp_path / "b.tif", np.zeros((5, 7), np.uint8))
    assert main(["evaluate", str(tmp_path / "a.tif"), str(tmp_path / "b.tif")]) == 1
    assert "shape" in capsys.readouterr().err


def test_evaluate_reads_zarr_labels_written_by_samzoo(tmp_path, shared_data, capsys):
    from samzoo.io import write_labels

    gt = tifffile.imread(shared_data / "Fluo_Hela_02_ERR_SEG.tif", key=16)
    tifffile.imwrite(tmp_path / "gt.tif", gt)
    write_labels(gt, tmp_path / "pred.zarr")
    assert main(["evaluate", str(tmp_path / "pred.zarr"), str(tmp_path / "gt.tif")]) == 0
    assert capsys.readouterr().out.splitlines()[-1].split()[1] == "1.000"
