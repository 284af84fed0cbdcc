"""The script-facing entry points: samzoo.segment and samzoo.track on numpy, dask and xarray."""

import dask.array as da
import networkx as nx
import numpy as np
import pytest
import xarray as xr

import samzoo
from samzoo.errors import InputError
from samzoo.tracking import simulate_movie


@pytest.fixture(scope="module")
def crops(hela_frame):
    image, _ = hela_frame
    return np.stack([image[:128, :160], image[200:328, 300:460]])


def test_segment_keeps_dims_coords_and_attrs(crops):
    movie = xr.DataArray(crops, dims=("t", "y", "x"), coords={"t": [0.0, 10.0], "x": np.arange(160) * 0.5},
                         attrs={"pixel_size_um": 0.5})
    model = samzoo.load_model()
    labels = samzoo.segment(movie, model)
    assert isinstance(labels, xr.DataArray) and labels.dims == ("t", "y", "x")
    assert labels.coords["t"].values.tolist() == [0.0, 10.0] and labels.coords["x"].values[1] == 0.5
    assert labels.attrs["pixel_size_um"] == 0.5 and labels.attrs["model"] == model.name
    scale = labels.attrs["scale"]  # the model's default: one scale estimated for the whole movie
    assert scale != 1 and model.config.object_diameter
    for t in range(2):  # the same labels as segmenting each frame on its own at that scale
        np.testing.assert_array_equal(labels.values[t], samzoo.segment(crops[t], model, scale=scale))
    assert labels.values.max() > 0


def test_segment_numpy_and_dask_give_arrays(crops):
    from_numpy = samzoo.segment(crops[0], mode="classical")
    from_dask = samzoo.segment(da.from_array(crops, chunks=(1, 64, 64)), mode="classical", axes="tyx")
    assert isinstance(from_numpy, np.ndarray) and from_numpy.shape == crops[0].shape
    assert isinstance(from_dask, np.ndarray) and from_dask.shape == crops.shape
    np.testing.assert_array_equal(from_dask[0], from_numpy)


def test_segment_names_bad_input(crops):
    with pytest.raises(InputError, match="time or depth"):
        samzoo.segment(crops, mode="classical")  # 3D without axes: ambiguous
    with pytest.raises(InputError, match="prompts need a 2D image"):
        samzoo.segment(crops, axes="tyx", prompts={1: samzoo.Prompt(points=[[5, 5]], point_labels=[1])})
    with pytest.raises(InputError, match="unknown mode"):
        samzoo.segment(crops[0], mode="magic")


def test_track_returns_labels_and_the_lineage():
    sim = simulate_movie(n_frames=6, seed=1)
    movie = xr.DataArray(sim.images, dims=("t", "y", "x"), coords={"t": np.arange(6) * 5.0})
    labels, graph = samzoo.track(movie, masks=sim.masks)
    assert isinstance(labels, xr.DataArray) and labels.dims == ("t", "y", "x")
    assert labels.coords["t"].values.tolist() == [0.0, 5.0, 10.0, 15.0, 20.0, 25.0]
    assert isinstance(graph, nx.DiGraph) and graph.number_of_nodes() >= len(np.unique(sim.masks[0])) - 1
    plain, plain_graph = samzoo.track(sim.images, masks=sim.masks)  # a 3D array is a movie
    np.testing.assert_array_equal(plain, labels.values)
    assert nx.utils.graphs_equal(plain_graph, graph)
    with pytest.raises(InputError, match="t axis"):
        samzoo.track(xr.DataArray(sim.images[0], dims=("y", "x")), masks=sim.masks[:1])
