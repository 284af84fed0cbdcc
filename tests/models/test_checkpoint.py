import os

import pooch
import pytest
import torch
from safetensors.torch import save_file

from samzoo.errors import CheckpointError, HashMismatchError, UnsafeCheckpointError
from samzoo.models.checkpoint import load_decoder_state_dict, load_state_dict

WEIGHTS = {"image_encoder.a": torch.ones(2, 3), "mask_decoder.b": torch.zeros(4)}


@pytest.mark.parametrize("layout", ["plain", "model_state", "prefixed"])
def test_layouts(tmp_path, layout):
    path = tmp_path / "ckpt.pt"
    content = {"plain": WEIGHTS, "model_state": {"model_state": WEIGHTS, "optimizer_state": {"lr": 1e-4}, "epoch": 3},
               "prefixed": {f"sam.{k}": v for k, v in WEIGHTS.items()}}[layout]
    torch.save(content, path)
    loaded = load_state_dict(path, expected_hash=f"sha256:{pooch.file_hash(str(path))}")
    assert set(loaded) == set(WEIGHTS)
    torch.testing.assert_close(loaded["image_encoder.a"], WEIGHTS["image_encoder.a"])


def test_decoder_and_safetensors(tmp_path):
    torch.save({"model_state": WEIGHTS, "decoder_state": {"head.weight": torch.ones(1)}}, tmp_path / "d.pt")
    assert set(load_decoder_state_dict(tmp_path / "d.pt")) == {"head.weight"}
    save_file(WEIGHTS, tmp_path / "w.safetensors")
    assert set(load_state_dict(tmp_path / "w.safetensors")) == set(WEIGHTS)


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_with_code_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"model_state": WEIGHTS, "evil": Payload(marker)}, tmp_path / "evil.pt")
    with pytest.raises(UnsafeCheckpointError, match="refuses to unpickle"):
        load_state_dict(tmp_path / "evil.pt")
    assert not marker.exists()


def test_truncated_and_wrong_hash(tmp_path):
    path = tmp_path / "ckpt.pt"
    torch.save(WEIGHTS, path)
    data = path.read_bytes()
    with pytest.raises(HashMismatchError):
        load_state_dict(path, expected_hash="sha256:" + "0" * 64)
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        load_state_dict(path)
    (tmp_path / "bad.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError):
        load_state_dict(tmp_path / "bad.safetensors")


@pytest.mark.parametrize("n_bytes", [1, 2, 3])
def test_checkpoint_cut_to_a_few_bytes_is_corrupt_not_unsafe(tmp_path, n_bytes):
    """A zip cut inside its header is read as a legacy pickle with an invalid opcode."""
    from samzoo.models.checkpoint import read_checkpoint

    torch.save({"model_state": {"w": torch.arange(5000.0)}}, tmp_path / "full.pt")
    (tmp_path / "cut.pt").write_bytes((tmp_path / "full.pt").read_bytes()[:n_bytes])
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(tmp_path / "cut.pt")
    assert not isinstance(info.value, UnsafeCheckpointError)


def test_micro_sam_training_record_is_read_inertly(tmp_path):
    """torch-em's checkpoints carry numpy metrics and paths beside the weights: read, never run."""
    import pathlib

    import numpy as np

    torch.save({"model_state": WEIGHTS, "best_metric": np.float64(0.25), "current_metric": np.float32(2),
                "init": {"save_root": pathlib.PurePosixPath("/runs/a")}}, tmp_path / "best.pt")
    from samzoo.models.checkpoint import read_checkpoint

    checkpoint = read_checkpoint(tmp_path / "best.pt")
    assert checkpoint["best_metric"] == 0.25 and set(load_state_dict(tmp_path / "best.pt")) == set(WEIGHTS)
    assert type(checkpoint["init"]["save_root"]).__name__ == "_Ignored"
