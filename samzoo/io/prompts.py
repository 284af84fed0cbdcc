"""Prompt tables (CSV) for the command line, in image pixel coordinates.

- points: columns ``object_id,y,x,positive`` (positive is 1 or 0), one row per point;
- boxes: columns ``object_id,ymin,xmin,ymax,xmax``, one row per object.

Each ``object_id`` (a positive integer) becomes that label value in the output.
"""

from __future__ import annotations

import csv
import io
import os

import numpy as np

from samzoo.errors import InputError

POINT_COLUMNS = ("object_id", "y", "x", "positive")
BOX_COLUMNS = ("object_id", "ymin", "xmin", "ymax", "xmax")


# object ids become label values, and label images are at most uint32
MAX_OBJECT_ID = int(np.iinfo(np.uint32).max)


def _rows(path: str | os.PathLike, columns: tuple[str, ...]):
    """Yield ``(line_number, {column: float})``, checking header and values."""
    try:
        # utf-8-sig: spreadsheet programs often start CSVs with a byte-order mark
        with open(path, newline="", encoding="utf-8-sig") as handle:
            text = handle.read()
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path} is not a text (UTF-8) CSV file") from None
    if "\0" in text:
        raise InputError(f"{path} is not a text CSV file (it holds NUL bytes)")
    try:
        yield from _parse(path, text, columns)
    except csv.Error as err:
        raise InputError(f"{path} is not a well-formed CSV file: {err}") from None


def _parse(path, text: str, columns: tuple[str, ...]):
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = tuple(h.strip() for h in (reader.fieldnames or ()))
    if sorted(header) != sorted(columns):
        raise InputError(f"{path}: expected the columns {','.join(columns)}, found {','.join(header) or 'none'}")
    n = 0
    for row in reader:
        line = reader.line_num
        if None in row or None in row.values():  # more or fewer values than columns
            raise InputError(f"{path}, line {line}: expected {len(columns)} values ({','.join(columns)})")
        if not any(v.strip() for v in row.values()):
            continue  # a blank line
        n += 1
        try:
            values = {k.strip(): float(v) for k, v in row.items()}
        except ValueError:
            raise InputError(f"{path}, line {line}: every value must be a number, got {dict(row)}") from None
        if not all(np.isfinite(list(values.values()))):
            raise InputError(f"{path}, line {line}: values must be finite numbers")
        object_id = values["object_id"]
        if object_id != int(object_id) or not 1 <= object_id <= MAX_OBJECT_ID:
            raise InputError(f"{path}, line {line}: object_id must be a positive integer (at most {MAX_OBJECT_ID}), "
                             f"got {object_id:g}")
        yield line, values
    if n == 0:
        raise InputError(f"{path}: no rows")


def read_points_csv(path: str | os.PathLike) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Points per object: ``{object_id: (points (N, 2) as (y, x), labels (N,) 1/0)}``."""
    points: dict[int, list] = {}
    for line, v in _rows(path, POINT_COLUMNS):
        if v["positive"] not in (0.0, 1.0):
            raise InputError(f"{path}, line {line}: positive must be 1 or 0, got {v['positive']:g}")
        points.setdefault(int(v["object_id"]), []).append((v["y"], v["x"], int(v["positive"])))
    return {k: (np.array([r[:2] for r in rows]), np.array([r[2] for r in rows])) for k, rows in points.items()}


def read_boxes_csv(path: str | os.PathLike) -> dict[int, np.ndarray]:
    """Boxes per object: ``{object_id: array([ymin, xmin, ymax, xmax])}``."""
    boxes: dict[int, np.ndarray] = {}
    for line, v in _rows(path, BOX_COLUMNS):
        object_id = int(v["object_id"])
        if object_id in boxes:
            raise InputError(f"{path}, line {line}: a second box for object {object_id}")
        if v["ymin"] > v["ymax"] or v["xmin"] > v["xmax"]:
            raise InputError(f"{path}, line {line}: ymin > ymax or xmin > xmax")
        boxes[object_id] = np.array([v["ymin"], v["xmin"], v["ymax"], v["xmax"]])
    return boxes
