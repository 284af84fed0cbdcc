"""Propagation logic with an oracle in place of SAM (the ground truth answers each prompt), and
its mechanics with a real, untrained model."""

import importlib
from dataclasses import dataclass

import numpy as np
import pytest

from samzoo.errors import InputError
from samzoo.segmentation.predictor import Prompt
from samzoo.tracking.lineage import graph_from_tracks, node_index
from samzoo.tracking.metrics import evaluate_tracking
from samzoo.tracking.propagate import propagate, split_parts
from tracking_helpers import disk

# the module (samzoo.tracking exports a function of the same name)
propagate_module = importlib.import_module("samzoo.tracking.propagate")


@dataclass
class _Answer:
    mask: np.ndarray
    score: float = 0.9

    def full_mask(self, shape):
        return self.mask


def use_oracle(monkeypatch, truth: np.ndarray, mode: str):
    """Replace the model: frame t's 'embedding' is t; a mask prompt gets the ground-truth object(s)
    under it ('best': the one it overlaps most, 'union': all it covers by >= 30%); a point prompt
    gets the object under its first positive point."""
    def embed(model, image, cache=False):
        return int(image.flat[0])

    def predict(model, t, prompts, **options):
        frame, out = truth[t], {}
        for i, p in prompts.items():
            if p.mask is not None:
                labels, counts = np.unique(frame[p.mask], return_counts=True)
                keep = labels > 0
                labels, counts = labels[keep], counts[keep]
                if not len(labels):
                    out[i] = _Answer(np.zeros(frame.shape, bool))
                elif mode == "best":
                    out[i] = _Answer(frame == labels[np.argmax(counts)])
                else:
                    areas = np.array([(frame == l).sum() for l in labels])
                    out[i] = _Answer(np.isin(frame, labels[counts >= 0.3 * areas]))
            else:
                y, x = p.points[p.point_labels == 1][0].astype(int)
                out[i] = _Answer(frame == frame[y, x] if frame[y, x] else np.zeros(frame.shape, bool))
        return out

    monkeypatch.setattr(propagate_module, "compute_embeddings", embed)
    monkeypatch.setattr(propagate_module, "predict", predict)
    return np.broadcast_to(np.arange(len(truth))[:, None, None], truth.shape).copy()


def _followed_truth(masks, tracks):
    """Ground truth restricted to the lineages present in frame 0 (propagation finds no newcomers)."""
    keep = set(tracks[tracks[:, 1] == 0, 0].tolist())
    for label, _, _, parent in tracks.tolist():
        if parent in keep:
            keep.add(label)
    masks = np.where(np.isin(masks, list(keep)), masks, 0)
    return graph_from_tracks(masks, tracks[np.isin(tracks[:, 0], list(keep))]), masks


@pytest.mark.parametrize("mode", ["union", "best"])
def test_divisions_by_split_and_by_collapse(division_movie, monkeypatch, mode):
    masks, tracks = division_movie
    images = use_oracle(monkeypatch, masks, mode)
    graph, result = propagate(None, images, masks[0])
    truth = _followed_truth(masks, tracks)
    scores = evaluate_tracking((graph, result), truth)
    assert scores["TRA"] == 1.0 and scores["div_F1"] == 1.0


def test_prompts_start_and_objects_leaving_stop(monkeypatch):
    shape = (40, 60)
    masks = np.zeros((5,) + shape, dtype=np.int32)
    for t in range(3):  # leaves through the right border after frame 2
        masks[t][disk(shape, (20, 40 + 8 * t), 5)] = 1
    masks[3:, 20:25, 2:7] = 2  # something else later, never prompted
    images = use_oracle(monkeypatch, masks, "best")
    graph, result = propagate(None, images, {5: Prompt(points=[[20, 40]], point_labels=[1])})
    assert [int(result[t].max()) for t in range(5)] == [1, 1, 1, 0, 0]
    assert graph.number_of_edges() == 2


def test_following_a_simulated_movie(small_movie, monkeypatch):
    images = use_oracle(monkeypatch, small_movie.masks, "best")
    graph, result = propagate(None, images, small_movie.masks[0])
    scores = evaluate_tracking((graph, result), _followed_truth(small_movie.masks, small_movie.tracks))
    assert scores["TRA"] >= 0.95 and scores["div_F1"] >= 0.8, scores


def test_split_parts():
    mask = np.zeros((30, 30), bool)
    mask[5:15, 5:15] = mask[5:15, 18:28] = True
    assert len(split_parts(mask, min_fraction=0.2, min_area=10)) == 2
    mask[5:15, 18:28] = False
    mask[20:22, 20:22] = True  # a speck is not a daughter
    assert split_parts(mask, min_fraction=0.2, min_area=10) == []


def test_touching_daughters_are_cut_at_the_neck_but_an_ellipse_is_not():
    shape = (60, 60)
    pair = disk(shape, (30, 20), 9) | disk(shape, (30, 37), 9)
    halves = split_parts(pair, min_fraction=0.2, min_area=10)
    assert len(halves) == 2 and abs(int(halves[0].sum()) - int(halves[1].sum())) <= 2
    assert halves[0][30, 20] != halves[0][30, 37]
    yy, xx = np.mgrid[:60, :60]
    ellipse = ((yy - 30) / 8) ** 2 + ((xx - 30) / 20) ** 2 <= 1
    assert split_parts(ellipse, min_fraction=0.2, min_area=10) == []
    assert split_parts(disk(shape, (30, 30), 12), min_fraction=0.2, min_area=10) == []


