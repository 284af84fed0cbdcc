"""LoRA adapters on the image encoder's attention (``qkv`` projections).

A frozen ``Linear`` W gains a trainable low-rank update: ``y = W x + (alpha / r) * B A x`` with
``A`` (r x in) random and ``B`` (out x r) zero, so training starts from the unchanged model and
touches only ``r * (in + out)`` parameters per layer. Written here because the few lines it
takes do not justify a dependency (peft) for one layer type.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class LoRALinear(nn.Module):
    """``base(x) + scale * up(down(x))`` with ``base`` frozen."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float | None = None) -> None:
        super().__init__()
        self.base = base
        self.base.requires_grad_(False)
        self.down = nn.Linear(base.in_features, rank, bias=False)
        self.up = nn.Linear(rank, base.out_features, bias=False)
        nn.init.kaiming_uniform_(self.down.weight, a=math.sqrt(5))
        nn.init.zeros_(self.up.weight)
        self.scale = (alpha or rank) / rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.scale * self.up(self.down(x))


def add_lora(encoder: nn.Module, rank: int = 4) -> int:
    """Freeze ``encoder`` and wrap every attention ``qkv`` Linear in a :class:`LoRALinear`.

    Returns
    -------
    int
        The number of wrapped layers.
    """
    encoder.requires_grad_(False)
    targets = [(module, name) for module in encoder.modules() for name, child in module.named_children()
               if name == "qkv" and isinstance(child, nn.Linear)]
    for module, name in targets:
        setattr(module, name, LoRALinear(getattr(module, name), rank))
    return len(targets)


def merge_lora(encoder: nn.Module) -> None:
    """Fold every adapter into its base weight, restoring plain ``Linear`` layers (for saving)."""
    for module in list(encoder.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, LoRALinear):
                with torch.no_grad():
                    child.base.weight += child.scale * child.up.weight @ child.down.weight
                child.base.requires_grad_(True)
                setattr(module, name, child.base)
