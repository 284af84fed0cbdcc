import numpy as np
import torch

from samzoo.training.data import CropSampler, pairs_from_arrays
from samzoo.training.trainer import TrainConfig, Trainer, new_model


def _sampler(hela_frame, seed=0):
    img, seg = hela_frame
    pairs = pairs_from_arrays(img[:160, :160], seg[:160, :160], name="hela")
    return CropSampler(pairs, crop_size=64, seed=seed)


def test_crops_are_consistent(hela_frame):
    image, labels, targets = _sampler(hela_frame).sample()
    assert image.shape == (3, 64, 64) and labels.shape == (64, 64) and targets.shape == (3, 64, 64)
    assert 0 <= image.min() and image.max() <= 255
    torch.testing.assert_close(targets[0], (labels > 0).float())


def test_train_steps_checkpoint_and_resume(hela_frame, tmp_path):
    config = TrainConfig(steps=2, batch_size=1, objects_per_image=2, n_iterations=2, warmup_steps=1,
                         checkpoint_every=1, validate_every=1000, seed=1)
    model = new_model(input_size=64)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = Trainer(model, _sampler(hela_frame), config, tmp_path)
    history = trainer.run()
    assert trainer.step == 2 and (tmp_path / "last.pt").exists()
    assert all(np.isfinite(v) for e in history for k, v in e.items())
    changed = [k for k, v in model.state_dict().items() if v.is_floating_point() and not torch.equal(v, before[k])]
    assert any(k.startswith("sam.image_encoder") for k in changed)
    assert any(k.startswith("sam.mask_decoder") for k in changed)
    assert any(k.startswith("ais_decoder") for k in changed)

    # a new trainer on the same run folder resumes where the last one stopped
    config.steps = 3
    resumed = Trainer(new_model(input_size=64), _sampler(hela_frame, seed=5), config, tmp_path)
    assert resumed.step == 2
    torch.testing.assert_close(resumed.model.state_dict(), model.state_dict())
    resumed.run()
    assert resumed.step == 3


def test_recalibrated_batchnorm_matches_batch_statistics(hela_frame):
    """After recalibration, eval mode on a batch gives what train mode (batch statistics) gives."""
    from samzoo.training.trainer import recalibrate_batchnorm

    torch.manual_seed(0)
    model = new_model(input_size=64)
    for m in model.modules():  # stale statistics, as after a few noisy 2-crop batches
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.fill_(3.0)
            m.running_var.fill_(0.01)
    sampler = _sampler(hela_frame, seed=3)
    images = torch.stack([sampler.sample()[0] for _ in range(16)])

    def ais_output(train: bool) -> torch.Tensor:
        model.train(train)
        with torch.no_grad():
            x = model.preprocess(images)
            return model.ais_decoder(model.sam.image_encoder(x), x)

    stale_error = (ais_output(False) - ais_output(True)).abs().mean()
    recalibrate_batchnorm(model, _FixedCrops(images), n_batches=1, batch_size=16)
    error = (ais_output(False) - ais_output(True)).abs().mean()
    assert error < 0.2 * stale_error


class _FixedCrops:
    """A sampler that hands out the given images in order (labels and targets unused here)."""

    def __init__(self, images):
        self.images, self.i = images, 0

    def sample(self):
        image = self.images[self.i % len(self.images)]
        self.i += 1
        return image, None, None


def test_frozen_encoder_stays_unchanged_buffers_included(hela_frame, tmp_path):
    # a frozen encoder runs in eval mode: its BatchNorm running statistics must not move either
    config = TrainConfig(steps=2, batch_size=2, objects_per_image=2, n_iterations=1, warmup_steps=1,
                         checkpoint_every=10, validate_every=1000, freeze_encoder=True, seed=2)
    model = new_model(input_size=64)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    Trainer(model, _sampler(hela_frame), config, tmp_path).run()
    after = model.state_dict()
    encoder = [k for k in after if k.startswith("sam.image_encoder")]
    assert any("running_mean" in k for k in encoder)
    assert all(torch.equal(after[k], before[k]) for k in encoder)
    assert any(not torch.equal(after[k], before[k]) for k in after if k.startswith("sam.mask_decoder"))
