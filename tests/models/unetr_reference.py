"""Seeded weights and inputs for micro-sam UNETR decoder references (pure torch: runs in micro-sam's venv too).

``scripts/make_unetr_reference.py`` runs micro-sam's own decoder (torch-em's UNETR through
``micro_sam.instance_segmentation.get_decoder``) on these and stores the outputs in
``tests/models/data/unetr_reference.npz``; ``tests/models/test_unetr.py`` checks samzoo's decoder
against them without micro-sam.
"""

from __future__ import annotations

import torch

SEED = 16
ORIGINAL_SHAPE = (300, 200)  # an image whose longest side was resized to 1024: input shape (1024, 683)
INPUT_SHAPE = (1024, 683)
STRIDE = 3  # the stored output keeps every third pixel along each axis


def seeded_state(shapes: dict[str, tuple[int, ...]], seed: int = SEED) -> dict[str, torch.Tensor]:
    """Deterministic weights for every key (sorted), from shapes only: the same in any environment."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key in sorted(shapes):
        shape = tuple(shapes[key])
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7, dtype=torch.long)
        elif key.endswith("running_var"):
            state[key] = 0.5 + torch.rand(shape, generator=generator)
        elif len(shape) == 1 and key.endswith("weight"):  # BatchNorm scale
            state[key] = 1 + 0.2 * torch.randn(shape, generator=generator)
        elif len(shape) == 1:  # biases, BatchNorm shift and running mean
            state[key] = 0.1 * torch.randn(shape, generator=generator)
        else:
            fan_in = shape[1] * int(torch.tensor(shape[2:]).prod()) if len(shape) > 2 else shape[1]
            state[key] = torch.randn(shape, generator=generator) / fan_in ** 0.5
    return state


def seeded_embedding(seed: int = SEED) -> torch.Tensor:
    """A ``(1, 256, 64, 64)`` image embedding."""
    return torch.randn((1, 256, 64, 64), generator=torch.Generator().manual_seed(seed + 1))
