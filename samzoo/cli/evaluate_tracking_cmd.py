"""``samzoo evaluate-tracking RES_DIR GT_DIR``: CTC TRA, DET, LNK, division F1 (via traccuracy) and CTC SEG."""

from __future__ import annotations

import argparse
import json
import math


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate-tracking", help="tracking accuracy (TRA, DET, LNK, division F1) and CTC SEG of a CTC result folder",
        description="Compare a CTC result folder (mask000.tif... + res_track.txt) with CTC ground truth and print "
                    "TRA, DET, LNK and division F1, computed by traccuracy with the CTC matching and weights. GT_DIR "
                    "is a CTC ground-truth folder such as 01_GT (TRA/man_track000.tif... + TRA/man_track.txt, and "
                    "SEG/man_seg000.tif... for the annotated frames: then the CTC SEG measure too, the mean Jaccard "
                    "index of every annotated object with the result object covering more than half of it, 0 "
                    "without one), or a TRA-like folder alone (man_track000.tif... + man_track.txt).")
    parser.add_argument("res_dir", help="result folder")
    parser.add_argument("gt_dir", help="ground-truth folder: 01_GT (with TRA/ and SEG/) or its TRA/")
    parser.add_argument("--frame-buffer", type=int, default=0,
                        help="frames a division may be early or late and still count (default 0)")
    parser.add_argument("--json", action="store_true", help="print all numbers as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from samzoo.tracking.metrics import evaluate_ctc_folders

    scores = evaluate_ctc_folders(args.res_dir, args.gt_dir, division_frame_buffer=args.frame_buffer)
    if args.json:
        print(json.dumps({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in scores.items()},
                         indent=1))
        return 0
    for name in ("TRA", "DET", "LNK"):
        print(f"{name:7s} {scores[name]:.4f}")
    if "SEG" in scores:
        seg = "n/a (no annotated objects)" if math.isnan(scores["SEG"]) else f"{scores['SEG']:.4f}"
        print(f"SEG     {seg}  ({scores['seg_objects']} objects in {scores['seg_frames']} annotated frames)")
    div = scores["div_F1"]
    print(f"div_F1  {'n/a (no divisions)' if math.isnan(div) else f'{div:.4f}'}  "
          f"({scores['pred_divisions']} predicted, {scores['gt_divisions']} true divisions)")
    return 0
