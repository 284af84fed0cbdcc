"""Speed and quality of samzoo's automatic segmentation (AIS, AMG, APG) against micro-sam 1.8.14.

Everything in one run, on held-out real planes (the same ones as ``scripts/bench_quality.py``),
with torch threads fixed to ``--threads`` for every library. One table is printed:

A. samzoo modes with ``--model`` (default: samzoo's own model; ``runs/samzoo_tiny/best.safetensors``
   or any samzoo .safetensors also work): encoder time; AIS, AMG (with the shortcuts, and the exact
   path without them; with ``--amg-ablation`` also with each shortcut switched off in turn) and APG
   total time (encoder + mode), each as a multiple of the encoder time; mSA against the ground
   truth; how many prompts each AMG mode decoded and how AMG's time splits. Each plane is cut into crops of the model's input size, so that
   micro-sam sees exactly the same pixels (micro-sam resizes any other size to its input size).
   micro-sam's AMG runs on the same crops, the same grid points and thresholds, with the same
   prompt encoder + mask decoder weights and the embeddings computed by samzoo (micro-sam cannot
   build the samzoo_tiny encoder, so its encoder time is samzoo's).
B. Head to head with one weight file both libraries load: a ``vit_t`` SAM (MobileSAM TinyViT,
   1024 input), random init with a fixed seed unless ``--vit-t`` gives a trained one; micro-sam
   loads it with ``get_sam_model(model_type="vit_t", checkpoint_path=...)`` and computes its own
   embeddings. Crops are at most 1024 pixels per side (samzoo: one tile; micro-sam: no resize).
   With random weights mSA is meaningless; the agreement column (mSA of samzoo's labels with
   micro-sam's as reference) then shows whether both do the same thing.
C. An ``--big`` x ``--big`` mosaic of held-out planes segmented by AIS (tiled) in a child process:
   wall time and peak resident memory (``ru_maxrss``).

micro-sam is not a dependency of samzoo: it lives in its own virtual environment
(``--msam-python``, default ``$SAMZOO_MSAM_PYTHON`` or ``/work/msam-venv/bin/python``), and this
file is also its worker (``--msam-worker job.json``, which imports no samzoo).

    OMP_NUM_THREADS=1 python scripts/bench_automatic.py [--model runs/samzoo_tiny/best.safetensors]
        [--datasets hela,bacteria] [--planes 1] [--crops 4] [--points-per-side 16] [--vit-t-points 16]
        [--big 8192] [--threads 1] [--pred-iou 0.7] [--stability 0.85] [--amg-ablation]
    # the full-size run: every held-out plane of every data set, all crops, denser grids
    python scripts/bench_automatic.py --datasets hela,bacteria,cho,nuclei3d --planes 99 --crops 99 \\
        --points-per-side 32 --vit-t-points 32
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MSAM_PYTHON = os.environ.get("SAMZOO_MSAM_PYTHON", "/work/msam-venv/bin/python")
SETTINGS = dict(pred_iou_threshold=0.7, stability_threshold=0.85, nms_iou=0.7, min_size=25, batch_size=64)
# --amg-ablation: samzoo's AMG with one shortcut switched off at a time (see samzoo.segmentation.automatic)
ABLATION = {"amg whole tile": dict(window=None), "amg no give-up": dict(max_rejected=None),
            "amg no early give-up": dict(give_up_margin=None), "amg float32": dict(bfloat16=False),
            "amg no skip-cov": dict(skip_covered=False), "amg all points": dict(foreground_threshold=None)}


# ---------------------------------------------------------------------------------------------
# micro-sam worker: runs in micro-sam's venv, imports no samzoo
# ---------------------------------------------------------------------------------------------

def _decoder_only_predictor(job: dict):
    """A micro-sam predictor whose prompt encoder + mask decoder come from a state dict and
    whose image embeddings are always given (the encoder is a placeholder that refuses to run)."""
    import torch
    from micro_sam import util
    from segment_anything.modeling import MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    size = job["input_size"]

    class PrecomputedOnly(torch.nn.Module):
        img_size = size

        def forward(self, x):
            raise RuntimeError("embeddings are computed by samzoo and passed in")

    sam = Sam(PrecomputedOnly(),
              PromptEncoder(embed_dim=256, image_embedding_size=(size // 16, size // 16),
                            input_image_size=(size, size), mask_in_chans=16),
              MaskDecoder(num_multimask_outputs=3,
                          transformer=TwoWayTransformer(depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8),
                          transformer_dim=256, iou_head_depth=3, iou_head_hidden_dim=256))
    missing, unexpected = sam.load_state_dict(torch.load(job["checkpoint"], weights_only=True), strict=False)
    if unexpected or [k for k in missing if not k.startswith("image_encoder.")]:
        raise RuntimeError(f"decoder weights do not fit: missing {missing}, unexpected {unexpected}")
    return util.SamPredictor(sam.eval())


def msam_worker(job_file: str) -> None:
    job = json.loads(Path(job_file).read_text())
    import torch

    torch.set_num_threads(job["threads"])
    import micro_sam
    from micro_sam import util
    from micro_sam.instance_segmentation import AutomaticMaskGenerator

    if job["mode"] == "checkpoint":
        predictor = util.get_sam_model(model_type=job["model_type"], checkpoint_path=job["checkpoint"], device="cpu")
    else:
        predictor = _decoder_only_predictor(job)
    s = job["settings"]
    # warm-up (first calls allocate): not timed
    if job["mode"] == "checkpoint":
        util.precompute_image_embeddings(predictor, np.zeros((64, 64, 3), np.uint8), ndim=2, verbose=False)
    results = []
    for item in job["images"]:
        image = np.load(item["image"])
        points = np.load(item["points"])  # (N, 2) = (y, x) pixels, samzoo's grid
        h, w = image.shape[:2]
        start = time.perf_counter()
        if "features" in item:
            emb = {"features": torch.from_numpy(np.load(item["features"])), "input_size": (h, w),
                   "original_size": (h, w)}
        else:
            # ndim=2: without it micro-sam takes an (H, W, 3) array for a volume of H slices
            emb = util.precompute_image_embeddings(predictor, image, ndim=2, verbose=False)
        encoded = time.perf_counter()
        amg = AutomaticMaskGenerator(predictor, points_per_side=None, point_grids=[points[:, ::-1] / [w, h]],
                                     points_per_batch=s["batch_size"])
        amg.initialize(image, image_embeddings=emb)
        labels = amg.generate(pred_iou_thresh=s["pred_iou_threshold"], stability_score_thresh=s["stability_threshold"],
                              box_nms_thresh=s["nms_iou"], min_mask_region_area=s["min_size"])
        done = time.perf_counter()
        np.save(item["out"], np.asarray(labels, dtype=np.int32))
        if "features_out" in item:
            features = emb["features"]
            np.save(item["features_out"], features.numpy() if torch.is_tensor(features) else np.asarray(features))
        results.append({"encoder_s": encoded - start, "amg_s": done - encoded, "n_points": len(points)})
    print(json.dumps({"micro_sam": micro_sam.__version__, "torch": torch.__version__,
                      "threads": torch.get_num_threads(), "results": results}))


# ---------------------------------------------------------------------------------------------
# samzoo side
# ---------------------------------------------------------------------------------------------

def _uint8_rgb(image: np.ndarray) -> np.ndarray:
    """samzoo's normalisation as a uint8 RGB array: what both libraries are given."""
    from samzoo.io.normalize import to_model_input

    return np.ascontiguousarray(np.round(to_model_input(image)).astype(np.uint8).transpose(1, 2, 0))


