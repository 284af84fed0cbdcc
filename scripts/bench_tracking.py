"""Tracking benchmark: CTC TRA/DET/LNK and division F1 on simulated movies, and time per frame.

For several seeds, a movie of moving, entering, leaving and dividing nuclei is simulated
(:func:`samzoo.tracking.simulate_movie`) and tracked by each samzoo mode:

- ``auto / gt-like``: the ground-truth masks with labels shuffled in every frame, linked by the
  overlap linker (linking alone);
- ``auto / classical``: the classical baseline segmentation, then the overlap linker;
- ``auto / ais``: samzoo's AIS segmentation with the objects at the image border that continue
  a track (``border_objects=True``, :func:`samzoo.tracking.temporal.add_border_objects`), then
  the overlap linker, as :func:`samzoo.tracking.track` does when it segments the movie itself;
  once more without the border objects (``no border objects``), and once with neither them nor
  the repair of merged objects (``no repairs``; :func:`samzoo.tracking.temporal.split_by_neighbours`
  before linking, :func:`samzoo.tracking.merged.split_late_divisions` after), to show their effect
  (these two rows reuse the embeddings cached by the first: their time is not given).

The overlap rows run :func:`samzoo.tracking.track` on the masks (``linker="overlap"``), with the
repair of merged objects on for the segmentations (``split_merged=True``, as when ``track``
segments the movie itself) and off for the gt-like masks (given masks are taken as they are).
- ``propagate``: the ground-truth objects of frame 0 followed by SAM prompts (newcomers are not
  followed, so they count as misses);
- ``(finetuned)``: the AIS and propagation rows once more with the model finetuned on simulated
  movies of other seeds (:func:`samzoo.training.finetune`, frozen encoder, ``--finetune-steps``
  on every third frame of ``--finetune-movies`` movies of seeds 1000, 1001, ...; never the
  benchmark's seeds), what a user does with a few annotated frames of their own data. The
  finetuning time is printed; 0 steps leave these rows out; ``--finetuned-model`` takes a model
  finetuned so in an earlier run instead.
- ``trackastra`` on the gt-like and classical segmentations, where a trackastra model can be had
  (``SAMZOO_MODEL_MIRROR`` or samzoo's cache; ``--trackastra-model`` for a local folder).

Time per frame is divided by the time of the image encoder on one frame, measured in the same
run with the same model (samzoo's default model if it is installed, else an untrained
``samzoo_tiny`` of the same architecture: speed does not depend on the weights, quality does,
so AIS and propagation scores of an untrained model are marked and mean nothing).

Real sequences (``--ctc``, or ``--ctc-only`` without the simulator): every Cell Tracking
Challenge sequence under ``--ctc-root`` (default ``$SAMZOO_SHARED/data/ctc``, i.e.
``../shared/data/ctc``: folders ``<dataset>/01`` with ground truth ``<dataset>/01_GT``) is read
as a movie from its frame folder, tracked as ``samzoo track`` does (``samzoo.tracking.track``
with the default model's AIS segmentation, then the overlap linker), written as a CTC result
and scored against ``01_GT`` (``samzoo.tracking.evaluate_ctc_folders``: TRA, DET, LNK and
division F1 on ``TRA``, CTC SEG on the annotated ``SEG`` frames), with the seconds per frame of
the tracking (segmentation included). With a trackastra model (``--trackastra-model``, e.g. the
one ``scripts/train_trackastra_small.py`` trains on Fluo-N2DH-SIM+ 01, so that GOWT1 01 is held
out), the same AIS masks are linked by trackastra too, as ``samzoo track --linker trackastra``
does. Then the ground-truth TRA masks, labels shuffled in every frame, are linked by each linker
(``GT masks`` rows: the linker alone, DET 1; ``--ctc-no-ais`` runs only these, in seconds).

Usage::

    OMP_NUM_THREADS=1 python scripts/bench_tracking.py [--seeds 5] [--frames 30] [--size 256] [--ctc]
    OMP_NUM_THREADS=1 python scripts/bench_tracking.py --ctc-only [--trackastra-model runs/trackastra_small]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from samzoo.errors import SamzooError
from samzoo.segmentation.embeddings import compute_embeddings
from samzoo.tracking import (evaluate_tracking, graph_from_tracks, link_overlap, link_trackastra, propagate,
                             simulate_movie)
from samzoo.segmentation.autoscale import resolve_scale
from samzoo.tracking.simulate import shuffle_labels
from samzoo.tracking.gamma import most_consistent
from samzoo.tracking.track import segment_movie, track

METRICS = ("TRA", "DET", "LNK", "div_F1")


def get_model():
    """samzoo's default model, or an untrained one of the same architecture (for timing)."""
    from samzoo.models.load import load_model
    from samzoo.models.model import ModelConfig, SamzooModel

    try:
        return load_model(), "default"
    except SamzooError as err:
        print(f"# default model unavailable ({type(err).__name__}); timing with an untrained samzoo_tiny",
              file=sys.stderr)
        import torch

        torch.manual_seed(0)  # the same untrained weights every run
        model = SamzooModel(ModelConfig("samzoo_tiny", 256, {}, name="untrained")).eval()
        model.weights_hash = "sha256:untrained-bench"
        return model, "untrained"


