import os
import shutil
import stat
import zipfile

import pytest
import torch
import yaml

from samzoo.errors import (CheckpointError, DownloadError, HashMismatchError, PackageError, UnknownModelError,
                           UnsafeCheckpointError)
from samzoo.models.architectures import build_sam
from samzoo.models.load import load_model
from samzoo.packaging.reader import is_package, load_package, read_rdf, safe_extract, sha256_of


def _unpacked(zip_path, folder):
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(folder)  # our own freshly built package: trusted here
    return folder


@pytest.mark.parametrize("name", ["../evil.txt", "/tmp/evil.txt", "a/../../evil.txt", "C:/evil.txt", "..\\evil.txt"])
def test_zip_slip_is_refused(tmp_path, name):
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("rdf.yaml", "type: model\n")
        z.writestr(name, "pwned")
    with pytest.raises(UnsafeCheckpointError, match="outside"):
        safe_extract(archive, tmp_path / "target" / "pkg")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "target" / "evil.txt").exists()


def test_symlink_member_is_refused(tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as z:
        info = zipfile.ZipInfo("weights.pt")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        z.writestr(info, "/etc/passwd")
    with pytest.raises(UnsafeCheckpointError, match="symbolic link"):
        safe_extract(archive, tmp_path / "pkg")


def test_not_a_zip(tmp_path):
    (tmp_path / "x.zip").write_bytes(b"not a zip")
    with pytest.raises(PackageError, match="not a zip"):
        load_package(tmp_path / "x.zip")


def test_package_loads_from_zip_folder_and_rdf(packages, source_model, tmp_path):
    folder = _unpacked(packages["ais"], tmp_path / "pkg")
    assert is_package(packages["ais"]) and is_package(folder) and is_package(folder / "rdf.yaml")
    for source in (packages["ais"], folder, folder / "rdf.yaml"):
        loaded = load_model(source)
        assert loaded.config.architecture == source_model.config.architecture
        assert loaded.ais_decoder is not None and loaded.weights_hash.startswith("sha256:")
        torch.testing.assert_close(loaded.state_dict(), source_model.state_dict())
    # the zip is unpacked once into the cache, keyed by its hash
    entries = list((tmp_path / "samzoo-cache" / "packages").iterdir())  # $SAMZOO_CACHE_DIR (tests/conftest.py)
    assert [e.name for e in entries] == [sha256_of(packages["ais"])]


def test_tampered_weights_are_refused(packages, tmp_path):
    folder = _unpacked(packages["prompt"], tmp_path / "pkg")
    rdf, _ = read_rdf(folder)
    weights = folder / rdf["weights"]["pytorch_state_dict"]["source"]
    state = torch.load(weights, weights_only=True)
    first = next(k for k, v in state.items() if v.is_floating_point())
    state[first] = state[first] + 1
    torch.save(state, weights)
    with pytest.raises(HashMismatchError):
        load_model(folder)


def test_weights_outside_the_package_are_refused(packages, tmp_path):
    folder = _unpacked(packages["prompt"], tmp_path / "pkg")
    rdf, _ = read_rdf(folder)
    for source, message in (("https://example.org/w.pt", "URL"), ("../w.pt", "outside")):
        rdf["weights"]["pytorch_state_dict"]["source"] = source
        (folder / "rdf.yaml").write_text(yaml.safe_dump(rdf))
        with pytest.raises((PackageError, UnsafeCheckpointError), match=message):
            load_package(folder)


def test_micro_sam_package_layout_loads(tmp_path):
    """micro-sam's exports: PredictorAdaptor(model_type=...) with a (possibly wrapped) SAM state dict."""
    from samzoo.models.unetr import UNETRDecoder

    sam = build_sam("vit_t", 1024)
    torch.save({"model_state": sam.state_dict()}, tmp_path / "vit_t.pt")
    torch.save(UNETRDecoder().state_dict(), tmp_path / "vit_t_decoder.pt")  # the instance decoder, a file of its own
    rdf = {"type": "model", "format_version": "0.5.3", "name": "micro-sam vit_t", "weights": {"pytorch_state_dict": {
        "source": "vit_t.pt", "sha256": sha256_of(tmp_path / "vit_t.pt"),
        "architecture": {"callable": "PredictorAdaptor", "source": "predictor_adaptor.py",
                         "kwargs": {"model_type": "vit_t"}}}}}
    (tmp_path / "rdf.yaml").write_text(yaml.safe_dump(rdf))
    model = load_model(tmp_path, input_size=512)
    assert isinstance(model.ais_decoder, UNETRDecoder) and model.config.sam_input and model.input_size == 512
    torch.testing.assert_close(model.sam.mask_decoder.state_dict(), sam.mask_decoder.state_dict())
    rdf["weights"]["pytorch_state_dict"]["architecture"]["callable"] = "SomethingElse"
    (tmp_path / "rdf.yaml").write_text(yaml.safe_dump(rdf))
    with pytest.raises(PackageError, match="SomethingElse"):
        load_model(tmp_path)


def test_unpickling_weights_are_refused(tmp_path):
    """A package whose weights need arbitrary unpickling is refused even with a matching hash."""
    torch.save({"w": torch.zeros(1), "code": shutil.rmtree}, tmp_path / "w.pt")
    rdf = {"type": "model", "name": "x", "weights": {"pytorch_state_dict": {
        "source": "w.pt", "sha256": sha256_of(tmp_path / "w.pt"),
        "architecture": {"callable": "AISNetwork", "import_from": "samzoo.packaging.networks",
                         "kwargs": {"architecture": "samzoo_tiny", "input_size": 128, "ais_decoder": {}}}}}}
    (tmp_path / "rdf.yaml").write_text(yaml.safe_dump(rdf))
    with pytest.raises(UnsafeCheckpointError):
        load_model(tmp_path)
    assert os.path.isdir(tmp_path)


def test_bioimageio_ids(tmp_path):
    with pytest.raises(DownloadError, match="vit_b_lm"):
        load_model("diplomatic-bug/1.2")  # the registry's version of vit_b_lm: fetched (offline: clear error)
    with pytest.raises(UnknownModelError, match="version"):
        load_model("diplomatic-bug/9.9")
    with pytest.raises(UnknownModelError):
        load_model("no-such-nickname/1")
    (tmp_path / "folder").mkdir()
    with pytest.raises(CheckpointError, match="bioimage.io package"):
        load_model(tmp_path / "folder")
