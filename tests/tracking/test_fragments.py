import numpy as np
from skimage.draw import disk

from samzoo.tracking.fragments import join_fragments


def _disk(shape, centre, radius):
    out = np.zeros(shape, bool)
    out[disk(centre, radius, shape=shape)] = True
    return out


def test_pieces_of_a_nucleus_are_joined_back_to_where_they_began():
    nucleus = _disk((60, 60), (30, 30), 12)
    masks = np.zeros((4, 60, 60), np.int32)
    masks[0][nucleus] = 1
    for t in (1, 2):  # cut in two touching halves for two frames
        masks[t][nucleus] = 3
        masks[t][nucleus & (np.arange(60)[None, :] >= 30)] = 7
    masks[3][nucleus] = 5  # whole again
    out = join_fragments(masks)
    for t in range(4):
        assert len(np.unique(out[t])) == 2, t  # background and one object
    assert len(np.unique(masks[1])) == 3  # the caller's masks are left alone


def test_daughters_and_neighbours_stay_apart():
    shape = (60, 80)
    a, b = _disk(shape, (30, 29), 10), _disk(shape, (30, 47), 10)
    masks = np.zeros((3, *shape), np.int32)
    # frame 0: two touching nuclei (a waist between them); frame 1: the segmentation merges them
    masks[0][a], masks[0][b] = 1, 2  # b painted over a: they touch
    masks[1][a | b] = 1
    masks[2][a], masks[2][b] = 1, 2
    out = join_fragments(masks)
    assert len(np.unique(out[0])) == 3  # their union has a neck: not one nucleus in pieces
    # two daughters after a division: apart in the frames after, never joined
    masks = np.zeros((3, *shape), np.int32)
    masks[0][_disk(shape, (30, 39), 13)] = 1
    for t in (1, 2):
        masks[t][_disk(shape, (30, 39 - 6 * t), 8)] = 1
        masks[t][_disk(shape, (30, 39 + 6 * t), 8)] = 2
    np.testing.assert_array_equal(join_fragments(masks), masks)


def test_pieces_in_the_last_frame_cannot_be_told_from_daughters():
    nucleus = _disk((40, 40), (20, 20), 10)
    masks = np.zeros((2, 40, 40), np.int32)
    masks[0][nucleus] = 1
    masks[1][nucleus] = 1
    masks[1][nucleus & (np.arange(40)[None, :] >= 20)] = 2
    np.testing.assert_array_equal(join_fragments(masks), masks)