def encoder_seconds(model, images: np.ndarray) -> float:
    """Median time to embed one frame (median: the machine may be shared)."""
    compute_embeddings(model, images[0], cache=False)  # warm-up
    times = []
    for frame in images[1:8]:
        start = time.perf_counter()
        compute_embeddings(model, frame, cache=False)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def propagation_step_seconds(model, images: np.ndarray, masks: np.ndarray) -> tuple[float, int]:
    """Time of one propagation step with every object of a frame active (embed + prompt all).

    With an untrained model objects vanish after a frame or two, so the propagation row's own
    time per frame would understate the cost; this measures a full step directly.
    """
    from samzoo.segmentation.predictor import predict
    from samzoo.tracking.propagate import _mask_prompt

    labels = [l for l in np.unique(masks[0])[1:] if (masks[0] == l).sum() >= 10]
    prompts = {int(l): _mask_prompt(masks[0] == l) for l in labels}
    start = time.perf_counter()
    for t in (1, 2, 3):
        predict(model, compute_embeddings(model, images[t], cache=False), prompts)
    return (time.perf_counter() - start) / 3, len(prompts)


def finetuned_on_simulated(model, steps: int, n_movies: int, n_frames: int, size: int):
    """A copy of ``model`` finetuned (frozen encoder) on simulated movies of seeds 1000, 1001, ..."""
    import copy

    from samzoo.training import finetune

    images, masks = [], []
    for seed in range(1000, 1000 + n_movies):
        movie = simulate_movie(n_frames=n_frames, shape=(size, size), n_cells=12, seed=seed)
        images += list(movie.images[::3])
        masks += list(movie.masks[::3])
    return finetune(copy.deepcopy(model), images, masks, steps=steps, embedding_pool=100, checkpoint_every=100)


def trackastra_source(explicit: str | None) -> str | None:
    """A trackastra model to use without a download from the internet, or None."""
    from samzoo.tracking.track import _trackastra_at_hand

    if explicit:
        return explicit
    return "general_2d" if _trackastra_at_hand("general_2d") else None


def ctc_sequences(root: Path) -> list[Path]:
    """The sequence folders (``<dataset>/01``, ``02``...) under ``root`` that have ``_GT`` ground truth."""
    return sorted(p for p in root.glob("*/[0-9][0-9]") if p.is_dir() and p.with_name(p.name + "_GT").is_dir())


