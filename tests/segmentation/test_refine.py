import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.draw import disk

from samzoo.errors import InputError
from samzoo.segmentation.embeddings import compute_embeddings
from samzoo.segmentation.predictor import Prompt, predict
from samzoo.segmentation.refine import can_refine, snap_to_foreground


def _disk(shape, centre, radius):
    out = np.zeros(shape, bool)
    out[disk(centre, radius, shape=shape)] = True
    return out


def test_the_border_moves_to_the_foreground_within_the_band_only():
    shape = (80, 80)
    mask = _disk(shape, (40, 40), 12)
    fg = _disk(shape, (40, 40), 14).astype(float)  # the object is 2 px larger all round
    np.testing.assert_array_equal(snap_to_foreground(mask, fg, band=4), fg > 0)
    larger = _disk(shape, (40, 40), 20).astype(float)  # 8 px larger: only 4 px of it are taken
    out = snap_to_foreground(mask, larger, band=4)
    assert out.sum() < (larger > 0).sum() and (out >= mask).all()
    np.testing.assert_array_equal(out, ndi.binary_dilation(mask, iterations=4) & (larger > 0))
    # a neighbour's foreground that the band reaches without touching the object is not taken along
    neighbour = fg.copy()
    neighbour[_disk(shape, (40, 58), 3)] = 1
    np.testing.assert_array_equal(snap_to_foreground(mask, neighbour, band=4), fg > 0)
    empty = np.zeros(shape, bool)
    assert not snap_to_foreground(empty, fg).any()


def test_predict_refines_with_samzoo_models_only(tiny_model, hela_frame):
    image = hela_frame[0][:128, :128]
    emb = compute_embeddings(tiny_model, image, cache=False)
    prompts = {1: Prompt(points=[[64, 64]], point_labels=[1]), 2: Prompt(box=[20, 20, 60, 70])}
    assert can_refine(tiny_model)
    sam = predict(tiny_model, emb, prompts, refine=False, pick_instance=False)
    refined = predict(tiny_model, emb, prompts, pick_instance=False)  # refining is the default for samzoo's models
    assert any(k[0] == "foreground" for k in emb.derived)  # computed once, kept with the embeddings
    for k in prompts:
        assert refined[k].score == sam[k].score
        changed = refined[k].mask != sam[k].mask
        # only pixels within the band of SAM's border change
        band = ndi.binary_dilation(sam[k].mask, iterations=4) & ~ndi.binary_erosion(sam[k].mask, iterations=4)
        assert not (changed & ~band).any()
    without_decoder = tiny_model
    decoder, without_decoder.ais_decoder = tiny_model.ais_decoder, None
    try:
        assert not can_refine(without_decoder)
        with pytest.raises(InputError, match="cannot refine"):
            predict(without_decoder, emb, prompts, refine=True)
        assert predict(without_decoder, emb, prompts)[1].mask.shape == sam[1].mask.shape  # default: no refinement
    finally:
        tiny_model.ais_decoder = decoder


