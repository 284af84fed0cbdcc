"""TrackMate XML and the per-object table, read back with independent parsers (xml.etree, csv, pandas)."""

import csv
import math
import xml.etree.ElementTree as ET

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import tifffile

from samzoo.cli.main import main
from samzoo.errors import InputError, OutputError
from samzoo.io.calibration import tiff_calibration
from samzoo.tracking.export import Calibration, object_table, to_trackmate, write_table
from samzoo.tracking.formats import read_ctc
from samzoo.tracking.lineage import divisions, graph_from_tracks, relabel_tracks


def _spots(root):
    return {int(s.get("ID")): s for s in root.iter("Spot")}


def test_trackmate_holds_the_lineage_graph(small_movie, small_movie_gt, tmp_path):
    graph, masks = small_movie_gt
    path = to_trackmate(graph, masks, tmp_path / "tm.xml", images=small_movie.images,
                        calibration=Calibration((0.5, 0.25), "µm", 120.0, "sec"), image_path=tmp_path / "movie.tif")
    root = ET.parse(path).getroot()
    assert root.tag == "TrackMate" and root.find("Model").get("spatialunits") == "µm"
    spots = _spots(root)
    assert len(spots) == int(root.find("Model/AllSpots").get("nspots")) == graph.number_of_nodes()
    frames = root.findall("Model/AllSpots/SpotsInFrame")
    assert [int(f.get("frame")) for f in frames] == list(range(len(masks)))
    for n, d in graph.nodes(data=True):
        spot = spots[n]
        assert int(spot.get("FRAME")) == d["t"] and float(spot.get("POSITION_T")) == 120.0 * d["t"]
        assert float(spot.get("POSITION_X")) == pytest.approx(0.25 * d["centroid"][1])
        assert float(spot.get("POSITION_Y")) == pytest.approx(0.5 * d["centroid"][0])
        assert float(spot.get("RADIUS")) == pytest.approx(0.25 * math.sqrt(d["area"] / math.pi))
        assert float(spot.get("QUALITY")) == d["area"]
        assert float(spot.get("MEAN_INTENSITY_CH1")) == pytest.approx(small_movie.images[d["t"]][masks[d["t"]]
                                                                                                == d["label"]].mean())
    edges = {(int(e.get("SPOT_SOURCE_ID")), int(e.get("SPOT_TARGET_ID"))) for e in root.iter("Edge")}
    assert edges == set(graph.edges)
    tracks = root.findall("Model/AllTracks/Track")
    assert sum(int(t.get("NUMBER_SPLITS")) for t in tracks) == len(divisions(graph)) >= 3
    assert sum(int(t.get("NUMBER_SPOTS")) for t in tracks) == sum(1 for n in graph if graph.degree(n) > 0)
    assert [t.get("TRACK_ID") for t in root.findall("Model/FilteredTracks/TrackID")] == [t.get("TRACK_ID")
                                                                                         for t in tracks]
    for track in tracks:  # every edge of a track joins spots of one lineage, forward in time
        for edge in track.iter("Edge"):
            source, target = spots[int(edge.get("SPOT_SOURCE_ID"))], spots[int(edge.get("SPOT_TARGET_ID"))]
            assert int(target.get("FRAME")) > int(source.get("FRAME"))
    image = root.find("Settings/ImageData")
    assert image.get("filename") == "movie.tif" and float(image.get("pixelwidth")) == 0.25
    assert int(image.get("width")) == masks.shape[2] and int(image.get("nframes")) == len(masks)
    assert float(image.get("timeinterval")) == 120.0


def test_trackmate_in_3d_and_bad_calibration(tmp_path):
    masks = np.zeros((2, 4, 10, 10), np.uint16)
    masks[:, 1:3, 2:5, 2:5] = 1
    graph = graph_from_tracks(masks, np.array([[1, 0, 1, 0]]))
    root = ET.parse(to_trackmate(graph, masks, tmp_path / "a.xml", calibration=Calibration((2.0, 0.5, 0.5))))
    spot = next(root.iter("Spot"))
    assert float(spot.get("POSITION_Z")) == pytest.approx(2.0 * 1.5)
    assert root.find("Settings/ImageData").get("nslices") == "4"
    assert root.find("Model").get("spatialunits") == "pixel"
    with pytest.raises(InputError, match="pixel size"):
        to_trackmate(graph, masks, tmp_path / "b.xml", calibration=Calibration((0.5, 0.5)))


def test_table_agrees_with_the_ctc_tracks(small_movie, small_movie_gt, tmp_path):
    graph, masks = small_movie_gt
    write_table(graph, masks, tmp_path / "table.csv", images=small_movie.images, first_frame=5)
    with open(tmp_path / "table.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == ["track_id", "frame", "centroid_y", "centroid_x", "area", "mean_intensity",
                             "parent_track_id"]
    assert len(rows) == graph.number_of_nodes()
    # the track ids are the labels the CTC export writes: every row is the object of that label in that frame
    _, ctc_masks, ctc_tracks = relabel_tracks(graph, masks)
    for row in rows[::7]:
        t, label = int(row["frame"]) - 5, int(row["track_id"])
        region = ctc_masks[t] == label
        assert int(row["area"]) == region.sum()
        assert float(row["mean_intensity"]) == pytest.approx(small_movie.images[t][region].mean(), rel=1e-5)
        assert float(row["centroid_y"]) == pytest.approx(np.argwhere(region)[:, 0].mean(), abs=1e-3)
    parents = {int(r["track_id"]): int(r["parent_track_id"]) for r in rows}
    assert parents == {int(l): int(p) for l, _, _, p in ctc_tracks} and any(parents.values())
    assert all(math.isnan(r["mean_intensity"]) for r in object_table(graph, masks))


