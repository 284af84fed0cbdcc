"""Bad weight files (truncated, wrong hash, pickles carrying code, unsafe zips) and the command line's
promise: every bad input ends in one line and exit code 1, never in a traceback."""

import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pooch
import pytest
import tifffile
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from samzoo.cli.main import main
from samzoo.errors import CheckpointError, HashMismatchError, SamzooError, UnsafeCheckpointError
from samzoo.models.checkpoint import read_checkpoint
from samzoo.models.load import load_model
from samzoo.zoo.registry import ModelSpec


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fraction=st.floats(0, 0.999))
def test_truncated_samzoo_weights(model_file, tmp_path_factory, fraction):
    data = model_file.read_bytes()
    path = tmp_path_factory.mktemp("cut") / "cut.safetensors"
    path.write_bytes(data[:int(fraction * len(data))])
    with pytest.raises(CheckpointError):
        load_model(path)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fraction=st.floats(0, 0.999))
def test_truncated_torch_checkpoint(tmp_path_factory, fraction):
    folder = tmp_path_factory.mktemp("pt")
    torch.save({"model_state": {"w": torch.arange(5000.0)}}, folder / "full.pt")
    data = (folder / "full.pt").read_bytes()
    (folder / "cut.pt").write_bytes(data[:int(fraction * len(data))])
    with pytest.raises(CheckpointError):
        read_checkpoint(folder / "cut.pt")


class _RunsCode:
    """Unpickling this calls ``os.system``: what a malicious checkpoint does."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_pickle_carrying_code_is_refused_and_never_run(tmp_path, monkeypatch):
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pt"
    torch.save({"model_state": {"w": torch.zeros(2)}, "extra": _RunsCode(marker)}, path)
    with open(path, "rb") as handle:  # the payload does run under a plain unpickler: it is real
        assert b"system" in handle.read()
    with pytest.raises(UnsafeCheckpointError, match="arbitrary code"):
        read_checkpoint(path)
    # the same file served by a mirror under a registry name, with the hash the registry expects:
    # the hash check passes, loading still refuses
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "evil_model.pt").write_bytes(path.read_bytes())
    spec = ModelSpec("evil_model", "sam", "vit_t", "", "url", "http://127.0.0.1:9/evil.pt",
                     "sha256:" + pooch.file_hash(str(path), alg="sha256"), "evil_model.pt", "test")
    import samzoo.models.load as load

    monkeypatch.setattr(load, "get_model_spec", lambda name: spec)
    with pytest.raises(SamzooError, match="arbitrary code"):
        load_model("evil_model", mirror=str(mirror))
    assert not marker.exists()
    # plain pickles (not torch's zip format) are refused too
    with open(tmp_path / "plain.pkl", "wb") as handle:
        pickle.dump(_RunsCode(marker), handle)
    with pytest.raises(SamzooError):
        read_checkpoint(tmp_path / "plain.pkl")
    assert not marker.exists()


def test_wrong_hash_weights(tmp_path):
    path = tmp_path / "w.pt"
    torch.save({"w": torch.zeros(3)}, path)
    with pytest.raises(HashMismatchError, match="refusing to load"):
        read_checkpoint(path, expected_hash="sha256:" + "0" * 64)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(st.sampled_from(["a.txt", "../evil.txt", "x/../../evil.txt", "/abs/evil.txt", "ok/b.txt",
                                       "..\\evil.txt", "C:/evil.txt", "x/./y.txt", "...txt"]),
                      min_size=1, max_size=4, unique=True))
def test_zip_paths_never_escape(tmp_path_factory, names):
    """The packaging engineer's zip loader (samzoo.packaging.reader.safe_extract): nothing lands outside."""
    reader = pytest.importorskip("samzoo.packaging.reader")
    base = tmp_path_factory.mktemp("zip")
    archive = base / "pkg.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in names:
            zf.writestr(name, b"payload")
    target = base / "deep" / "target"
    try:
        reader.safe_extract(archive, target)
        escaped = False
    except SamzooError:
        escaped = None
    outside = [p for p in base.rglob("*") if p.is_file() and target not in p.parents and p != archive]
    assert outside == [], outside
    assert not Path("/abs/evil.txt").exists()
    if escaped is False:  # accepted: every member is inside the target
        assert len([p for p in target.rglob("*") if p.is_file()]) == len(names)


