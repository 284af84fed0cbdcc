"""The shipped default model: loads offline, hash-checked, and segments held-out real data.

Thresholds sit a little below what the shipped weights measure on HeLa frame 17 (held out from
training; see model_cards/samzoo_tiny_lm.md): AIS mSA 0.809, one point per nucleus 0.755, one
box 0.733. A regression in the weights, the loading or the segmentation code fails here.
"""

import pytest

from samzoo import evaluate_instances, load_model, segment_ais
from samzoo.evaluation.interactive import interactive_iou
from samzoo.segmentation.classical import classical_baseline
from samzoo.zoo.registry import DEFAULT_MODEL, get_model_spec


@pytest.fixture(scope="module")
def default_model():
    return load_model()


def test_default_model_ships_with_its_hash(default_model):
    spec = get_model_spec(DEFAULT_MODEL)
    assert spec.hash.startswith("sha256:") and default_model.weights_hash == spec.hash
    assert default_model.config.name == DEFAULT_MODEL and default_model.ais_decoder is not None


def test_ais_beats_the_classical_baseline_on_held_out_hela(default_model, hela_frame):
    image, truth = hela_frame
    ais = evaluate_instances(segment_ais(default_model, image), truth)
    baseline = evaluate_instances(classical_baseline(image), truth)
    assert ais["msa"] >= 0.78
    assert ais["msa"] >= baseline["msa"] + 0.15


@pytest.mark.parametrize("start, threshold", [("point", 0.70), ("box", 0.68)])
def test_prompts_from_ground_truth_on_held_out_hela(default_model, hela_frame, start, threshold):
    image, truth = hela_frame
    ious = interactive_iou(default_model, image, truth, start=start, n_corrections=0)
    assert ious.shape == (1,) and float(ious[0]) >= threshold
