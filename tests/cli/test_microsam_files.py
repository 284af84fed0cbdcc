"""`samzoo segment` with micro-sam's files: SAM weights by path, --decoder, registry models with their decoders."""

import numpy as np
import pooch
import tifffile
import torch

from samzoo.cli.main import main
from samzoo.models import load as load_module
from samzoo.models.load import load_model
from samzoo.models.model import ModelConfig, SamzooModel
from samzoo.models.unetr import UNETRDecoder
from samzoo.segmentation.ais import segment_ais
from samzoo.zoo.registry import ModelSpec


def _random_model() -> SamzooModel:
    """A random vit_t SAM with micro-sam's decoder whose maps are not flat (its output convolution amplified)."""
    torch.manual_seed(0)
    model = SamzooModel(ModelConfig("vit_t", 1024, ais_decoder={}, ais_decoder_type="unetr", sam_input=True))
    with torch.no_grad():
        model.ais_decoder.out_conv.weight.mul_(20)
    return model


def test_segment_ais_with_sam_file_and_decoder(tmp_path, hela_frame):
    model = _random_model()
    torch.save(model.sam.state_dict(), tmp_path / "vit_t.pt")
    torch.save(model.ais_decoder.state_dict(), tmp_path / "vit_t_decoder.pt")
    image = hela_frame[0][300:460, 400:600]
    tifffile.imwrite(tmp_path / "frame.tif", image)
    out = tmp_path / "labels.tif"
    assert main(["segment", str(tmp_path / "frame.tif"), "-o", str(out), "--model", str(tmp_path / "vit_t.pt"),
                 "--decoder", str(tmp_path / "vit_t_decoder.pt"), "--mode", "ais", "--no-cache",
                 "--no-progress"]) == 0
    labels = tifffile.imread(out)
    model = load_model(tmp_path / "vit_t.pt", decoder=tmp_path / "vit_t_decoder.pt")
    expected = segment_ais(model, image)
    assert expected.max() > 5  # the decoder finds objects: the comparison below means something
    np.testing.assert_array_equal(labels, expected)


def test_registry_model_fetches_its_decoder(tmp_path, monkeypatch):
    model = _random_model()
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    torch.save(model.sam.state_dict(), mirror / "tiny_lm.pt")
    torch.save(model.ais_decoder.state_dict(), mirror / "tiny_lm_decoder.pt")

    def spec(name, kind):
        file = mirror / f"{name}.pt"
        return ModelSpec(name, kind, "vit_t", "", "url", "http://127.0.0.1:9/x",
                         f"sha256:{pooch.file_hash(str(file))}", file.name, "")

    sam, decoder = spec("tiny_lm", "sam"), spec("tiny_lm_decoder", "ais_decoder")
    monkeypatch.setattr(load_module, "get_model_spec", lambda name: sam)
    monkeypatch.setattr(load_module, "decoder_for", lambda s: decoder)
    monkeypatch.setenv("SAMZOO_CACHE_DIR", str(tmp_path / "cache"))
    model = load_model("tiny_lm", mirror=str(mirror))
    assert isinstance(model.ais_decoder, UNETRDecoder) and model.config.sam_input
    torch.testing.assert_close(model.ais_decoder.state_dict(), torch.load(mirror / "tiny_lm_decoder.pt"))
    assert (tmp_path / "cache" / "models" / "tiny_lm_decoder.pt").is_file()  # fetched and cached, hash-checked
    assert load_model("tiny_lm", mirror=str(mirror), decoder=False).ais_decoder is None