def test_a_single_point_picks_the_ais_instance_under_it(hela_frame):
    from samzoo import load_model
    from samzoo.evaluation.interactive import _deepest_pixel
    from samzoo.segmentation.ais import tile_instances

    model = load_model()  # the shipped model: an untrained one finds no instances to pick
    image, truth = hela_frame[0][:256, :256], hela_frame[1][:256, :256]
    emb = compute_embeddings(model, image, cache=False)
    assert len(emb.tiles) == 1
    instances = tile_instances(model, emb, emb.tiles[0], views=2)  # as segment's default AIS
    centres = [_deepest_pixel(truth == i) for i in np.unique(truth[truth > 0])]
    nucleus = next(c for c in centres if instances[c])  # a nucleus that AIS found
    on_nucleus, on_background = Prompt(points=[nucleus], point_labels=[1]), Prompt(points=[[2, 2]], point_labels=[1])
    two_points = Prompt(points=[nucleus, [2, 2]], point_labels=[1, 0])
    prompts = {1: on_nucleus, 2: on_background, 3: two_points, 4: Prompt(points=[nucleus], point_labels=[0])}
    picked = predict(model, emb, prompts)  # the default for samzoo's models
    sam = predict(model, emb, prompts, pick_instance=False)
    y, x = nucleus
    assert instances[2, 2] == 0
    np.testing.assert_array_equal(picked[1].mask, instances == instances[y, x])
    assert not np.array_equal(picked[1].mask, sam[1].mask)
    assert picked[1].score == sam[1].score  # SAM's predicted IoU stays
    for k in (2, 3, 4):  # no instance under the point, more than one point, a negative point: SAM's masks
        np.testing.assert_array_equal(picked[k].mask, sam[k].mask)
    # the picked mask is the next step's mask prompt: its logits are positive inside it, negative far outside
    logits = picked[1].logits[0].numpy()
    step = model.input_size // logits.shape[0]
    assert logits[y // step, x // step] > 0 and logits[2 // step, 2 // step] < 0
    corrected = predict(model, emb, {1: Prompt(points=[nucleus, [2, 2]], point_labels=[1, 0])}, previous=picked)
    assert (corrected[1].mask & picked[1].mask).sum() > 0.5 * picked[1].mask.sum()
    decoder, model.ais_decoder = model.ais_decoder, None
    try:
        with pytest.raises(InputError, match="cannot pick instances"):
            predict(model, emb, {1: on_nucleus}, pick_instance=True)
    finally:
        model.ais_decoder = decoder


def test_amg_and_apg_run_the_ais_decoder_once_per_tile(tiny_model, hela_frame, monkeypatch):
    import samzoo.segmentation.ais as ais
    from samzoo.segmentation.automatic import segment_amg, segment_apg

    calls = []
    tile_maps = ais._tile_maps
    monkeypatch.setattr(ais, "_tile_maps", lambda *a: calls.append(a[3].index) or tile_maps(*a))
    image = hela_frame[0][:200, :200]
    # an untrained model: thresholds that let its masks and instances through, so that masks are refined
    accept_all = {segment_amg: {"foreground_threshold": 0.0, "pred_iou_threshold": 0.0, "stability_threshold": 0.0},
                  segment_apg: {"foreground_threshold": 0.0, "center_threshold": 1.0, "boundary_threshold": 0.0}}
    for segment, options in accept_all.items():
        emb = compute_embeddings(tiny_model, image, tile_size=128, halo=16, cache=False)
        calls.clear()
        labels = segment(tiny_model, image, embeddings=emb, **options)
        assert labels.max() > 0, segment.__name__
        # the pass that places the prompts keeps its foreground for the refinement of their masks
        assert sorted(calls) == list(range(len(emb.tiles))), segment.__name__


def test_a_box_alone_picks_the_ais_instance_it_bounds(hela_frame):
    from samzoo import load_model
    from samzoo.segmentation.ais import tile_instances
    from samzoo.segmentation.predictor import BOX_PICK_IOU

    model = load_model()  # the shipped model: an untrained one finds no instances to pick
    image = hela_frame[0][:256, :256]
    emb = compute_embeddings(model, image, cache=False)
    instances = tile_instances(model, emb, emb.tiles[0], views=2)
    sizes = np.bincount(instances.ravel())
    label = int(np.argmax(sizes[1:]) + 1)  # the largest instance
    ys, xs = np.nonzero(instances == label)
    tight = [ys.min(), xs.min(), ys.max(), xs.max()]  # inclusive, as prompts take boxes
    h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
    loose = [max(ys.min() - h, 0), max(xs.min() - w, 0), ys.max() + h, xs.max() + w]  # box IoU about 1/9
    prompts = {1: Prompt(box=tight), 2: Prompt(box=loose), 3: Prompt(box=tight, points=[[ys[0], xs[0]]], point_labels=[1])}
    picked = predict(model, emb, prompts)
    sam = predict(model, emb, prompts, pick_instance=False)
    np.testing.assert_array_equal(picked[1].mask, instances == label)
    assert not np.array_equal(sam[1].mask, picked[1].mask) and picked[1].score == sam[1].score
    assert BOX_PICK_IOU > 1 / 9
    for k in (2, 3):  # a box much larger than any instance in it, a box with a point: SAM's masks
        np.testing.assert_array_equal(picked[k].mask, sam[k].mask)
    # a box that is not its object's extent (last frame's, clip_to_box=False) never picks
    unclipped = predict(model, emb, {1: Prompt(box=tight)}, clip_to_box=False)
    np.testing.assert_array_equal(unclipped[1].mask, predict(model, emb, {1: Prompt(box=tight)}, clip_to_box=False,
                                                             pick_instance=False)[1].mask)


def test_a_box_picks_in_the_tile_that_owns_it_on_a_tiled_image(hela_frame):
    """On a tiled image the box picks from its own tile's instances, placed back on the image."""
    from samzoo import load_model
    from samzoo.segmentation.ais import tile_instances
    from samzoo.segmentation.tiling import owning_tile

    model = load_model()
    image = hela_frame[0][:400, :600]
    emb = compute_embeddings(model, image, cache=False)
    assert len(emb.tiles) > 1
    # a tile whose outer region starts away from the image's origin, with nuclei in its inner region
    tile = max((t for t in emb.tiles if min(t.outer[:2]) > 0),
               key=lambda t: tile_instances(model, emb, t, views=2)[t.inner_in_outer].max())
    instances = tile_instances(model, emb, tile, views=2)
    inner = instances[tile.inner_in_outer]
    label = int(np.bincount(inner.ravel())[1:].argmax() + 1)  # the largest instance seen in the inner region
    ys, xs = np.nonzero(instances == label)
    ys, xs = ys + tile.outer[0], xs + tile.outer[1]  # image pixels
    box = [ys.min(), xs.min(), ys.max(), xs.max()]
    assert owning_tile(emb.tiles, (box[0] + box[2]) / 2, (box[1] + box[3]) / 2).index == tile.index
    result = predict(model, emb, {1: Prompt(box=box)})[1]
    expected = np.zeros(image.shape, bool)
    expected[ys, xs] = True
    np.testing.assert_array_equal(result.full_mask(image.shape), expected)
