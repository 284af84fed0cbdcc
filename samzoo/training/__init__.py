"""Training and finetuning samzoo models (:func:`finetune` for a user's own annotated images)."""

from samzoo.training.finetune import finetune

__all__ = ["finetune"]
