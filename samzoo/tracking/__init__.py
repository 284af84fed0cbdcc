"""Tracking: follow objects through time, detect divisions, build lineages, export, evaluate.

Example
-------
>>> from samzoo import tracking
>>> movie = tracking.simulate_movie(n_frames=10, shape=(128, 128), n_cells=5, seed=0)
>>> result = tracking.track(masks=movie.masks)          # link given masks (no model)
>>> scores = tracking.evaluate_tracking((result.graph, result.masks),
...                                     (tracking.graph_from_tracks(movie.masks, movie.tracks), movie.masks))
>>> tracking.to_ctc(result.graph, result.masks, "out/")  # doctest: +SKIP
"""

from samzoo.tracking.formats import read_ctc, read_geff, to_ctc, to_geff, to_napari, write_ctc
from samzoo.tracking.export import object_table, to_trackmate, write_table
from samzoo.tracking.lineage import (detections, divisions, graph_from_tracks, lineage_trees, relabel_tracks,
                                     track_table, tracklets)
from samzoo.tracking.linking import link_overlap
from samzoo.tracking.trackastra_link import link_trackastra
from samzoo.tracking.metrics import evaluate_ctc_folders, evaluate_tracking
from samzoo.tracking.plot import lineage_plot
from samzoo.tracking.propagate import propagate
from samzoo.tracking.simulate import SimulatedMovie, simulate_movie
from samzoo.tracking.track import TrackingResult, segment_movie, track

__all__ = [
    "track", "TrackingResult", "segment_movie", "propagate", "link_overlap", "link_trackastra",
    "detections", "graph_from_tracks", "tracklets", "divisions", "lineage_trees", "relabel_tracks", "track_table",
    "to_ctc", "write_ctc", "read_ctc", "to_napari", "to_geff", "read_geff", "to_trackmate", "write_table",
    "object_table",
    "evaluate_tracking", "evaluate_ctc_folders", "lineage_plot", "simulate_movie", "SimulatedMovie",
]
