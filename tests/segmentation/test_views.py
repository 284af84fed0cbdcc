import numpy as np
import pytest

from samzoo.errors import InputError
from samzoo.segmentation.ais import ais_maps, segment_ais, multi_view_maps
from samzoo.segmentation.embeddings import compute_embeddings
from samzoo.segmentation.views import VIEWS, check_views, maps_from_view, resolve_views, view_image


@pytest.mark.parametrize("name", VIEWS[8])
def test_each_view_turns_back_onto_the_image_grid(name):
    """A "decoder" that returns its input: the maps of every view, turned back, are the image itself."""
    image = np.random.default_rng(0).random((5, 7, 3))  # not square, colour: channels stay last
    seen = view_image(image, name)
    assert seen.shape[2] == 3 and seen.flags.c_contiguous
    maps = np.moveaxis(seen, -1, 0)  # (K, h, w), as the AIS maps
    np.testing.assert_array_equal(maps_from_view(maps, name), np.moveaxis(image, -1, 0))


def test_the_views_are_distinct():
    image = np.arange(12.0).reshape(3, 4)
    square = np.arange(16.0).reshape(4, 4)
    assert len({view_image(square, name).tobytes() for name in VIEWS[8]}) == 8
    assert all(len(names) == n and names[0] == "identity" for n, names in VIEWS.items())
    assert view_image(image, "transpose").shape == (4, 3)


@pytest.mark.parametrize("bad", [0, 3, 16, "two", None, 2.5, True])
def test_bad_numbers_of_views_are_refused(bad):
    with pytest.raises(InputError, match="views must be one of 1, 2, 4, 8"):
        check_views(bad)


def test_default_views_follow_the_model_and_mode(tiny_model):
    assert resolve_views(tiny_model, None) == 2  # samzoo's own AIS decoder
    assert resolve_views(tiny_model, None, "amg") == 1 and resolve_views(None, None) == 1
    assert resolve_views(tiny_model, 4) == 4 and resolve_views(tiny_model, 1, "amg") == 1
    with pytest.raises(InputError, match="views 2 applies to AIS only, not to 'amg'"):
        resolve_views(tiny_model, 2, "amg")


def test_one_view_is_the_plain_maps_and_eight_make_ais_equivariant(tiny_model, hela_frame):
    """With all eight views the maps turn exactly with the image (one tile: the tiling turns too)."""
    image = hela_frame[0][200:328, 300:428]
    embeddings = compute_embeddings(tiny_model, image, cache=False)
    np.testing.assert_array_equal(multi_view_maps(tiny_model, image, 1, embeddings=embeddings),
                                  ais_maps(tiny_model, embeddings))
    maps = multi_view_maps(tiny_model, image, 8)
    turned = multi_view_maps(tiny_model, np.rot90(image), 8)
    np.testing.assert_allclose(turned, np.rot90(maps, axes=(1, 2)), atol=1e-5)
    # fewer views are not equivariant: the untrained decoder's maps depend on the orientation
    two = multi_view_maps(tiny_model, image, 2)
    assert not np.allclose(two, maps, atol=1e-3)
    # two views: the larger foreground (what either view sees), the mean distances
    first = ais_maps(tiny_model, embeddings)
    turned = maps_from_view(ais_maps(tiny_model, compute_embeddings(tiny_model, view_image(image, "rot90"),
                                                                    cache=False)), "rot90")
    np.testing.assert_allclose(two[0], np.maximum(first[0], turned[0]), atol=1e-6)
    np.testing.assert_allclose(two[1:], (first[1:] + turned[1:]) / 2, atol=1e-6)
    assert segment_ais(tiny_model, image, views=2).shape == image.shape


def test_a_tiles_instances_over_two_views_are_the_images_when_it_is_one_tile(hela_frame):
    """tile_instances turns the tile itself: on a one-tile image it is the 2-view watershed of the image."""
    from samzoo import load_model
    from samzoo.segmentation.ais import tile_foreground, tile_instances
    from samzoo.segmentation.watershed import watershed_from_maps

    model = load_model()  # the shipped model: an untrained one finds no instances
    image = hela_frame[0][:256, :224]  # not square: the turned tile is 224 x 256
    embeddings = compute_embeddings(model, image, cache=False)
    assert len(embeddings.tiles) == 1
    tile = embeddings.tiles[0]
    two = tile_instances(model, embeddings, tile, views=2)
    one_view = watershed_from_maps(ais_maps(model, embeddings))
    np.testing.assert_array_equal(two, watershed_from_maps(multi_view_maps(model, image, 2, embeddings=embeddings)))
    assert two.max() > 5 and not np.array_equal(two, one_view)
    np.testing.assert_array_equal(tile_instances(model, embeddings, tile), one_view)  # kept apart per views
    # the tile's foreground, kept for prompts, stays the image's own (one view)
    np.testing.assert_array_equal(tile_foreground(model, embeddings, tile), ais_maps(model, embeddings)[0])
    with pytest.raises(InputError, match="views must be one of"):
        tile_instances(model, embeddings, tile, views=3)
