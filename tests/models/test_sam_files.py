"""SAM and micro-sam files by path: architecture from shapes, training checkpoints, separate decoders."""

import sys
import types

import pytest
import torch

from samzoo.errors import CheckpointError, UnsafeCheckpointError
from samzoo.models.architectures import build_sam
from samzoo.models.load import load_model
from samzoo.models.sam_files import infer_architecture
from samzoo.models.unetr import UNETRDecoder


def _vit_shapes(width: int, depth: int) -> dict:
    state = {"image_encoder.pos_embed": torch.zeros(1, 64, 64, width)}
    state.update({f"image_encoder.blocks.{i}.norm1.weight": torch.zeros(width) for i in range(depth)})
    return state


@pytest.mark.parametrize("name,width,depth", [("vit_b", 768, 12), ("vit_l", 1024, 24), ("vit_h", 1280, 32)])
def test_vit_architecture_from_shapes(name, width, depth):
    assert infer_architecture(_vit_shapes(width, depth)) == name


def test_unknown_layouts_name_what_was_found():
    with pytest.raises(CheckpointError, match="ViT of width 512 with 10 blocks"):
        infer_architecture(_vit_shapes(512, 10))
    with pytest.raises(CheckpointError, match="not a SAM state dict.*found 1 tensors, e.g. head.weight"):
        infer_architecture({"head.weight": torch.zeros(1)})


@pytest.fixture(scope="module")
def vit_t_state():
    torch.manual_seed(0)
    return build_sam("vit_t", 1024).state_dict()


def test_official_sam_checkpoint_by_path(tmp_path, vit_t_state):
    assert infer_architecture(vit_t_state) == "vit_t"
    torch.save(vit_t_state, tmp_path / "mobile_sam.pt")
    model = load_model(tmp_path / "mobile_sam.pt")
    assert model.config.architecture == "vit_t" and model.config.sam_input and model.ais_decoder is None
    assert model.weights_hash.startswith("sha256:")
    torch.testing.assert_close(model.sam.state_dict(), vit_t_state)


class _RecordEntry:  # an object of the trainer's record, pickled under a torch_em module name
    def __init__(self, path):
        self.path = path


def test_training_checkpoint_and_separate_decoder(tmp_path, vit_t_state, monkeypatch):
    decoder = UNETRDecoder(use_conv_transpose=False)
    module = types.ModuleType("torch_em.data.fake_dataset")
    module.SegmentationDataset = _RecordEntry
    _RecordEntry.__module__, _RecordEntry.__qualname__ = module.__name__, "SegmentationDataset"
    for parent in ("torch_em", "torch_em.data"):
        monkeypatch.setitem(sys.modules, parent, types.ModuleType(parent))
    monkeypatch.setitem(sys.modules, module.__name__, module)
    checkpoint = {"model_state": {f"sam.{k}": v for k, v in vit_t_state.items()},
                  "decoder_state": decoder.state_dict(), "optimizer_state": {"state": {}, "param_groups": []},
                  "init": {"train_dataset": _RecordEntry("/data/train")}, "iteration": 10}
    torch.save(checkpoint, tmp_path / "best.pt")
    for name in (module.__name__, "torch_em.data", "torch_em"):  # as where samzoo runs: no torch_em installed
        monkeypatch.delitem(sys.modules, name)
    model = load_model(tmp_path / "best.pt")
    assert model.config.ais_decoder_type == "unetr" and not model.config.ais_decoder["use_conv_transpose"]
    torch.testing.assert_close(model.ais_decoder.state_dict(), decoder.state_dict())
    torch.testing.assert_close(model.sam.state_dict(), vit_t_state)
    # the published layout: SAM weights and the decoder in a file of its own
    torch.save(vit_t_state, tmp_path / "vit_t.pt")
    torch.save(UNETRDecoder().state_dict(), tmp_path / "vit_t_decoder.pt")
    model = load_model(tmp_path / "vit_t.pt", decoder=tmp_path / "vit_t_decoder.pt")
    assert model.config.ais_decoder["use_conv_transpose"]
    # a decoder with a missing key is one clear error
    broken = {k: v for k, v in UNETRDecoder().state_dict().items() if k != "base.block.4.bias"}
    torch.save(broken, tmp_path / "broken_decoder.pt")
    with pytest.raises(CheckpointError, match=r"broken_decoder.pt does not fit.*missing keys \(1\): base.block.4.bias"):
        load_model(tmp_path / "vit_t.pt", decoder=tmp_path / "broken_decoder.pt")


class _Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_other_objects_are_still_refused(tmp_path, vit_t_state):
    torch.save({"model_state": vit_t_state, "init": _Payload()}, tmp_path / "evil.pt")
    with pytest.raises(UnsafeCheckpointError, match="refuses to unpickle"):
        load_model(tmp_path / "evil.pt")


def test_wrong_shapes_for_the_architecture(tmp_path, vit_t_state):
    state = dict(vit_t_state)
    state["mask_decoder.iou_token.weight"] = torch.zeros(2, 256)
    torch.save(state, tmp_path / "odd.pt")
    with pytest.raises(CheckpointError, match="odd.pt does not fit the vit_t architecture.*iou_token"):
        load_model(tmp_path / "odd.pt")
