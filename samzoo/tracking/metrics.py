"""Tracking metrics through ``traccuracy``: CTC TRA, DET, LNK and division F1 (and CTC SEG).

Nothing is re-implemented here: results and ground truth are handed to traccuracy as
``TrackingGraph`` objects (graph + segmentation), matched with its ``CTCMatcher`` (a result
object matches a reference object when it covers more than half of it) and scored with its
``CTCMetrics`` (AOGM-based TRA, DET, LNK with the CTC weights) and ``DivisionMetrics``.

Division metrics need a one-to-one matching. The CTC matching is one-to-one unless one result
object covers several reference objects (a merge); then divisions are scored on traccuracy's
one-to-one IoU matching (IoU > 0.5, Hungarian), and ``division_matcher`` says so.

With a division frame buffer, traccuracy 0.3 may credit one division to two shifted ones (an
early and a late one) and then fails with ``KeyError: ... FN_DIV is not present``; while
evaluating, its buffer correction is replaced by :func:`_correct_shifted_divisions`, which
credits every division at most once (as traccuracy 0.4 does).

traccuracy has no CTC SEG measure: :func:`evaluate_ctc_folders` adds it from
:mod:`samzoo.tracking.ctc_seg` when the ground truth has annotated ``SEG`` frames.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
from collections import Counter
from pathlib import Path

import networkx as nx
import numpy as np

from samzoo.errors import InputError
from samzoo.tracking.lineage import check_masks
from samzoo.tracking.quiet import quiet

METRIC_NAMES = ("TRA", "DET", "LNK", "div_F1")


def _tracking_graph(graph: nx.DiGraph, masks: np.ndarray, name: str):
    """A traccuracy TrackingGraph from a samzoo lineage graph and its masks."""
    from traccuracy import TrackingGraph

    keys = ("z", "y", "x")[-(masks.ndim - 1):]
    out = nx.DiGraph()
    for n, d in graph.nodes(data=True):
        out.add_node(n, t=int(d["t"]), segmentation_id=int(d["label"]),
                     **{k: float(c) for k, c in zip(keys, d["centroid"])})
    out.add_edges_from(graph.edges)
    return TrackingGraph(out, segmentation=np.asarray(masks), name=name, location_keys=keys)


def evaluate_tracking(pred: tuple[nx.DiGraph, np.ndarray], gt: tuple[nx.DiGraph, np.ndarray], *,
                      division_frame_buffer: int = 0) -> dict[str, float]:
    """Score a tracking result against ground truth.

    Parameters
    ----------
    pred, gt : (graph, masks)
        Lineage graphs and their label images ``(T, [Z,] Y, X)`` of the same shape (see
        :mod:`samzoo.tracking.lineage`; e.g. from :func:`samzoo.tracking.track` or
        :func:`samzoo.tracking.read_ctc`).
    division_frame_buffer : int
        Frames a division may be early or late and still count (0: exact, as CTC).

    Returns
    -------
    dict with ``TRA``, ``DET``, ``LNK``, ``div_F1``, ``div_precision``, ``div_recall``,
    ``gt_divisions``, ``pred_divisions``, the AOGM error counts (``fp_nodes``, ``fn_nodes``,
    ``ns_nodes``, ``fp_edges``, ``fn_edges``, ``ws_edges``) and ``division_matcher``.
    ``div_F1`` is NaN when neither side has a division, and 0 when only one side has any.
    """
    from traccuracy import run_metrics
    from traccuracy.matchers import CTCMatcher, IOUMatcher
    from traccuracy.metrics import CTCMetrics, DivisionMetrics

    # traccuracy takes whole arrays: a lazy movie (e.g. a frame-by-frame result) is read here
    pred_graph, pred_masks = pred[0], check_masks(np.asarray(pred[1]))
    gt_graph, gt_masks = gt[0], check_masks(np.asarray(gt[1]))
    if pred_masks.shape != gt_masks.shape:
        raise InputError(f"result masks {pred_masks.shape} and ground-truth masks {gt_masks.shape} differ in shape")
    if gt_graph.number_of_nodes() == 0:
        raise InputError("the ground truth has no objects; TRA is undefined")
    gt_tg = _tracking_graph(gt_graph, gt_masks, "gt")
    pred_tg = _tracking_graph(pred_graph, pred_masks, "pred")
    # traccuracy shows progress bars and logs per frame; keep the caller's output clean
    with quiet("traccuracy"), _single_credit_divisions():
        results, matched = run_metrics(gt_tg, pred_tg, CTCMatcher(), [CTCMetrics()])
        ctc = results[0]["results"]
        division_matcher = "CTCMatcher"
        if matched.matching_type == "one-to-one" or pred_graph.number_of_nodes() == 0:
            div_results = DivisionMetrics(max_frame_buffer=division_frame_buffer).compute(matched).results
        else:
            division_matcher = "IOUMatcher(0.5, one-to-one)"
            div, _ = run_metrics(_tracking_graph(gt_graph, gt_masks, "gt"),
                                 _tracking_graph(pred_graph, pred_masks, "pred"),
                                 IOUMatcher(iou_threshold=0.5, one_to_one=True),
                                 [DivisionMetrics(max_frame_buffer=division_frame_buffer)])
            div_results = div[0]["results"]
    div_scores = div_results[f"Frame Buffer {division_frame_buffer}"]
    n_div = div_scores["Total GT Divisions"] + div_scores["Total Predicted Divisions"]
    return {
        "TRA": float(ctc["TRA"]), "DET": float(ctc["DET"]), "LNK": float(ctc["LNK"]),
        # traccuracy leaves F1 undefined when one side has no divisions; then no division is right
        "div_F1": (float(np.nan_to_num(div_scores["Division F1"], nan=0.0)) if n_div else float("nan")),
        "div_precision": float(div_scores["Division Precision"]),
        "div_recall": float(div_scores["Division Recall"]),
        "gt_divisions": int(div_scores["Total GT Divisions"]),
        "pred_divisions": int(div_scores["Total Predicted Divisions"]),
        **{k: int(ctc[k]) for k in ("fp_nodes", "fn_nodes", "ns_nodes", "fp_edges", "fn_edges", "ws_edges")
           if k in ctc},
        "division_matcher": division_matcher,
    }


@contextlib.contextmanager
def _single_credit_divisions():
    """Use :func:`_correct_shifted_divisions` for traccuracy's frame-buffer correction meanwhile."""
    from traccuracy.track_errors import divisions

    original = divisions._correct_shifted_divisions
    divisions._correct_shifted_divisions = _correct_shifted_divisions
    try:
        yield
    finally:
        divisions._correct_shifted_divisions = original