def test_parquet_table_holds_the_csv_rows_typed(small_movie, small_movie_gt, tmp_path, monkeypatch):
    graph, masks = small_movie_gt
    write_table(graph, masks, tmp_path / "table.csv", images=small_movie.images, first_frame=5)
    assert write_table(graph, masks, tmp_path / "table.parquet", images=small_movie.images,
                       first_frame=5) == tmp_path / "table.parquet"
    text, typed = pd.read_csv(tmp_path / "table.csv"), pd.read_parquet(tmp_path / "table.parquet")
    assert list(typed.columns) == list(text.columns)
    assert typed.dtypes.astype(str).to_dict() == {"track_id": "int64", "frame": "int64", "centroid_y": "float64",
                                                 "centroid_x": "float64", "area": "int64",
                                                 "mean_intensity": "float64", "parent_track_id": "int64"}
    # the CSV rounds to 4 decimals; the Parquet file keeps the full values
    pd.testing.assert_frame_equal(typed, text, check_dtype=False, atol=1e-4, rtol=0)
    assert not list(tmp_path.glob(".*"))  # written atomically: no temporary file left

    # without images, NaN (the CSV's empty cells); a 3-D movie adds centroid_z; no objects: typed empty columns
    write_table(graph, masks, tmp_path / "plain.PARQUET")
    assert pd.read_parquet(tmp_path / "plain.PARQUET")["mean_intensity"].isna().all()
    volume = np.zeros((2, 4, 10, 10), np.uint16)
    volume[:, 1:3, 2:5, 2:5] = 1
    table = pd.read_parquet(write_table(graph_from_tracks(volume, np.array([[1, 0, 1, 0]])), volume,
                                        tmp_path / "volume.parquet"))
    assert list(table.columns[2:5]) == ["centroid_z", "centroid_y", "centroid_x"] and len(table) == 2
    empty = pd.read_parquet(write_table(nx.DiGraph(), np.zeros((2, 8, 8), np.uint16), tmp_path / "empty.parquet"))
    assert len(empty) == 0 and empty.dtypes.astype(str).tolist() == list(typed.dtypes.astype(str))

    with pytest.raises(InputError, match=r"\.csv or \.parquet, not 'table.xlsx'"):
        write_table(graph, masks, tmp_path / "table.xlsx")
    monkeypatch.setitem(__import__("sys").modules, "pyarrow", None)  # as if not installed: import fails
    with pytest.raises(OutputError, match="pip install pyarrow"):
        write_table(graph, masks, tmp_path / "other.parquet")
    assert not (tmp_path / "other.parquet").exists()


def test_track_writes_a_parquet_table(small_movie, tmp_path, capsys):
    movie, masks, out = tmp_path / "movie.tif", tmp_path / "masks.tif", tmp_path / "out"
    tifffile.imwrite(movie, small_movie.images[:4], imagej=True, metadata={"axes": "TYX"})
    tifffile.imwrite(masks, small_movie.masks[:4], imagej=True, metadata={"axes": "TYX"})
    args = ["track", str(movie), "--masks", str(masks), "-o", str(out), "--linker", "overlap"]
    assert main([*args, "--format", "ctc,table", "--table-format", "parquet"]) == 0
    graph, _, tracks = read_ctc(out)
    table = pd.read_parquet(out / "table.parquet")
    assert len(table) == graph.number_of_nodes() and not (out / "table.csv").exists()
    assert set(table["track_id"]) == set(tracks[:, 0].tolist()) and table["mean_intensity"].notna().all()
    capsys.readouterr()
    assert main([*args, "--format", "ctc", "--table-format", "parquet"]) == 1
    assert "--table-format parquet applies to --format table" in capsys.readouterr().err


def test_track_writes_trackmate_and_table_with_the_files_calibration(small_movie, tmp_path, capsys):
    movie = tmp_path / "movie.tif"
    tifffile.imwrite(movie, small_movie.images, imagej=True, resolution=(1 / 0.65, 1 / 0.65),
                     metadata={"axes": "TYX", "unit": "um", "finterval": 300.0})
    tifffile.imwrite(tmp_path / "masks.tif", small_movie.masks, imagej=True, metadata={"axes": "TYX"})
    assert tiff_calibration(movie) == {"pixel_size": pytest.approx((0.65, 0.65)), "spatial_unit": "µm",
                                       "frame_interval": 300.0, "time_unit": "sec"}
    out = tmp_path / "out"
    assert main(["track", str(movie), "--masks", str(tmp_path / "masks.tif"), "-o", str(out),
                 "--format", "ctc,trackmate,table"]) == 0
    graph, _, tracks = read_ctc(out)
    root = ET.parse(out / "trackmate.xml").getroot()
    assert len(_spots(root)) == graph.number_of_nodes() and root.find("Model").get("timeunits") == "sec"
    assert float(root.find("Settings/ImageData").get("pixelwidth")) == pytest.approx(0.65)
    with open(out / "table.csv", newline="") as file:
        assert sum(1 for _ in csv.DictReader(file)) == graph.number_of_nodes()
    # the command line's calibration wins
    assert main(["track", str(movie), "--masks", str(tmp_path / "masks.tif"), "-o", str(out),
                 "--format", "trackmate", "--pixel-size", "0.2", "--frame-interval", "60"]) == 0
    image = ET.parse(out / "trackmate.xml").getroot().find("Settings/ImageData")
    assert float(image.get("pixelwidth")) == 0.2 and float(image.get("timeinterval")) == 60.0
    assert main(["track", str(movie), "--masks", str(tmp_path / "masks.tif"), "-o", str(out),
                 "--format", "trackmate", "--pixel-size", "0"]) == 1
    assert "--pixel-size must be positive" in capsys.readouterr().err
