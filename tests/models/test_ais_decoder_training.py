"""A slim (output_stride=2) AIS decoder in a samzoo model: saved and loaded by itself, trained alone."""

import pytest
import torch

from samzoo.models.load import load_model
from samzoo.models.model import ModelConfig, SamzooModel
from samzoo.training.data import CropSampler, pairs_from_arrays
from samzoo.training.trainer import TrainConfig, Trainer

SLIM = {"image_skip": True, "widths": [16, 8, 8], "output_stride": 2}


def _slim_model() -> SamzooModel:
    torch.manual_seed(0)
    return SamzooModel(ModelConfig("samzoo_tiny", 64, dict(SLIM), name="slim"))


def test_a_stride_2_model_file_rebuilds_its_decoder(tmp_path):
    model = _slim_model().eval()
    loaded = load_model(model.save(tmp_path / "slim.safetensors", half=False))
    assert loaded.config.ais_decoder == SLIM and loaded.ais_decoder.output_stride == 2
    embedding, image = torch.randn(1, 256, 4, 4), torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded.ais_decoder(embedding, image), model.ais_decoder(embedding, image))


def test_training_the_ais_decoder_alone_leaves_sam_unchanged(hela_frame, tmp_path):
    img, seg = hela_frame
    sampler = CropSampler(pairs_from_arrays(img[:160, :160], seg[:160, :160], name="hela"), crop_size=64)
    model = _slim_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    config = TrainConfig(steps=2, batch_size=2, warmup_steps=1, freeze_encoder=True, train_sam=False,
                         checkpoint_every=1, validate_every=1000)
    history = Trainer(model, sampler, config, tmp_path).run()
    assert [set(e) - {"step", "time"} for e in history] == [{"ais"}, {"ais"}]  # no prompt (mask/IoU) losses
    after = model.state_dict()
    # every SAM tensor, BatchNorm statistics included, is untouched; the decoder learnt
    assert all(torch.equal(after[k], v) for k, v in before.items() if k.startswith("sam."))
    assert any(not torch.equal(after[k], v) for k, v in before.items() if k.startswith("ais_decoder."))


def test_training_the_ais_decoder_alone_needs_a_frozen_encoder(tmp_path):
    with pytest.raises(ValueError, match="freeze_encoder"):
        Trainer(_slim_model(), None, TrainConfig(train_sam=False), tmp_path)


def test_a_teacher_decoder_is_distilled_into_a_slim_one(hela_frame, tmp_path):
    """With a teacher, the slim decoder learns to reproduce the teacher's maps (and the teacher stays frozen)."""
    from samzoo.models.ais_decoder import AISDecoder, inference_copy
    img, seg = hela_frame
    sampler = CropSampler(pairs_from_arrays(img[:160, :160], seg[:160, :160], name="hela"), crop_size=64, seed=3)
    model = _slim_model()
    torch.manual_seed(1)
    teacher = AISDecoder(image_skip=True, widths=(16, 8, 8, 4)).eval()
    with torch.no_grad():  # a random decoder predicts ~0.5 everywhere: make its maps vary in space
        teacher.head.weight.mul_(30)
    teacher = inference_copy(teacher)
    teacher_before = {k: v.clone() for k, v in teacher.state_dict().items()}
    crops = [sampler.sample()[0] for _ in range(4)]

    def distance() -> float:
        """Mean absolute difference of the maps (0 when the student reproduces the teacher)."""
        model.eval()
        with torch.no_grad():
            x = model.preprocess(torch.stack(crops))
            emb = model.sam.image_encoder(x)
            return (model.ais_decoder(emb, x) - teacher(emb, x)).abs().mean().item()

    before = distance()
    config = TrainConfig(steps=40, batch_size=2, lr=3e-3, warmup_steps=1, freeze_encoder=True, train_sam=False,
                         checkpoint_every=1000, validate_every=1000, distill_weight=5.0)
    history = Trainer(model, sampler, config, tmp_path, teacher=teacher).run()
    assert {"ais", "distill"} <= set(history[-1])
    assert distance() < 0.7 * before, (distance(), before)
    assert all(torch.equal(teacher.state_dict()[k], v) for k, v in teacher_before.items())


def test_distillation_loss_is_zero_only_against_itself():
    from samzoo.training.losses import ais_distillation_loss

    maps = torch.rand(2, 3, 16, 16)
    hard = maps.round()  # binary foreground: BCE against itself is 0
    assert ais_distillation_loss(hard, hard).item() < 1e-4
    assert ais_distillation_loss(maps.flip(-1), hard).item() > 0.1