def _correct_shifted_divisions(matched_data, n_frames: int = 1):
    """traccuracy 0.3's ``_correct_shifted_divisions`` with each division credited at most once.

    Workaround for a traccuracy 0.3 bug: it compares every false-positive with every
    false-negative division and, when one division pairs with two (e.g. a ground-truth division
    found both one frame early and one frame late, on two branches of a wrong lineage), removes
    the same error flag twice (``KeyError``). Same rule as there: a predicted division within
    ``n_frames`` of a ground-truth one is correct when its mother matches the true mother's
    lineage at that frame and its daughters the true daughters' lineages; here a division
    already paired is skipped. Returns a corrected copy, as the original does.
    """
    from traccuracy._tracking_graph import NodeFlag
    from traccuracy.track_errors.divisions import _get_pred_by_t, _get_succ_by_t

    matched = copy.deepcopy(matched_data)
    g_gt, g_pred, mapping = matched.gt_graph, matched.pred_graph, matched.mapping
    fp_divs, fn_divs = g_pred.get_nodes_with_flag(NodeFlag.FP_DIV), g_gt.get_nodes_with_flag(NodeFlag.FN_DIV)
    paired: set = set()
    for fp_node, fn_node in itertools.product(fp_divs, fn_divs):
        if ("pred", fp_node) in paired or ("gt", fn_node) in paired:
            continue
        t_fp, t_fn = g_pred.graph.nodes[fp_node][g_pred.frame_key], g_gt.graph.nodes[fn_node][g_gt.frame_key]
        if abs(t_fp - t_fn) > n_frames or t_fp == t_fn:
            continue
        if t_fp < t_fn:  # predicted early: compare at the true division, on the predicted lineages
            if (_get_pred_by_t(g_gt, fn_node, t_fn - t_fp), fp_node) not in mapping:
                continue
            pred_side = [_get_succ_by_t(g_pred, n, t_fn - t_fp) for n in g_pred.graph.successors(fp_node)]
            gt_side = [matched.get_gt_pred_match(n) for n in g_gt.graph.successors(fn_node)]
        else:  # predicted late: compare at the predicted division, on the true lineages
            if (fn_node, _get_pred_by_t(g_pred, fp_node, t_fp - t_fn)) not in mapping:
                continue
            gt_side = [_get_succ_by_t(g_gt, n, t_fp - t_fn) for n in g_gt.graph.successors(fn_node)]
            pred_side = [matched.get_pred_gt_match(n) for n in g_pred.graph.successors(fp_node)]
        if Counter(pred_side) != Counter(gt_side):
            continue
        paired.update([("pred", fp_node), ("gt", fn_node)])
        g_pred.remove_flag_from_node(fp_node, NodeFlag.FP_DIV)
        g_gt.remove_flag_from_node(fn_node, NodeFlag.FN_DIV)
        g_gt.set_flag_on_node(fn_node, NodeFlag.TP_DIV)
        g_pred.set_flag_on_node(fp_node, NodeFlag.TP_DIV)
    return matched