def ctc_section(model, root: Path, trackastra: str | None = None, ais: bool = True, gammas=("auto",),
                views=(None,)) -> int:
    """Track every CTC sequence under ``root``; print one row per sequence and way of tracking.

    ``AIS`` rows segment with ``model`` as ``samzoo track`` does (objects at the border kept) and
    link the same masks with each linker: ``overlap`` with the repairs of merged objects (what
    ``samzoo track`` does), ``trackastra`` as ``samzoo track --linker trackastra`` does (no
    repairs); their seconds include the segmentation. ``GT masks`` rows link the ground-truth TRA
    masks with labels shuffled in every frame: the linker alone (DET is 1 by construction).
    ``gammas``, ``views``: the AIS rows once per intensity gamma (``samzoo track --gamma``) and
    number of views (``samzoo track --views``; None: the model's default, as ``samzoo track``).
    """
    import tifffile

    from samzoo.io.normalize import compress_intensities

    from samzoo.io.sequence import read_movie
    from samzoo.segmentation.views import resolve_views
    from samzoo.tracking import evaluate_ctc_folders, to_ctc

    sequences = ctc_sequences(root)
    if not sequences:
        print(f"# no CTC sequences with ground truth under {root}", file=sys.stderr)
        return 1
    header = (f"{'sequence':24s} {'masks / linker':40s} {'frames':>6s} {'TRA':>6s} {'SEG':>6s} {'DET':>6s} "
              f"{'LNK':>6s} {'div_F1':>6s} {'tracks':>6s} {'div':>4s} {'GT tracks':>9s} {'GT div':>6s} "
              f"{'s/frame':>8s}")
    print(f"# CTC sequences under {root}: AIS ({getattr(model, 'name', model)}) and ground-truth masks, "
          f"overlap linker and trackastra ({trackastra or 'not run'}); "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}")
    print(header)
    print("-" * len(header))
    for folder in sequences:
        movie = read_movie(folder)
        images = np.asarray(movie.values)
        first = int(movie.t.values[0])
        gt_dir = folder.with_name(folder.name + "_GT")
        gt_tracks = np.loadtxt(gt_dir / "TRA" / "man_track.txt", dtype=int, ndmin=2)
        name = f"{folder.parent.name} {folder.name}"

        def row(label: str, result, seconds: float) -> None:
            with tempfile.TemporaryDirectory() as tmp:
                to_ctc(result.graph, result.masks, tmp, first_frame=first)
                scores = evaluate_ctc_folders(tmp, gt_dir)
            n_div = sum(1 for n in result.graph if result.graph.out_degree(n) >= 2)
            print(f"{name:24s} {label:40s} {len(images):6d} {scores['TRA']:6.4f} {scores.get('SEG', math.nan):6.4f} "
                  f"{scores['DET']:6.4f} {scores['LNK']:6.4f} {scores['div_F1']:6.4f} {len(result.tracks):6d} "
                  f"{n_div:4d} {len(gt_tracks):9d} {scores['gt_divisions']:6d} {seconds / len(images):8.3f}",
                  flush=True)

        def linked(masks, linker: str, **options):
            start = time.perf_counter()
            if linker == "trackastra":
                result = track(images, masks=masks, linker="trackastra", trackastra_model=trackastra)
            else:
                result = track(images, masks=masks, linker="overlap", **options)
            return result, time.perf_counter() - start

        for gamma, n_views in [(g, v) for g in gammas for v in views] if ais else ():
            n_views = resolve_views(model, n_views)

            def segment_at(value: float) -> np.ndarray:
                # the model's default scale, estimated once on the middle frame, as samzoo track does
                scale = resolve_scale(model, compress_intensities(images[len(images) // 2], value), None)
                print(f"{name}: segmenting at scale {scale:.3g}, gamma {value:g}, {n_views} view(s)", flush=True)
                # as samzoo track segments: AIS with the objects at the border
                return segment_movie(images, model=model, segmenter="ais", border_objects=True, scale=scale,
                                     gamma=value, views=n_views)

            start = time.perf_counter()
            if gamma == "auto":  # as samzoo track --gamma auto (the default) chooses
                masks, chosen, consistency = most_consistent(segment_at)
                print(f"{name}: frame-to-frame consistency " + ", ".join(f"gamma {g:g}: {c:.4f}"
                                                                         for g, c in consistency.items()))
                label = f", gamma auto ({chosen:g})"
            else:
                masks, label = segment_at(gamma), "" if gamma == 1 else f", gamma {gamma:g}"
            seg_seconds = time.perf_counter() - start
            result, seconds = linked(masks, "overlap", split_merged=True)
            suffix = label + f", {n_views} view{'s' * (n_views > 1)}"
            row("AIS / overlap" + suffix, result, seg_seconds + seconds)
            if trackastra:
                result, seconds = linked(masks, "trackastra")
                row(f"AIS / trackastra ({Path(trackastra).name})" + suffix, result, seg_seconds + seconds)
        gt_masks = shuffle_labels(np.stack([tifffile.imread(p) for p in sorted((gt_dir / "TRA").glob("man_track*.tif"))]),
                                  seed=0)
        result, seconds = linked(gt_masks, "overlap", split_merged=False)
        row("GT masks / overlap", result, seconds)
        if trackastra:
            result, seconds = linked(gt_masks, "trackastra")
            row(f"GT masks / trackastra ({Path(trackastra).name})", result, seconds)
    return 0


def default_ctc_root() -> Path:
    shared = os.environ.get("SAMZOO_SHARED", Path(__file__).resolve().parents[1].parent / "shared")
    return Path(shared) / "data" / "ctc"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--trackastra-model", help="trackastra model folder or name")
    parser.add_argument("--skip-model-modes", action="store_true", help="skip AIS and propagation (no model)")
    parser.add_argument("--finetune-steps", type=int, default=2400, help="0: no finetuned rows")
    parser.add_argument("--finetune-movies", type=int, default=12)
    parser.add_argument("--finetuned-model", help="a model finetuned earlier the same way (.safetensors): used "
                                                  "for the finetuned rows instead of finetuning again")
    parser.add_argument("--ctc", action="store_true", help="also track the real CTC sequences under --ctc-root")
    parser.add_argument("--ctc-only", action="store_true", help="only the real CTC sequences (no simulator)")
    parser.add_argument("--ctc-root", type=Path, default=default_ctc_root(),
                        help="folder of CTC datasets (<dataset>/01 + <dataset>/01_GT); default "
                             "$SAMZOO_SHARED/data/ctc")
    parser.add_argument("--gamma", type=lambda text: "auto" if text == "auto" else float(text), nargs="+",
                        default=["auto"], help="CTC sequences: the AIS rows once per intensity gamma (samzoo track "
                                               "--gamma), e.g. auto 1 0.5; default: auto, as samzoo track")
    parser.add_argument("--views", type=int, nargs="+", default=[None],
                        help="CTC sequences: the AIS rows once per number of views (samzoo track --views), e.g. 1 2 "
                             "(default: the model's default)")
    parser.add_argument("--ctc-no-ais", action="store_true",
                        help="CTC sequences: only the ground-truth-mask rows (the linkers alone, no segmentation)")
    args = parser.parse_args(argv)
    if args.ctc_only:
        model, model_kind = (None, "none") if args.ctc_no_ais else get_model()
        return ctc_section(model, args.ctc_root, trackastra_source(args.trackastra_model), ais=not args.ctc_no_ais,
                           gammas=args.gamma, views=args.views)
    model, model_kind = (None, "none") if args.skip_model_modes else get_model()
    models = {model_kind: model} if model is not None else {}
    if model is not None and args.finetuned_model:
        from samzoo.models.load import load_model

        models["finetuned"] = load_model(args.finetuned_model)
        print(f"# finetuned rows: {args.finetuned_model} (not finetuned in this run)")
    elif model is not None and args.finetune_steps > 0:
        start = time.perf_counter()
        models["finetuned"] = finetuned_on_simulated(model, args.finetune_steps, args.finetune_movies,
                                                     args.frames, args.size)
        print(f"# finetuned on {args.finetune_movies} simulated movies (seeds 1000-{999 + args.finetune_movies}, "
              f"every third frame), {args.finetune_steps} steps: {time.perf_counter() - start:.0f} s")
    trackastra = trackastra_source(args.trackastra_model)
    rows: dict[str, list[dict]] = {}
    enc_times, step_times, step_objects = [], [], []

    def record(name: str, pred, gt, seconds: float, n_frames: int) -> None:
        scores = evaluate_tracking(pred, gt)
        rows.setdefault(name, []).append({**{k: scores[k] for k in METRICS}, "s_per_frame": seconds / n_frames,
                                          "divisions": scores["gt_divisions"]})

    for seed in range(args.seeds):
        movie = simulate_movie(n_frames=args.frames, shape=(args.size, args.size), n_cells=12, seed=seed)
        gt = (graph_from_tracks(movie.masks, movie.tracks), movie.masks)
        T = len(movie.images)
        if model is not None:
            enc_times.append(encoder_seconds(model, movie.images))
            seconds, n_objects = propagation_step_seconds(model, movie.images, movie.masks)
            step_times.append(seconds)
            step_objects.append(n_objects)
        gt_like = shuffle_labels(movie.masks, seed)
        start = time.perf_counter()
        result = track(masks=gt_like, linker="overlap")
        record("auto / gt-like masks / overlap", (result.graph, result.masks), gt, time.perf_counter() - start, T)
        start = time.perf_counter()
        classical = segment_movie(movie.images, segmenter="classical")
        result = track(masks=classical, linker="overlap", split_merged=True)  # as if track segmented
        record("auto / classical / overlap", (result.graph, result.masks), gt, time.perf_counter() - start, T)
        for kind, segmenter in models.items():
            for border in (True, False):
                start = time.perf_counter()
                ais = segment_movie(movie.images, model=segmenter, segmenter="ais", border_objects=border)
                seconds = time.perf_counter() - start
                start = time.perf_counter()
                result = track(masks=ais, linker="overlap", split_merged=True)
                # the second segmentation reuses the first one's cached embeddings: not timed
                record(f"auto / ais ({kind}) / overlap" + ("" if border else ", no border objects"),
                       (result.graph, result.masks), gt,
                       seconds + time.perf_counter() - start if border else math.nan, T)
            if kind == model_kind:  # the effect of the repairs, once (ais: without border objects)
                graph = link_overlap(ais)
                record(f"auto / ais ({kind}) / overlap, no repairs", (graph, ais), gt, math.nan, T)
            start = time.perf_counter()
            graph, labels = propagate(segmenter, movie.images, movie.masks[0])
            record(f"propagate ({kind})", (graph, labels), gt, time.perf_counter() - start, T)
        if trackastra:
            for name, masks in (("gt-like masks", gt_like), ("classical", classical)):
                start = time.perf_counter()
                try:
                    graph = link_trackastra(movie.images, masks, model=trackastra)
                except SamzooError as err:
                    print(f"# trackastra could not run: {err}", file=sys.stderr)
                    trackastra = None
                    break
                record(f"auto / {name} / trackastra", (graph, masks), gt, time.perf_counter() - start, T)

    encoder = float(np.mean(enc_times)) if enc_times else math.nan
    print(f"# {args.seeds} simulated movies, {args.frames} frames of {args.size}x{args.size}, "
          f"{sum(r['divisions'] for r in next(iter(rows.values())))} true divisions in all; "
          f"encoder ({model_kind} samzoo_tiny): {encoder:.3f} s/frame; "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}")
    header = (f"{'mode':45s} {'TRA':>6s} {'DET':>6s} {'LNK':>6s} {'div_F1':>6s} {'min TRA':>7s} "
              f"{'s/frame':>8s} {'x enc':>6s}")
    print(header)
    print("-" * len(header))
    for name, results in rows.items():
        values = {k: np.array([r[k] for r in results], dtype=float) for k in (*METRICS, "s_per_frame")}
        mean = {k: float(np.nanmean(v)) if not np.isnan(v).all() else math.nan for k, v in values.items()}
        worst = min(r["TRA"] for r in results)
        print(f"{name:45s} {mean['TRA']:6.4f} {mean['DET']:6.4f} {mean['LNK']:6.4f} {mean['div_F1']:6.4f} "
              f"{worst:7.4f} {mean['s_per_frame']:8.4f} {mean['s_per_frame'] / encoder:6.2f}")
    if step_times:
        step = float(np.mean(step_times))
        print(f"{'propagate, one full step (' + format(np.mean(step_objects), '.0f') + ' objects)':45s} "
              f"{'':6s} {'':6s} {'':6s} {'':6s} {'':7s} {step:8.4f} {step / encoder:6.2f}")
    if not trackastra:
        print("auto / * / trackastra                        not run: no trackastra model without internet "
              "(set SAMZOO_MODEL_MIRROR or --trackastra-model)")
    if args.ctc:
        if model is None:
            model, model_kind = get_model()
        return ctc_section(model, args.ctc_root, trackastra, ais=not args.ctc_no_ais, gammas=args.gamma,
                           views=args.views)
    return 0


if __name__ == "__main__":
    sys.exit(main())