def test_mechanics_with_an_untrained_model(tiny_model, small_movie):
    images, start = small_movie.images[:3, :128, :128], small_movie.masks[0, :128, :128]
    graph, result = propagate(tiny_model, images, start)
    assert result.shape == images.shape
    big_enough = [label for label in np.unique(start)[1:] if (start == label).sum() >= 10]
    assert np.array_equal(result[0] > 0, np.isin(start, big_enough))
    index = node_index(graph)
    for t in range(3):
        for label in np.unique(result[t])[1:]:
            assert (t, int(label)) in index


def test_bad_inputs(tiny_model, small_movie):
    with pytest.raises(InputError, match="empty"):
        propagate(tiny_model, small_movie.images[:2], np.zeros(small_movie.images.shape[1:], int))
    with pytest.raises(InputError, match="differ"):
        propagate(tiny_model, small_movie.images[:2], np.ones((5, 5), int))
    with pytest.raises(InputError, match="start_frame"):
        propagate(tiny_model, small_movie.images[:2], small_movie.masks[0], start_frame=5)


def test_one_decoder_batch_per_frame(small_movie, monkeypatch):
    images = use_oracle(monkeypatch, small_movie.masks, "best")
    oracle, calls = propagate_module.predict, []

    def counting_predict(model, t, prompts, **options):
        calls.append((t, len(prompts)))
        return oracle(model, t, prompts)

    monkeypatch.setattr(propagate_module, "predict", counting_predict)
    graph, result = propagate(None, images, small_movie.masks[0])
    per_frame = np.bincount([t for t, _ in calls], minlength=len(images))
    # every live object in one call; a second one only for the sisters of collapsed masks
    assert per_frame[1:].max() <= 2 and per_frame[0] == 0
    first_calls = {}
    for t, n in calls:
        first_calls.setdefault(t, n)
    assert first_calls[1] == len(np.unique(result[0])) - 1


def test_a_low_predicted_iou_alone_does_not_stop_an_object(monkeypatch):
    shape = (40, 60)
    masks = np.zeros((4,) + shape, dtype=np.int32)
    for t in range(4):
        masks[t][disk(shape, (20, 20 + 2 * t), 6)] = 1
    images = use_oracle(monkeypatch, masks, "best")
    oracle = propagate_module.predict

    def unsure(model, t, prompts, **options):  # right masks, low predicted IoU (an uncalibrated model)
        return {i: _Answer(a.mask, score=0.3) for i, a in oracle(model, t, prompts).items()}

    monkeypatch.setattr(propagate_module, "predict", unsure)
    _, followed = propagate(None, images, masks[0])
    assert all(followed[t].max() == 1 for t in range(4))
    _, stopped = propagate(None, images, masks[0], min_score=0.5)
    assert stopped[1:].max() == 0


def test_mask_prompt_matches_the_volume_prompt(small_movie):
    from samzoo.segmentation.volume import _prompt_from_mask

    frame = small_movie.masks[0]
    for label in np.unique(frame)[1:]:
        mask = frame == label
        ours, reference = propagate_module._mask_prompt(mask), _prompt_from_mask(mask)
        assert np.array_equal(ours.points, reference.points) and np.array_equal(ours.box, reference.box)
        assert ours.mask is mask


def _answering(monkeypatch, answer):
    """Replace the model by ``answer(t, prompt) -> mask``; frame t's 'embedding' is t."""
    monkeypatch.setattr(propagate_module, "compute_embeddings", lambda model, image, cache=False: int(image.flat[0]))
    monkeypatch.setattr(propagate_module, "predict",
                        lambda model, t, prompts, **options: {i: _Answer(answer(t, p)) for i, p in prompts.items()})


def test_a_mask_that_caught_a_large_neighbour_keeps_only_the_object(monkeypatch):
    shape = (60, 90)
    cell = disk(shape, (30, 20), 6)
    blob = np.zeros(shape, bool)
    blob[10:50, 24:80] = True  # a large bright region touching the cell, never prompted
    images = np.broadcast_to(np.arange(3)[:, None, None], (3,) + shape).copy()
    _answering(monkeypatch, lambda t, p: cell | blob if t == 1 else cell)
    _, result = propagate(None, images, cell.astype(int))
    assert [int(result[t].max()) for t in range(3)] == [1, 1, 1]  # followed, not stopped
    assert (result[1] > 0).sum() < 2 * cell.sum()  # the blob was not taken
    assert (result[1] > 0)[cell].all()


def test_a_split_part_away_from_the_mother_is_not_a_daughter(monkeypatch):
    shape = (60, 90)
    cell, stranger = disk(shape, (30, 20), 7), disk(shape, (30, 60), 6)  # the stranger is untracked
    images = np.broadcast_to(np.arange(3)[:, None, None], (3,) + shape).copy()
    _answering(monkeypatch, lambda t, p: cell | stranger)
    graph, result = propagate(None, images, cell.astype(int))
    assert graph.number_of_nodes() == 3 and max(d for _, d in graph.out_degree()) == 1  # no division
    assert np.array_equal(result[2] > 0, cell)