@pytest.fixture
def bad_files(tmp_path, hela_frame):
    files = {}
    image = hela_frame[0][:96, :128]
    tifffile.imwrite(tmp_path / "ok.tif", image)
    files["ok"] = tmp_path / "ok.tif"
    good = (tmp_path / "ok.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(good[:len(good) // 2])
    files["cut_tif"] = tmp_path / "cut.tif"
    (tmp_path / "noise.tif").write_bytes(os.urandom(3000))
    files["noise_tif"] = tmp_path / "noise.tif"
    tifffile.imwrite(tmp_path / "movie.tif", np.zeros((3, 4, 20, 20), np.uint8), photometric="minisblack")
    files["4d"] = tmp_path / "movie.tif"
    for name, text in {"empty": "", "binary": None, "outside": "object_id,y,x,positive\n1,500,10,1\n",
                       "negative": "object_id,y,x,positive\n1,-3,10,1\n",
                       "ragged": "object_id,y,x,positive\n1,3,10,1,9\n",
                       "huge_id": "object_id,y,x,positive\n99999999999,3,10,1\n"}.items():
        path = tmp_path / f"{name}.csv"
        path.write_bytes(os.urandom(200) if text is None else text.encode())
        files[name] = path
    (tmp_path / "cut.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{")
    files["cut_weights"] = tmp_path / "cut.safetensors"
    torch.save({"w": torch.zeros(2)}, tmp_path / "w.pt")
    files["pt"] = tmp_path / "w.pt"
    return files


CASES = [
    ("cut_tif", [], "not a readable TIFF"),
    ("noise_tif", [], "not a readable TIFF"),
    ("4d", [], "cannot tell the axes"),
    ("ok", ["--axes", "tyx"], "3 letters"),
    ("ok", ["--points", "{empty}"], "expected the columns"),
    ("ok", ["--points", "{binary}"], "CSV"),
    ("ok", ["--points", "{outside}"], "outside the image"),
    ("ok", ["--points", "{negative}"], "outside the image"),
    ("ok", ["--points", "{ragged}"], "expected 4 values"),
    ("ok", ["--points", "{huge_id}"], "at most 4294967295"),
    ("ok", ["--model", "{cut_weights}"], "not a readable safetensors file"),
    ("ok", ["--model", "{pt}"], "not a SAM state dict: no image_encoder.pos_embed"),
    ("ok", ["--model", "{pt}", "--decoder", "{empty}"], "not a PyTorch checkpoint"),
    ("ok", ["--model", "vit_q"], "unknown model"),
    ("ok", ["--tile", "-5"], "--tile must be at least 16"),
    ("ok", ["--halo", "100"], "too large for tiles"),
    ("ok", ["--block", "10"], "--block must be at least 64"),
    ("ok", ["--scale", "0"], "--scale must be 'auto' or from 0.125 to 8"),
    ("ok", ["--scale", "nan"], "--scale must be 'auto' or from 0.125 to 8"),
    ("ok", ["--workers", "0"], "--workers"),
]


@pytest.mark.parametrize("image, extra, message", CASES)
def test_cli_bad_input_is_one_clear_line(tmp_path, bad_files, model_file, capsys, image, extra, message):
    extra = [e.format(**bad_files) for e in extra]
    model = [] if "--model" in extra else ["--model", str(model_file)]
    code = main(["segment", str(bad_files[image]), "-o", str(tmp_path / "out.tif"), *model, *extra])
    err = capsys.readouterr().err.split("\r")[-1]  # after any progress bar, which redraws with \r
    assert code == 1 and err.startswith("samzoo: error: ") and err.count("\n") == 1, err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out.tif").exists()


def test_cli_constant_image_is_one_clear_line(tmp_path, model_file, capsys):
    """An image without anything to segment is an error on its own (a batch warns: tests/jobs)."""
    tifffile.imwrite(tmp_path / "flat.tif", np.full((70, 90), 1234, np.uint16))
    for mode in ("ais", "classical"):
        assert main(["segment", str(tmp_path / "flat.tif"), "-o", str(tmp_path / f"{mode}.tif"), "--mode", mode,
                     "--model", str(model_file)]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "flat.tif: every pixel has the value 1234: there is nothing to segment" in err
        assert not (tmp_path / f"{mode}.tif").exists()


def test_cli_tiny_images(tmp_path, model_file):
    tifffile.imwrite(tmp_path / "dots.tif", np.array([[7, 9]], np.uint16))
    assert main(["segment", str(tmp_path / "dots.tif"), "-o", str(tmp_path / "l.tif"), "--model", str(model_file)]) == 0
    assert tifffile.imread(tmp_path / "l.tif").shape == (1, 2)
    tifffile.imwrite(tmp_path / "dot.tif", np.array([[7]], np.uint16))  # one pixel: one value, nothing to segment
    assert main(["segment", str(tmp_path / "dot.tif"), "-o", str(tmp_path / "l.tif"), "--model", str(model_file)]) == 1
