"""Finetune a model on a user's annotated images: the function behind ``samzoo finetune``.

A few annotated images of one's own kind of data make a small model much better on it (on the
simulated nuclei movies of :mod:`samzoo.tracking.simulate`, 1200 steps, about 15 minutes on one
CPU thread, raise tracking TRA from 0.85 to 0.96; ``docs/tracking.md``). On a CPU the fast choice is
``freeze_encoder=True``: the image encoder is left as it is, a pool of augmented crops is embedded
once, and only the decoders (SAM's prompt decoder and the AIS decoder) train on those embeddings.

Example
-------
>>> import samzoo
>>> from samzoo.tracking import simulate_movie
>>> from samzoo.training import finetune
>>> movie = simulate_movie(n_frames=4, shape=(96, 96), n_cells=4, seed=1)
>>> model = finetune(samzoo.load_model(), movie.images, movie.masks, steps=2,
...                  embedding_pool=2)  # doctest: +SKIP
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from samzoo.errors import InputError
from samzoo.models.load import load_model
from samzoo.models.model import SamzooModel
from samzoo.training.data import CropSampler, TrainingPair, pairs_from_arrays
from samzoo.training.trainer import TrainConfig, Trainer, recalibrate_batchnorm
from samzoo.training.validation import make_validation


def as_pairs(images, labels=None, name: str = "") -> list[TrainingPair]:
    """Training pairs from ``TrainingPair``s, or from images and labels.

    ``images``/``labels``: one 2D array each, a stack ``(N, H, W)`` each, or sequences of 2D
    arrays of matching shapes (one pair per plane).
    """
    if labels is None:
        pairs = list(images)
        if not all(isinstance(p, TrainingPair) for p in pairs):
            raise InputError("without labels, images must be TrainingPairs (samzoo.training.data.pairs_from_arrays)")
        return pairs
    if isinstance(images, np.ndarray) and isinstance(labels, np.ndarray):
        return pairs_from_arrays(images, labels, name=name)
    images, labels = list(images), list(labels)
    if len(images) != len(labels):
        raise InputError(f"{len(images)} images but {len(labels)} label images")
    return [pair for i, (image, label) in enumerate(zip(images, labels))
            for pair in pairs_from_arrays(np.asarray(image), np.asarray(label), name=f"{name}{i}")]


def finetune(model: SamzooModel, images, labels=None, *, steps: int = 500, batch_size: int = 2,
             lr: float = 1e-4, freeze_encoder: bool = True, embedding_pool: int = 200, lora_rank: int = 0,
             val_images=None, val_labels=None, run_dir: str | Path | None = None,
             checkpoint_every: int = 50, visible_targets: bool = True, device: str = "cpu", seed: int = 0,
             notes: dict | None = None) -> SamzooModel:
    """Train ``model`` further on annotated images; return the trained model, in eval mode.

    Parameters
    ----------
    model : SamzooModel
        Trained in place (it needs an AIS decoder: give published SAM models one first).
    images, labels : arrays or sequences of arrays, or TrainingPairs with ``labels=None``
        Images and their instance labels (0 = background), 2D planes: see :func:`as_pairs`.
    steps, batch_size, lr : training schedule (AdamW, warm-up then cosine decay).
    freeze_encoder : bool
        Train the decoders only, on embeddings of ``embedding_pool`` augmented crops computed
        once (CPU-feasible). Otherwise the encoder trains too, or only LoRA adapters of rank
        ``lora_rank`` on its attention.
    val_images, val_labels : optional held-out images; with them the best model by validation
        score is returned, else the last one.
    run_dir : folder for checkpoints (``last.pt``), the best model by validation
        (``best.safetensors``) and the final one (``model.safetensors``); calling again with the
        same folder resumes. A temporary folder by default.
    checkpoint_every : steps between checkpoints (and validations).
    visible_targets : bool
        Objects cut by a crop's edge are taught as their visible part (see
        :class:`~samzoo.training.data.CropSampler`), so the model finds slivers of objects
        entering or leaving the field at the image border.
    notes : free-form notes saved in the checkpoints (e.g. where the data came from).

    Returns
    -------
    SamzooModel
        A new model object, in eval mode, as saved (``run_dir/model.safetensors`` or
        ``best.safetensors``) and loaded back, so its ``weights_hash`` is its own; BatchNorm
        statistics re-estimated on the training data (the running averages of small batches lag
        behind the weights). ``model`` itself is left as the training left it.
    """
    if model.ais_decoder is None:
        raise InputError("this model has no AIS decoder to finetune: give it one first "
                         "(model.ais_decoder = AISDecoder(image_skip=True); see `samzoo finetune`)")
    if steps < 1:
        raise InputError(f"steps must be >= 1, got {steps}")
    pairs = as_pairs(images, labels, name="train")
    if not pairs:
        raise InputError("no training images")
    validate = None
    if val_images is not None:
        validate = make_validation(as_pairs(val_images, val_labels, name="val"), model.input_size)
    config = TrainConfig(steps=steps, batch_size=batch_size, lr=lr, warmup_steps=min(50, steps),
                         freeze_encoder=freeze_encoder, embedding_pool=embedding_pool if freeze_encoder else 0,
                         lora_rank=lora_rank, checkpoint_every=checkpoint_every,
                         validate_every=checkpoint_every, device=device, seed=seed, extra=dict(notes or {}))
    with tempfile.TemporaryDirectory(prefix="samzoo-finetune-") as tmp:
        folder = Path(run_dir) if run_dir is not None else Path(tmp)
        sampler = CropSampler(pairs, crop_size=model.input_size, seed=seed, visible_targets=visible_targets)
        trainer = Trainer(model, sampler, config, folder, validate=validate)
        trainer.run()
        recalibrate_batchnorm(trainer.model, CropSampler(pairs, None, model.input_size, seed=4321), device,
                              include_encoder=not freeze_encoder)
        final = trainer.export(folder / "model.safetensors")  # LoRA adapters folded in
        best = folder / "best.safetensors"
        # loaded back from the file: the weights hash (it keys the embedding cache) is the new one's
        return load_model(best if validate is not None and best.exists() else final, device=device)