def evaluate_ctc_folders(result_dir: str | Path, gt_dir: str | Path, **kwargs) -> dict[str, float]:
    """Score a CTC result folder against CTC ground truth: tracking, and segmentation where annotated.

    Parameters
    ----------
    result_dir : path
        ``mask000.tif``... + ``res_track.txt``.
    gt_dir : path
        A CTC ground-truth folder such as ``01_GT`` (``TRA/man_track*.tif`` + ``TRA/man_track.txt``,
        and optionally ``SEG/man_seg*.tif``), or a ``TRA``-like folder alone.
    **kwargs
        Passed to :func:`evaluate_tracking`.

    Returns
    -------
    dict: :func:`evaluate_tracking`'s scores (TRA, DET, LNK, division F1, ...) computed on ``TRA``,
    plus ``SEG``, ``seg_objects`` and ``seg_frames`` (:func:`samzoo.tracking.ctc_seg.seg_measure`)
    when ``gt_dir`` has a ``SEG`` folder.
    """
    from samzoo.tracking.ctc_seg import read_seg_folder, seg_measure
    from samzoo.tracking.formats import mask_files, read_ctc

    gt_dir = Path(gt_dir)
    layout = (gt_dir / "TRA").is_dir()  # 01_GT: TRA/ and SEG/
    tra_dir = gt_dir / "TRA" if layout else gt_dir
    pred_graph, pred_masks, _ = read_ctc(result_dir)
    gt_graph, gt_masks, _ = read_ctc(tra_dir)
    first, gt_first = mask_files(result_dir)[0][0], mask_files(tra_dir)[0][0]
    if first != gt_first:
        raise InputError(f"the result's masks begin at frame {first}, the ground truth's at frame {gt_first}")
    scores = evaluate_tracking((pred_graph, pred_masks), (gt_graph, gt_masks), **kwargs)
    if layout and (gt_dir / "SEG").is_dir():
        scores.update(seg_measure(pred_masks, read_seg_folder(gt_dir / "SEG"), first_frame=first))
    return scores
