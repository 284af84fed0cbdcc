import numpy as np
import torch

from samzoo.training.data import instance_targets
from samzoo.training.prompts import boxes_of, corrective_points, random_points_in, sample_objects


def test_instance_targets_on_real_labels(hela_frame):
    _, seg = hela_frame
    crop = seg[:200, :200].astype(np.int32)
    t = instance_targets(crop)
    assert t.shape == (3, 200, 200)
    np.testing.assert_array_equal(t[0] > 0, crop > 0)
    inside = crop > 0
    assert t[1][inside].min() >= 0 and t[1][inside].max() <= 1
    assert t[2][~inside].max() == 0
    for label in np.unique(crop)[1:5]:  # each object reaches 1 at its innermost pixel
        assert np.isclose(t[2][crop == label].max(), 1.0)


def test_prompts_lie_in_objects():
    labels = torch.zeros(64, 64, dtype=torch.long)
    labels[5:15, 10:30] = 3
    labels[40:60, 40:50] = 7
    ids = sample_objects(labels, 5, generator=torch.Generator().manual_seed(0))
    assert sorted(ids.tolist()) == [3, 7]
    masks = labels[None] == torch.tensor([3, 7])[:, None, None]
    pts = random_points_in(masks, torch.Generator().manual_seed(1)).long()
    assert labels[pts[0, 1], pts[0, 0]] == 3 and labels[pts[1, 1], pts[1, 0]] == 7
    assert boxes_of(masks).tolist() == [[10, 5, 29, 14], [40, 40, 49, 59]]


def test_corrective_points_follow_the_error():
    gt = torch.zeros(2, 20, 20, dtype=torch.bool)
    gt[:, 5:15, 5:15] = True
    pred = gt.clone()
    pred[0, 5:15, 5:10] = False            # object 0: half missed -> positive click there
    pred[1, 0:3, :] = True                 # object 1: extra pixels -> negative click there
    pts, labels = corrective_points(pred, gt, torch.Generator().manual_seed(0))
    assert labels.tolist() == [1, 0]
    x, y = pts[0].long()
    assert gt[0, y, x] and not pred[0, y, x]
    x, y = pts[1].long()
    assert pred[1, y, x] and not gt[1, y, x]


def test_visible_targets_give_every_piece_cut_by_the_crop_a_centre(hela_frame):
    """Objects cut by a crop's edge: with visible_targets their distances are their visible part's
    (a seed-able centre inside the crop), without they keep the whole object's; others are untouched."""
    from samzoo.training.data import CropSampler, pairs_from_arrays

    image, labels = hela_frame
    pairs = pairs_from_arrays(image[:300, :300], labels[:300, :300], name="hela")
    whole, visible = (CropSampler(pairs, crop_size=96, seed=5, visible_targets=v) for v in (False, True))
    n_cut = n_whole_without_centre = 0
    for _ in range(20):
        (_, lab_a, tg_a), (_, lab_b, tg_b) = whole.sample(), visible.sample()
        assert torch.equal(lab_a, lab_b)  # same crops: only the targets differ
        edge = torch.cat([lab_b[0], lab_b[-1], lab_b[:, 0], lab_b[:, -1]])
        cut = set(torch.unique(edge[edge > 0]).tolist())
        for i in torch.unique(lab_b)[1:].tolist():
            inside = lab_b == i
            if i in cut and inside.sum() >= 10:  # a few pixels have no meaningful centre
                n_cut += 1
                assert tg_b[1][inside].min() < 0.2 and tg_b[2][inside].max() > 0.99  # its own centre, its own depth
                seedable = (tg_a[1] < 0.4) & (tg_a[2] > 0.6) & inside  # what the watershed's seeds need
                n_whole_without_centre += not bool(seedable.any())
            elif i not in cut:
                assert torch.equal(tg_a[:, inside], tg_b[:, inside])
    assert n_cut > 5 and n_whole_without_centre > 0  # the case this is for occurs in these crops
