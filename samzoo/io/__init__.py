"""Reading images with named axes, intensity normalisation, atomic writing, prompt tables."""

from samzoo.io.image import as_dataarray, read_image
from samzoo.io.normalize import compress_intensities, percentile_normalize, to_model_input
from samzoo.io.prompts import read_boxes_csv, read_points_csv
from samzoo.io.sequence import read_movie
from samzoo.io.write import write_labels, write_overlay_png

__all__ = ["as_dataarray", "read_image", "read_movie", "compress_intensities", "percentile_normalize", "to_model_input",
           "read_boxes_csv", "read_points_csv", "write_labels", "write_overlay_png"]
