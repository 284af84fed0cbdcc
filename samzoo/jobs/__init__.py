"""Jobs on files: what ``samzoo segment`` and ``samzoo track`` do, for scripts.

:func:`segment_files` and :func:`track_files` take file names, folders or glob patterns, check
options and outputs before any work, run batches and images larger than memory on dask
(resumable: a rerun skips finished work), write label files or tracks, and return a small
result (:class:`SegmentResult`, :class:`TrackResult`: what was written, counts, warnings)
instead of printing. The command line only parses its arguments, calls them and prints.
"""

from samzoo.jobs.segment_jobs import segment_files
from samzoo.jobs.segment_settings import SegmentResult
from samzoo.jobs.track_jobs import TrackResult, track_files

__all__ = ["segment_files", "track_files", "SegmentResult", "TrackResult"]