def _crops(datasets: list[str], planes: int, size: int, n_crops: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(name, uint8 RGB crop, labels)``: up to ``n_crops`` non-overlapping ``size`` crops per plane
    (the plane itself where it is smaller), each normalised on its own."""
    sys.path.insert(0, str(HERE))
    from bench_quality import held_out_planes

    out = []
    for name in datasets:
        for image, labels in held_out_planes(name)[:planes]:
            h, w = image.shape
            ch, cw = min(size, h), min(size, w)
            corners = [(y, x) for y in range(0, h - ch + 1, ch) for x in range(0, w - cw + 1, cw)
                       if labels[y:y + ch, x:x + cw].max() > 0]  # crops with annotated objects
            # spread the chosen crops over the plane
            picks = np.linspace(0, len(corners) - 1, min(n_crops, len(corners))).round().astype(int)
            for i in picks:
                y, x = corners[i]
                out.append((name, _uint8_rgb(image[y:y + ch, x:x + cw]), labels[y:y + ch, x:x + cw]))
    return out


def _timed(fn, *args, repeat: int = 1, probe: dict | None = None, **kwargs):
    """``fn(*args, **kwargs)`` run ``repeat`` times: the first result and the shortest time.

    The shortest of a few runs, as ``timeit`` advises: on a shared CPU a single run's time moves
    by tens of percent with what else runs, and the ratios between modes with it. ``probe`` (a
    dict of numbers that ``fn`` adds to, e.g. time spent decoding) is reset before each run and
    left as it was after the fastest one.
    """
    best, kept = float("inf"), {}
    for i in range(repeat):
        if probe is not None:
            probe.clear()
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        elapsed = time.perf_counter() - start
        if elapsed < best:
            best, kept = elapsed, dict(probe or {})
        if i == 0:
            result = out
    if probe is not None:
        probe.clear()
        probe.update(kept)
    return result, best


def _run_msam(job: dict, python: str, tmp: Path) -> dict:
    job_file = tmp / f"job_{job['mode']}.json"
    job_file.write_text(json.dumps(job))
    env = {**os.environ, "OMP_NUM_THREADS": str(job["threads"]), "MKL_NUM_THREADS": str(job["threads"])}
    proc = subprocess.run([python, str(Path(__file__).resolve()), "--msam-worker", str(job_file)],
                          capture_output=True, text=True, env=env, cwd=tmp)
    if proc.returncode:
        raise RuntimeError(f"micro-sam worker failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _load_samzoo_model(spec: str | None, input_size: int | None):
    import torch

    from samzoo.models.load import load_model
    from samzoo.models.model import ModelConfig, SamzooModel

    try:
        return load_model(spec, input_size=input_size), ""
    except Exception as err:  # the default model is not shipped yet: an untrained one, said loudly
        if spec is not None:
            raise
        torch.manual_seed(0)
        model = SamzooModel(ModelConfig("samzoo_tiny", input_size or 256, {}, name="samzoo_tiny UNTRAINED")).eval()
        return model, f"default model unavailable ({type(err).__name__}); UNTRAINED samzoo_tiny (seed 0)"


def _vit_t_files(tmp: Path, given: str | None):
    """The vit_t weights both libraries load: samzoo .safetensors + micro-sam .pt (same tensors)."""
    import torch
    from mobile_sam import sam_model_registry

    from samzoo.models.load import load_model
    from samzoo.models.model import ModelConfig, SamzooModel

    if given:
        model = load_model(given)
    else:
        torch.manual_seed(0)
        model = SamzooModel(ModelConfig("vit_t", 1024, None, name="vit_t random seed 0")).eval()
        model = load_model(model.save(tmp / "vit_t_seed0.safetensors"))  # float16 round trip, as shipped
    state = {k: v.float().contiguous() for k, v in model.sam.state_dict().items()}
    # MobileSAM's TinyViT carries a classification head it never uses; micro-sam loads strictly
    reference = sam_model_registry["vit_t"]().state_dict()
    unused = {k: torch.zeros_like(v) for k, v in reference.items() if k not in state}
    assert all(k.startswith("image_encoder.head") for k in unused), sorted(unused)
    assert set(state) <= set(reference), sorted(set(state) - set(reference))
    checkpoint = tmp / "vit_t_for_micro_sam.pt"
    torch.save({**state, **unused}, checkpoint)
    return model, checkpoint


def _samzoo_modes(model, crops, args, tmp: Path, msam_python: str | None) -> tuple:
    """Section A."""
    import torch

    from samzoo.evaluation import evaluate_many
    from samzoo.segmentation import automatic, windows
    from samzoo.segmentation.ais import ais_maps, segment_ais
    from samzoo.segmentation.automatic import grid_points, segment_amg, segment_apg
    from samzoo.segmentation.embeddings import compute_embeddings

    ablation = ABLATION if args.amg_ablation else {}
    times = defaultdict(float)
    # prompts decoded by SAM's decoder per AMG mode (a prompt decoded again on a wider window
    # counts again), and the time spent decoding: counted by wrapping decode_points
    prompts = {k: 0 for k in ("amg", "amg_exact", *ablation)}  # over all repeats; divided at the end
    counting = {"mode": None}
    decoding: dict = {}  # seconds spent in decode_points during one run (the probe of _timed)

    def counted_decode(model, embeddings, points, **kwargs):
        if not counting["mode"]:
            return decode_points(model, embeddings, points, **kwargs)
        prompts[counting["mode"]] += len(points)
        outermost = not counting.get("inside")  # decode_points calls itself for wider windows
        counting["inside"] = True
        start = time.perf_counter()
        try:
            return decode_points(model, embeddings, points, **kwargs)
        finally:
            if outermost:
                counting["inside"] = False
                decoding["s"] = decoding.get("s", 0.0) + time.perf_counter() - start

    # AMG calls automatic.decode_points, which calls windows.decode_points for wider windows
    decode_points = automatic.decode_points
    automatic.decode_points = windows.decode_points = counted_decode
    pairs = {k: [] for k in ("ais", "amg", *ablation, "amg_exact", "apg", "msam")}
    agree = {k: [] for k in ("amg", "amg_exact")}
    job = {"mode": "decoder", "threads": args.threads, "input_size": model.input_size, "settings": SETTINGS,
           "images": []}
    amg_kw = dict(points_per_side=args.points_per_side, method="samzoo", **SETTINGS)  # samzoo's AMG for any model
    compute_embeddings(model, np.zeros((64, 64), np.uint8), cache=False)  # warm-up
    labels_by_mode = []
    r = args.repeat
    for i, (name, image, gt) in enumerate(crops):
        emb, t = _timed(compute_embeddings, model, image, cache=False, repeat=r)
        times["encoder"] += t
        results = {}
        has_ais = model.ais_decoder is not None
        if has_ais:
            results["ais"], t = _timed(segment_ais, model, image, embeddings=emb, repeat=r)
            times["ais"] += t
            _, t = _timed(ais_maps, model, emb, repeat=r)  # the AIS decoder alone: the rest is post-processing
            times["ais_decoder"] += t
        amg_modes = {"amg": {}, "amg_exact": dict(foreground_threshold=None, skip_covered=False, window=None),
                     **ablation}
        for m, kw in amg_modes.items():
            counting["mode"] = m
            results[m], t = _timed(segment_amg, model, image, embeddings=emb, repeat=r, probe=decoding,
                                   **{**amg_kw, **kw})
            times[m] += t
            times[f"{m}_decoder"] += decoding.get("s", 0.0)  # in the fastest run
        counting["mode"] = None
        if has_ais:
            results["apg"], t = _timed(segment_apg, model, image, embeddings=emb, nms_iou=SETTINGS["nms_iou"],
                                       min_size=SETTINGS["min_size"], repeat=r)
            times["apg"] += t
        for k, v in results.items():
            pairs[k].append((v, gt))
        labels_by_mode.append(results)
        if msam_python and len(emb.tiles) == 1 and emb.shape == (model.input_size,) * 2:
            stem = tmp / f"a{i}"
            np.save(f"{stem}_img.npy", image)
            np.save(f"{stem}_pts.npy", grid_points(emb, args.points_per_side))
            np.save(f"{stem}_feat.npy", emb.features[:1])
            job["images"].append({"image": f"{stem}_img.npy", "points": f"{stem}_pts.npy",
                                  "features": f"{stem}_feat.npy", "out": f"{stem}_msam.npy", "index": i})
    msam = None
    if job["images"]:
        checkpoint = tmp / "decoder_for_micro_sam.pt"
        torch.save({k: v.float().contiguous() for k, v in model.sam.state_dict().items()
                    if not k.startswith("image_encoder.")}, checkpoint)
        job["checkpoint"] = str(checkpoint)
        msam = _run_msam(job, msam_python, tmp)
        msam["amg_s"] = sum(r["amg_s"] for r in msam["results"])
        msam["n_crops"] = len(job["images"])
        for item in job["images"]:
            seg = np.load(item["out"])
            i = item["index"]
            pairs["msam"].append((seg, crops[i][2]))
            for k in agree:
                agree[k].append((labels_by_mode[i][k], seg))
    scores = {k: evaluate_many(v)[1]["msa"] for k, v in pairs.items() if v}
    agreement = {k: evaluate_many(v)[1]["msa"] for k, v in agree.items() if v}
    objects = {k: sum(len(np.unique(p[0])) - 1 for p in v) for k, v in pairs.items() if v}
    objects["ground truth"] = sum(len(np.unique(c[2])) - 1 for c in crops)
    automatic.decode_points = windows.decode_points = decode_points
    prompts = {k: v // r for k, v in prompts.items()}  # every repeat decodes the same prompts
    return times, scores, agreement, msam, objects, prompts


def _head_to_head(vit_model, checkpoint: Path, crops, args, tmp: Path, msam_python: str) -> dict:
    """Section B."""
    from samzoo.evaluation import evaluate_many
    from samzoo.segmentation.automatic import grid_points, segment_amg
    from samzoo.segmentation.embeddings import compute_embeddings

    job = {"mode": "checkpoint", "model_type": "vit_t", "checkpoint": str(checkpoint), "threads": args.threads,
           "settings": SETTINGS, "images": []}
    t_enc = t_amg = t_exact = 0.0
    ours, exact, feats = [], [], []
    compute_embeddings(vit_model, np.zeros((64, 64), np.uint8), cache=False)  # warm-up
    amg_kw = dict(points_per_side=args.vit_t_points, method="samzoo", **SETTINGS)
    for i, (name, image, gt) in enumerate(crops):
        emb, t = _timed(compute_embeddings, vit_model, image, cache=False)
        t_enc += t
        assert len(emb.tiles) == 1
        seg, t = _timed(segment_amg, vit_model, image, embeddings=emb, **amg_kw)
        t_amg += t
        seg_exact, t = _timed(segment_amg, vit_model, image, embeddings=emb, foreground_threshold=None,
                              skip_covered=False, window=None, **amg_kw)
        t_exact += t
        ours.append(seg)
        exact.append(seg_exact)
        feats.append(emb.features[0])
        stem = tmp / f"b{i}"
        np.save(f"{stem}_img.npy", image)
        np.save(f"{stem}_pts.npy", grid_points(emb, args.vit_t_points))
        job["images"].append({"image": f"{stem}_img.npy", "points": f"{stem}_pts.npy", "out": f"{stem}_msam.npy",
                              "features_out": f"{stem}_feat.npy"})
    msam = _run_msam(job, msam_python, tmp)
    theirs = [np.load(item["out"]) for item in job["images"]]
    # embedding agreement: relative L2 difference of the two encoders' outputs (padding differs:
    # samzoo pads black before normalising, SAM/micro-sam pads after)
    rel = []
    for a, item, (_, image, _) in zip(feats, job["images"], crops):
        gh, gw = image.shape[0] // 16, image.shape[1] // 16  # tokens that see no padding at all... nearly
        b = np.load(item["features_out"]).reshape(a.shape)
        rel.append((float(np.linalg.norm(a - b) / np.linalg.norm(a)),
                    float(np.linalg.norm(a[:, :gh, :gw] - b[:, :gh, :gw]) / np.linalg.norm(a[:, :gh, :gw]))))
    gts = [c[2] for c in crops]
    return {
        "encoder": t_enc, "amg": t_amg, "amg_exact": t_exact,
        "msam_encoder": sum(r["encoder_s"] for r in msam["results"]),
        "msam_amg": sum(r["amg_s"] for r in msam["results"]),
        "msa": evaluate_many(list(zip(ours, gts)))[1]["msa"],
        "msa_exact": evaluate_many(list(zip(exact, gts)))[1]["msa"],
        "msam_msa": evaluate_many(list(zip(theirs, gts)))[1]["msa"],
        "agree": evaluate_many(list(zip(ours, theirs)))[1]["msa"],
        "agree_exact": evaluate_many(list(zip(exact, theirs)))[1]["msa"],
        "objects": (sum(int(s.max()) for s in ours), sum(int(s.max()) for s in exact),
                    sum(len(np.unique(s)) - 1 for s in theirs)),
        "emb_rel_diff": max(r[0] for r in rel), "emb_rel_diff_image": max(r[1] for r in rel),
        "n_points": sum(r["n_points"] for r in msam["results"]),
        "versions": (msam["micro_sam"], msam["torch"], msam["threads"]),
    }


def _whole_planes(model, datasets: list[str], args) -> dict:
    """Section A2: whole held-out planes, tiled as a user's image is: encoder, AIS and AMG times, mSA.

    On crops of the model's input size every image is one tile; a whole plane has many, and AMG
    decodes the prompts of all its tiles together.
    """
    sys.path.insert(0, str(HERE))
    from bench_quality import held_out_planes

    from samzoo.evaluation import evaluate_many
    from samzoo.segmentation.ais import segment_ais
    from samzoo.segmentation.automatic import segment_amg
    from samzoo.segmentation.embeddings import compute_embeddings

    times, pairs, shapes = defaultdict(float), defaultdict(list), []
    for name in datasets:
        for image, gt in held_out_planes(name)[:args.whole_planes]:
            image = _uint8_rgb(image)
            emb, t = _timed(compute_embeddings, model, image, cache=False, repeat=args.repeat)
            times["encoder"] += t
            shapes.append((image.shape[:2], len(emb.tiles)))
            for mode, fn, kw in (("ais", segment_ais, {}), ("amg", segment_amg,
                                                            dict(points_per_side=args.points_per_side,
                                                                 method="samzoo", **SETTINGS))):
                labels, t = _timed(fn, model, image, embeddings=emb, repeat=args.repeat, **kw)
                times[mode] += t
                pairs[mode].append((labels, gt))
    scores = {k: evaluate_many(v)[1]["msa"] for k, v in pairs.items()}
    return {"times": times, "scores": scores, "shapes": shapes}


def big_worker(args) -> None:
    """Section C, in its own process: AIS on a ``--big`` square mosaic of held-out planes."""
    import torch

    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(HERE))
    from bench_quality import held_out_planes

    from samzoo.segmentation.ais import segment_ais

    model, _ = _load_samzoo_model(args.model, args.input_size)
    planes = [p[0] for p in held_out_planes("hela")]
    row = np.concatenate(planes, axis=1)
    reps = (-(-args.big // row.shape[0]), -(-args.big // row.shape[1]))
    image = np.tile(row, reps)[:args.big, :args.big]
    del planes, row
    cache = tempfile.mkdtemp(prefix="bench_automatic_cache_")
    os.environ["SAMZOO_CACHE_DIR"] = cache  # the default path caches embeddings: keep that, but not for later runs
    try:
        start = time.perf_counter()
        labels = segment_ais(model, image)
        seconds = time.perf_counter() - start
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    print(json.dumps({"seconds": seconds, "objects": int(labels.max()), "shape": list(image.shape),
                      "maxrss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
                      "input_gb": image.nbytes / 2**30}))


def _big(args) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--big-worker", "--big", str(args.big),
           "--threads", str(args.threads)]
    if args.model:
        cmd += ["--model", args.model]
    if args.input_size:
        cmd += ["--input-size", str(args.input_size)]
    proc = subprocess.run(cmd, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
    if proc.returncode:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"rc {proc.returncode}",
                "maxrss_gb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="samzoo model for section A (name or .safetensors)")
    parser.add_argument("--input-size", type=int, default=None, help="tile size for --model (TinyViT only)")
    parser.add_argument("--vit-t", default=None, help="vit_t samzoo .safetensors for section B (default: random)")
    parser.add_argument("--datasets", default="hela,bacteria")
    parser.add_argument("--planes", type=int, default=1, help="held-out planes per data set")
    parser.add_argument("--crops", type=int, default=4, help="section A crops (model input size) per plane")
    parser.add_argument("--vit-t-crops", type=int, default=1, help="section B crops (<= 1024) per plane")
    parser.add_argument("--points-per-side", type=int, default=16, help="AMG grid per model-input side (A)")
    parser.add_argument("--vit-t-points", type=int, default=16, help="AMG grid per 1024 pixels (B)")
    parser.add_argument("--big", type=int, default=8192, help="side of the big image (0: skip section C)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, the same for both libraries")
    parser.add_argument("--whole-planes", type=int, default=1,
                        help="section A2: whole held-out planes per data set, tiled (0: skip)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="section A: each samzoo mode's time per crop is the shortest of this many runs")
    parser.add_argument("--pred-iou", type=float, default=SETTINGS["pred_iou_threshold"],
                        help="AMG predicted-IoU threshold, both libraries")
    parser.add_argument("--stability", type=float, default=SETTINGS["stability_threshold"],
                        help="AMG stability-score threshold, both libraries")
    parser.add_argument("--amg-ablation", action="store_true",
                        help="also run samzoo's AMG with each shortcut switched off in turn (section A)")
    parser.add_argument("--msam-python", default=MSAM_PYTHON)
    parser.add_argument("--skip", default="", help="comma list of sections to skip: a,b,c")
    parser.add_argument("--msam-worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--big-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.msam_worker:
        return msam_worker(args.msam_worker)
    if args.big_worker:
        return big_worker(args)

    import torch

    torch.set_num_threads(args.threads)
    SETTINGS.update(pred_iou_threshold=args.pred_iou, stability_threshold=args.stability)
    skip = set(filter(None, args.skip.split(",")))
    datasets = args.datasets.split(",")
    msam_python = args.msam_python if Path(args.msam_python).exists() else None
    lines, targets = [], []
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="bench_automatic_") as tmp:
        tmp = Path(tmp)
        if args.model and Path(args.model).is_file():  # a checkpoint being trained may be replaced meanwhile:
            shutil.copy(args.model, tmp / Path(args.model).name)  # every section uses this one copy
            args.model = str(tmp / Path(args.model).name)
        big = _big(args) if args.big and "c" not in skip else None  # first: nothing else in memory
        model, note = _load_samzoo_model(args.model, args.input_size)
        if "a" not in skip:
            crops = _crops(datasets, args.planes, model.input_size, args.crops)
            times, scores, agreement, msam, objects, prompts = _samzoo_modes(model, crops, args, tmp, msam_python)
            enc = times["encoder"]
            lines.append(f"A. samzoo modes: model {model.name} ({model.config.architecture}, input "
                         f"{model.input_size}) {note}".rstrip())
            lines.append(f"   {len(crops)} crops of <= {model.input_size}px from held-out planes of "
                         f"{','.join(datasets)} ({args.planes}/data set); AMG grid {args.points_per_side} per side")
            rows = [("encoder", enc, None)]
            rows += [(m, enc + times[m], scores.get(m)) for m in ("ais", "amg", *ABLATION, "amg_exact", "apg")
                     if m in scores]
            for m, total, msa in rows:
                lines.append(_row(f"samzoo {m}", total, enc, msa,
                                  agreement.get(m) if m in agreement else None))
            if msam:
                msam_total = enc + msam["amg_s"]
                lines.append(_row("micro-sam amg*", msam_total, enc, scores.get("msam"), None))
                lines.append(f"   * micro-sam {msam['micro_sam']} AMG on {msam['n_crops']} of these crops, samzoo's "
                             "embeddings (same encoder), same grid points, thresholds, decoder weights")
                for m in ("amg", "amg_exact"):
                    if m in scores:
                        lines.append(f"   micro-sam amg / samzoo {m}: total {msam_total / (enc + times[m]):.2f}x, "
                                     f"decoder stage {msam['amg_s'] / max(times[m], 1e-9):.2f}x; "
                                     f"mSA difference {scores[m] - scores['msam']:+.3f}")
            if "ais" in scores:
                lines.append(f"   AIS split (s, all crops): encoder {enc:.3f}, AIS decoder {times['ais_decoder']:.3f}, "
                             f"post-processing {times['ais'] - times['ais_decoder']:.3f} (AIS time minus a separate "
                             "timing of the decoder alone)")
            lines.append("   prompts decoded: " + ", ".join(f"{k} {v}" for k, v in prompts.items()) + " "
                         f"(thresholds: predicted IoU {SETTINGS['pred_iou_threshold']}, stability "
                         f"{SETTINGS['stability_threshold']})")
            lines.append(f"   AMG split (s, all crops): decoding prompts {times['amg_decoder']:.3f}, rest (AIS maps, "
                         f"prompt choice, NMS, painting) {times['amg'] - times['amg_decoder']:.3f}; exact path: "
                         f"decoder {times['amg_exact_decoder']:.3f}, rest "
                         f"{times['amg_exact'] - times['amg_exact_decoder']:.3f}")
            lines.append("   objects found: " + ", ".join(f"{k} {v}" for k, v in objects.items())
                         + (" (agree = 1 when both find nothing)" if not objects.get("amg") else ""))
            if "ais" in scores:
                ratio = (enc + times["ais"]) / enc
                targets.append(f"AIS <= 1.3x encoder: {ratio:.3f}x ({_met(ratio <= 1.3)})")
                ratio = (enc + times["amg"]) / (enc + times["ais"])
                targets.append(f"AMG <= 2x AIS: {ratio:.3f}x ({_met(ratio <= 2)})")
            if args.whole_planes and model.ais_decoder is not None:
                whole = _whole_planes(model, datasets, args)
                wt, enc_w = whole["times"], whole["times"]["encoder"]
                sizes = ", ".join(f"{h}x{w} ({n} tiles)" for (h, w), n in whole["shapes"])
                lines.append(f"A2. whole held-out planes, tiled: {sizes}")
                lines.append(_row("samzoo encoder", enc_w, enc_w, None, None))
                for m in ("ais", "amg"):
                    lines.append(_row(f"samzoo {m}", enc_w + wt[m], enc_w, whole["scores"][m], None))
                ratio = (enc_w + wt["amg"]) / (enc_w + wt["ais"])
                targets.append(f"AMG <= 2x AIS on whole tiled planes (A2): {ratio:.2f}x ({_met(ratio <= 2)})")
            if msam:
                ratio, gap = (enc + msam["amg_s"]) / (enc + times["amg"]), scores["amg"] - scores["msam"]
                vacuous = not objects.get("amg") and not objects.get("msam")
                targets.append(f"AMG >= 5x faster than micro-sam's, mSA within 0.02 (section A, same weights): "
                               f"{ratio:.2f}x, mSA {gap:+.3f} ({_met(ratio >= 5 and gap >= -0.02)}"
                               + ("; VACUOUS: neither AMG finds an object with this model" if vacuous else "") + ")")
        if "b" not in skip and msam_python:
            vit_model, checkpoint = _vit_t_files(tmp, args.vit_t)
            crops_b = _crops(datasets, args.planes, 1024, args.vit_t_crops)
            r = _head_to_head(vit_model, checkpoint, crops_b, args, tmp, msam_python)
            lines.append(f"B. head to head, vit_t ({vit_model.name}), one weight file loaded by both; "
                         f"{len(crops_b)} crops of <= 1024px; {r['n_points']} grid points in all "
                         f"({args.vit_t_points} per 1024px), same points for both")
            lines.append(_row("samzoo encoder", r["encoder"], r["encoder"], None, None))
            lines.append(_row("samzoo amg", r["encoder"] + r["amg"], r["encoder"], r["msa"], r["agree"]))
            lines.append(_row("samzoo amg_exact", r["encoder"] + r["amg_exact"], r["encoder"], r["msa_exact"],
                              r["agree_exact"]))
            lines.append(_row("micro-sam encoder", r["msam_encoder"], r["encoder"], None, None))
            lines.append(_row("micro-sam amg", r["msam_encoder"] + r["msam_amg"], r["encoder"], r["msam_msa"], None))
            ratio = (r["msam_encoder"] + r["msam_amg"]) / (r["encoder"] + r["amg"])
            gap = r["msa"] - r["msam_msa"]
            targets.append(f"AMG >= 5x faster than micro-sam's (section B, vit_t, same weight file): {ratio:.2f}x "
                           f"({_met(ratio >= 5)}; mSA not comparable with random weights)" if not args.vit_t else
                           f"AMG >= 5x faster than micro-sam's (section B): {ratio:.2f}x, mSA "
                           f"{gap:+.3f} ({_met(ratio >= 5 and gap >= -0.02)})")
            lines.append(f"   micro-sam amg / samzoo amg: total {ratio:.2f}x, "
                         f"decoder stage {r['msam_amg'] / max(r['amg'], 1e-9):.2f}x (exact path: "
                         f"{(r['msam_encoder'] + r['msam_amg']) / (r['encoder'] + r['amg_exact']):.2f}x, "
                         f"{r['msam_amg'] / max(r['amg_exact'], 1e-9):.2f}x); objects samzoo/exact/micro-sam "
                         f"{r['objects'][0]}/{r['objects'][1]}/{r['objects'][2]}")
            lines.append(f"   encoder outputs differ by {r['emb_rel_diff']:.3f} (relative L2; "
                         f"{r['emb_rel_diff_image']:.3f} over the tokens inside the image): the padding differs")
            lines.append(f"   micro-sam {r['versions'][0]}, torch {r['versions'][1]}, {r['versions'][2]} thread(s)"
                         + ("; random weights: mSA is meaningless, 'agree' is the comparison" if not args.vit_t
                            else ""))
        elif "b" not in skip:
            lines.append(f"B. skipped: no micro-sam python at {args.msam_python}")
        if big is not None:
            if "error" in big:
                lines.append(f"C. {args.big}x{args.big} AIS FAILED: {big['error']} "
                             f"(peak RSS {big['maxrss_gb']:.2f} GB)")
            else:
                lines.append(f"C. {args.big}x{args.big} mosaic of held-out HeLa planes, AIS tiled, own process: "
                             f"{big['seconds']:.0f} s, peak RSS {big['maxrss_gb']:.2f} GB, {big['objects']} objects")
                targets.append(f"{args.big}x{args.big} segmented with peak memory < 4 GB: {big['maxrss_gb']:.2f} GB "
                               f"({_met(big['maxrss_gb'] < 4)})")
    head = (f"{'':22} | {'total s':>8} | {'x encoder':>9} | {'mSA':>6} | {'agree':>6}")
    print(f"samzoo automatic-segmentation benchmark, torch {torch.__version__}, {args.threads} torch thread(s) for "
          f"both libraries; section A times: shortest of {args.repeat} runs per crop; load average at the end "
          f"{os.getloadavg()[0]:.2f}; run took {time.time() - started:.0f} s")
    print(head)
    print("-" * len(head))
    for line in lines:
        print(line)
    print("total s = encoder + mode, summed over crops; mSA against the ground truth (pooled); agree = mSA of "
          "samzoo's labels with micro-sam's as reference")
    print("targets: " + "; ".join(targets))


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _row(name, total, encoder, msa, agree) -> str:
    f = lambda v: f"{v:>6.3f}" if v is not None else f"{'':>6}"  # noqa: E731
    return f"{name:>22} | {total:>8.2f} | {total / encoder:>9.2f} | {f(msa)} | {f(agree)}"


if __name__ == "__main__":
    main()
