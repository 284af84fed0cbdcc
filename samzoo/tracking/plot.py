"""Lineage-tree plots: time on the x axis, one row per track segment, daughters under mothers."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np

from samzoo.io.write import atomic_path
from samzoo.tracking.lineage import tracklets, track_table


def tree_layout(tracks: np.ndarray) -> dict[int, float]:
    """Row of every track in a lineage plot: a depth-first order, each mother between its daughters.

    Parameters
    ----------
    tracks : ndarray (N, 4)
        CTC ``L B E P`` rows.

    Returns
    -------
    dict of track label -> row (float)
    """
    children: dict[int, list[int]] = {}
    for label, _, _, parent in tracks.tolist():
        children.setdefault(parent, []).append(label)
    rows: dict[int, float] = {}
    next_row = [0.0]

    def place(label: int) -> float:
        kids = children.get(label, [])
        if not kids:
            rows[label] = next_row[0]
            next_row[0] += 1
        else:
            rows[label] = float(np.mean([place(k) for k in kids]))
        return rows[label]

    # roots: tracks without a parent (or whose parent is unknown); long lineages first
    known = set(tracks[:, 0].tolist())
    roots = [int(l) for l, b, e, p in tracks.tolist() if p == 0 or p not in known]
    for root in roots:
        place(root)
        next_row[0] += 0.5  # a gap between lineages
    return rows


def lineage_plot(graph: nx.DiGraph, path: str | Path | None = None, *, title: str = "", max_labels: int = 60):
    """Draw the lineage trees of a tracking result; optionally save them as a PNG.

    Parameters
    ----------
    graph : networkx.DiGraph
        Lineage graph (see :mod:`samzoo.tracking.lineage`).
    path : path, optional
        PNG to write (atomically).
    title : str
    max_labels : int
        Track IDs are written next to the tracks when there are at most this many.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    tracks = track_table(graph, tracklets(graph))
    rows = tree_layout(tracks)
    height = max(3.0, min(0.12 * len(tracks) + 1.5, 40.0))
    fig, ax = plt.subplots(figsize=(10, height))
    by_label = {int(r[0]): r for r in tracks}
    parents, counts = np.unique(tracks[tracks[:, 3] > 0, 3], return_counts=True)
    divided = set(parents[counts >= 2].tolist())  # one child only: a bridged gap
    for label, begin, end, parent in tracks.tolist():
        y = rows[label]
        ax.plot([begin, end + 1], [y, y], color="tab:blue", lw=1.5, solid_capstyle="butt")
        if parent in by_label:
            style = "-" if parent in divided else ":"
            ax.plot([begin, begin], [rows[parent], y], color="tab:gray", lw=1, ls=style)
        if label in divided:
            ax.plot([end + 1], [y], marker="o", ms=3, color="tab:red")
        if len(tracks) <= max_labels:
            ax.text(begin, y - 0.15, str(label), fontsize=6, va="bottom")
    ax.invert_yaxis()
    ax.set_xlabel("frame")
    ax.set_ylabel("track (lineage order)")
    n_div = len(divided)
    ax.set_title(title or f"{len(tracks)} tracks, {n_div} divisions")
    ax.set_yticks([])
    fig.tight_layout()
    if path is not None:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
    return fig
