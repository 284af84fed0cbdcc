"""samzoo: Segment Anything for microscopy.

The public API, for scripts::

    import samzoo

    model = samzoo.load_model()                       # samzoo's own model, offline
    image = samzoo.read_image("cells.tif", axes="yx")
    labels = samzoo.segment(image, model)             # a DataArray in, a DataArray out
    labels, lineage = samzoo.track(movie, model)      # a movie: labels + networkx lineage graph

    result = samzoo.segment_files("plates/*.tif", "labels/")      # files in, label files out: a batch on dask
    result = samzoo.track_files("movie.tif", "tracks/", format="ctc,table")

    emb = samzoo.compute_embeddings(model, image.values)   # cached: prompts are then fast
    result = samzoo.predict(model, emb, {1: samzoo.Prompt(points=[[120, 88]], point_labels=[1])})
    labels = samzoo.paint_labels(result, emb.shape)
"""

from samzoo.api import segment, track
from samzoo.evaluation import evaluate_instances, interactive_iou, mean_segmentation_accuracy
from samzoo.io import read_image, write_labels, write_overlay_png
from samzoo.jobs import SegmentResult, TrackResult, segment_files, track_files
from samzoo.models.load import load_model
from samzoo.segmentation.ais import segment_ais
from samzoo.segmentation.embeddings import compute_embeddings
from samzoo.segmentation.predictor import Prompt, paint_labels, predict
from samzoo.zoo import fetch_model_file, list_models

__version__ = "0.1.0"

__all__ = [
    "segment", "track", "segment_files", "track_files", "SegmentResult", "TrackResult",
    "load_model", "list_models", "fetch_model_file",
    "read_image", "write_labels", "write_overlay_png",
    "compute_embeddings", "Prompt", "predict", "paint_labels", "segment_ais",
    "evaluate_instances", "mean_segmentation_accuracy", "interactive_iou",
]
