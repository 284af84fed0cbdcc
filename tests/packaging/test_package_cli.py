import zipfile

import pooch
import pytest
import tifffile
import torch
import yaml

from samzoo.cli.main import main
from samzoo.models import load as load_module
from samzoo.models.architectures import build_sam
from samzoo.models.model import ModelConfig, SamzooModel
from samzoo.packaging.builder import build_packages
from samzoo.zoo.registry import ModelSpec, get_model_spec


def test_package_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["package", "--help"])
    assert exit_.value.code == 0 and "bioimage.io" in capsys.readouterr().out


def test_package_file_then_segment_with_the_package(tmp_path, test_image, capsys):
    """CLI: a finetuned-style checkpoint file -> packages; `segment --model PACKAGE.zip` works."""
    torch.manual_seed(1)
    model_file = SamzooModel(ModelConfig("samzoo_tiny", 128, {"image_skip": True}, name="mine")).save(
        tmp_path / "mine.safetensors")
    image_file, labels_file = tmp_path / "img.tif", tmp_path / "labels.tif"
    tifffile.imwrite(image_file, test_image[:200, :200])
    labels = (test_image[:200, :200] > test_image[:200, :200].mean()).astype("uint16")
    tifffile.imwrite(labels_file, labels)
    out = tmp_path / "out"
    assert main(["package", str(model_file), "-o", str(out), "--image", str(image_file), "--labels",
                 str(labels_file), "--no-test"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["mine_ais.bioimageio.zip", "mine_prompt.bioimageio.zip"]
    assert "not tested" in capsys.readouterr().out
    assert main(["segment", str(image_file), "-o", str(tmp_path / "labels_out.tif"),
                 "--model", str(out / "mine_ais.bioimageio.zip"), "--no-cache"]) == 0
    assert "model mine" in capsys.readouterr().out


def test_package_errors_are_one_line(tmp_path, capsys):
    assert main(["package", "vit_b_lm", "-o", str(tmp_path)]) == 1  # offline: the clear DownloadError
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "SAMZOO_MODEL_MIRROR" in err
    sam_only = SamzooModel(ModelConfig("samzoo_tiny", 128, ais_decoder=None)).save(tmp_path / "sam.safetensors")
    assert main(["package", str(sam_only), "-o", str(tmp_path), "--kind", "ais"]) == 1
    assert "no AIS decoder" in capsys.readouterr().err


@pytest.mark.slow
def test_upstream_model_is_packageable(tmp_path, monkeypatch, test_image):
    """A published model (vit_t_lm's layout, local weights through a mirror) -> a valid prompt package
    carrying its card's metadata; it has no samzoo AIS decoder, so no AIS package."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    torch.manual_seed(0)
    torch.save({"model_state": build_sam("vit_t", 1024).state_dict()}, mirror / "vit_t_lm.pt")
    real = get_model_spec("vit_t_lm")
    local = ModelSpec(**{**real.__dict__, "hash": f"sha256:{pooch.file_hash(str(mirror / 'vit_t_lm.pt'))}"})
    monkeypatch.setattr(load_module, "get_model_spec", lambda name: local)
    model = load_module.load_model("vit_t_lm", mirror=str(mirror), input_size=256, decoder=False)  # SAM only
    built = build_packages(model, tmp_path / "out", name="vit_t_lm", image=test_image)
    assert [b.kind for b in built] == ["prompt"]
    assert built[0].test_status == "passed", built[0].test_report
    with zipfile.ZipFile(built[0].path) as z:
        rdf = yaml.safe_load(z.read("rdf.yaml"))
    assert rdf["license"] == "CC-BY-4.0" and any("Nature Methods 2025" in c["text"] for c in rdf["cite"])
    assert "micro-sam" in rdf["tags"] and "vit_t_lm" in rdf["name"]
