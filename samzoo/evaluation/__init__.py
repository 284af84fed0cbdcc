"""Evaluation: instance segmentation accuracy, and interactive (prompt-based) IoU."""

from samzoo.evaluation.instance_metrics import (
    evaluate_instances,
    evaluate_many,
    iou_matrix,
    mean_segmentation_accuracy,
)
from samzoo.evaluation.interactive import interactive_iou

__all__ = ["evaluate_instances", "evaluate_many", "iou_matrix", "mean_segmentation_accuracy", "interactive_iou"]
