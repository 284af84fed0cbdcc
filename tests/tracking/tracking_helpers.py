"""Helpers shared by the tracking tests (not fixtures: plain functions)."""

from __future__ import annotations

import numpy as np


def disk(shape, center, radius):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return (yy - center[0]) ** 2 + (xx - center[1]) ** 2 <= radius ** 2
