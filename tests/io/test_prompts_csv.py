import numpy as np
import pytest

from samzoo.errors import InputError
from samzoo.io import read_boxes_csv, read_points_csv


def _csv(tmp_path, text):
    path = tmp_path / "p.csv"
    path.write_text(text)
    return path


def test_points_and_boxes(tmp_path):
    points = read_points_csv(_csv(tmp_path, "object_id,y,x,positive\n3,10,20,1\n3,12,22,0\n5,1.5,2,1\n"))
    np.testing.assert_array_equal(points[3][0], [[10, 20], [12, 22]])
    np.testing.assert_array_equal(points[3][1], [1, 0])
    boxes = read_boxes_csv(_csv(tmp_path, "object_id,ymin,xmin,ymax,xmax\n2,1,2,30,40\n"))
    np.testing.assert_array_equal(boxes[2], [1, 2, 30, 40])


@pytest.mark.parametrize("text, match", [
    ("", "columns"),
    ("object_id,y,x\n1,2,3\n", "columns"),
    ("object_id,y,x,positive\n", "no rows"),
    ("object_id,y,x,positive\n1,a,3,1\n", "line 2"),
    ("object_id,y,x,positive\n1,2,3,5\n", "1 or 0"),
    ("object_id,y,x,positive\n0,2,3,1\n", "positive integer"),
    ("object_id,y,x,positive\n1.5,2,3,1\n", "positive integer"),
])
def test_bad_points(tmp_path, text, match):
    with pytest.raises(InputError, match=match):
        read_points_csv(_csv(tmp_path, text))


def test_bad_boxes(tmp_path):
    with pytest.raises(InputError, match="ymin > ymax"):
        read_boxes_csv(_csv(tmp_path, "object_id,ymin,xmin,ymax,xmax\n1,50,2,30,40\n"))
    with pytest.raises(InputError, match="second box"):
        read_boxes_csv(_csv(tmp_path, "object_id,ymin,xmin,ymax,xmax\n1,1,2,30,40\n1,1,2,30,40\n"))
