"""Parity with micro-sam 1.8.14: the same weights and images through micro-sam and samzoo, compared.

    .venv/bin/python scripts/parity_microsam.py                      # ../msam-venv, made if missing
    .venv/bin/python scripts/parity_microsam.py --msam-python /path/to/python --images hela

1. Seeded random vit_b weights in micro-sam's formats: an official-style SAM checkpoint (plain
   state dict, ``sam_vit_b_seed0.pth``) and a micro-sam training checkpoint (``model_state`` with
   the ``sam.`` prefix, ``decoder_state``, optimizer state). The decoder's output convolution is
   amplified so that its random maps hold objects (a plain random decoder gives none).
2. micro-sam runs in its own venv (this script re-runs itself there with ``--worker``): embeddings
   with ``util.precompute_image_embeddings``, prompts with ``prompt_based_segmentation``
   (``segment_from_points``, ``segment_from_box``, ``segment_from_box_and_points``,
   ``segment_from_mask`` with the mask only), AIS with ``get_predictor_and_segmenter`` +
   ``InstanceSegmentationWithDecoder`` and ``generate()``'s defaults.
   AMG with ``get_predictor_and_segmenter(..., segmentation_mode="amg")`` (``AutomaticMaskGenerator``)
   and ``generate()``'s defaults, on a third file (``sam_vit_b_seed0_amg.pth``): the same weights with
   the prompt encoder and mask decoder rewired so that a point gives blobs around it (a random mask
   decoder gives masks that cover most of the image, whose predicted IoU and stability never pass
   micro-sam's thresholds; see :func:`amg_decoder`). The image encoder is the same, so each side
   reuses its embeddings.
3. samzoo loads the same files by path (``samzoo.load_model``) and runs the same prompts, AIS and AMG
   (``segment_amg``'s default for SAM-family models: micro-sam's AMG).

Prompts come from the ground-truth objects of each image (up to ``--objects`` per image). A case
counts only when micro-sam's mask is non-trivial (not empty, under 90 % of the image). Printed: per
case the mean IoU of the prompt masks; for AIS the fraction of micro-sam's objects that samzoo
matches at IoU >= 0.9 (label images with fewer than 5 objects are not counted); the same for AMG
(``--amg-images``; micro-sam's AMG decodes 1024 prompts per image, 5-6 minutes each on one CPU core).
Results also go to ``OUT/parity.json`` (default ``$TMPDIR/samzoo_parity``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MSAM_PACKAGES = ["micro_sam==1.8.14", "torch-em==0.10.9", "python-elf==0.9.2", "bioimage-cpp==0.10.0"]
CASES = ("point", "points_negative", "box", "box_points", "mask")


# ---------------------------------------------------------------------------------------------
# micro-sam side (run with micro-sam's Python)


def worker(work: Path) -> None:
    import torch
    from micro_sam import prompt_based_segmentation as pbs
    from micro_sam import util
    from micro_sam.automatic_segmentation import get_predictor_and_segmenter

    torch.set_grad_enabled(False)
    prompts = json.loads((work / "prompts.json").read_text())
    predictor, segmenter = get_predictor_and_segmenter("vit_b", checkpoint=str(work / "checkpoint.pt"), device="cpu",
                                                       segmentation_mode="ais")
    amg_job = json.loads((work / "amg.json").read_text())
    amg_images, amg = amg_job["images"], None
    results, timings = {}, {}
    for name in prompts:
        image = np.load(work / f"{name}.npy")
        start = time.perf_counter()
        emb = util.precompute_image_embeddings(predictor, image, ndim=2, verbose=False)
        timings[f"{name}_embedding"] = time.perf_counter() - start
        for obj in prompts[name]:
            pts, labels = np.array(obj["points"], float), np.array(obj["labels"])
            box, mask = np.array(obj["box"]), np.load(work / f"{name}_mask_{obj['id']}.npy")
            masks = {
                "point": pbs.segment_from_points(predictor, pts[:1], labels[:1], image_embeddings=emb),
                "points_negative": pbs.segment_from_points(predictor, pts, labels, image_embeddings=emb),
                "box": pbs.segment_from_box(predictor, box, image_embeddings=emb),
                "box_points": pbs.segment_from_box_and_points(predictor, box, pts, labels, image_embeddings=emb),
                "mask": pbs.segment_from_mask(predictor, mask, image_embeddings=emb, use_box=False),
            }
            for case, m in masks.items():
                results[f"{name}|{obj['id']}|{case}"] = np.asarray(m).squeeze().astype(bool)
        start = time.perf_counter()
        segmenter.initialize(image, image_embeddings=emb)
        results[f"{name}|ais"] = segmenter.generate().astype(np.int32)
        timings[f"{name}_ais"] = time.perf_counter() - start
        if name in amg_images:
            if amg is None:  # the same image encoder: the embeddings above serve it too
                amg = get_predictor_and_segmenter("vit_b", checkpoint=str(work / amg_job["checkpoint"]), device="cpu",
                                                  segmentation_mode="amg")[1]
            start = time.perf_counter()
            amg.initialize(image, image_embeddings=emb)  # as automatic_instance_segmentation calls it
            results[f"{name}|amg"] = amg.generate().astype(np.int32)
            timings[f"{name}_amg"] = time.perf_counter() - start
    np.savez_compressed(work / "microsam.npz", **results)
    (work / "microsam_timings.json").write_text(json.dumps(timings))


# ---------------------------------------------------------------------------------------------
# driver (samzoo's Python)


def ensure_msam(python: Path) -> Path:
    """micro-sam's own venv (``python``'s parent parent), made with pip if missing."""
    if python.is_file():
        return python
    venv = python.parents[1]
    print(f"creating {venv} with micro-sam 1.8.14 (a few minutes)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "torch==2.14.1", "torchvision==0.29.1"], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *MSAM_PACKAGES], check=True)
    return python


def make_weights(work: Path, seed: int, amg: bool = False) -> None:
    """The seeded weights in micro-sam's formats; with ``amg``, also the AMG file (:func:`amg_decoder`)."""
    import torch
    from segment_anything import sam_model_registry

    from samzoo.models.unetr import UNETRDecoder

    torch.manual_seed(seed)
    sam = sam_model_registry["vit_b"]()
    state = sam.state_dict()
    torch.save(state, work / f"sam_vit_b_seed{seed}.pth")
    decoder = UNETRDecoder(use_conv_transpose=True)
    with torch.no_grad():
        decoder.out_conv.weight.mul_(20)  # random maps with structure: objects for the watershed to find
    optimizer = torch.optim.AdamW(decoder.parameters(), lr=1e-5)
    torch.save({"model_state": {f"sam.{k}": v for k, v in state.items()}, "decoder_state": decoder.state_dict(),
                "optimizer_state": optimizer.state_dict(), "epoch": 0, "iteration": 0, "best_metric": 1.0,
                "train_time": 0.0}, work / "checkpoint.pt")
    if amg:  # after the decoder: it draws from the seeded generator, and must stay what it was
        blobs = sam_model_registry["vit_b"]()
        blobs.load_state_dict(state)
        amg_decoder(blobs)
        torch.save(blobs.state_dict(), work / f"sam_vit_b_seed{seed}_amg.pth")


def amg_decoder(sam, sharpness: float = 3.0, update: float = 30.0, steepness: float = 2000.0,
                levels: tuple[float, float, float] = (0.4, 0.55, 0.7), iou_offset: float = 0.95) -> None:
    """Rewire a random SAM's prompt encoder and mask decoder (in place) so that a point prompt gives blobs around it.

    A random mask decoder gives each point masks over most of the image, nearly the same for every
    point, with predicted IoUs near 0 and stability scores near 0: AMG keeps nothing (or, with
    its thresholds lowered, one mask). Here, with the random weights kept elsewhere:

    - the positional code uses 64 frequencies (each twice), so it spans a 128-dimensional subspace;
    - in the first block, each token attends to itself and the point token's position is projected
      out of its value (its value is then the same wherever the point is); the image tokens attend
      to the point token by positional similarity (8 frequencies per head, ``sharpness``) and take
      up its value (``update``): near the point, the image tokens carry one signature;
    - the other attention outputs and the first MLP are zeroed; the upscaling gives the four
      pixels under a token the same features (no checkerboard), and a constant channel;
    - the three masks are that signature's strength (measured near and far from a point on a blank
      embedding) above three ``levels``, times ``steepness`` (stable masks); predicted IoUs are
      shifted by ``iou_offset`` so that about half of the masks pass micro-sam's 0.88.

    The image still shapes the masks through its embedding, so the blobs differ from point to
    point and from image to image, and overlap: NMS, painting order and connected components all
    have work to do.
    """
    import torch

    from samzoo.segmentation.mask_decoder import _transformer

    pe, md = sam.prompt_encoder, sam.mask_decoder
    with torch.no_grad():
        gauss = pe.pe_layer.positional_encoding_gaussian_matrix
        gauss[:, 64:] = gauss[:, :64].clone()
        pe.point_embeddings[1].weight.zero_()
        first, second = md.transformer.layers
        eye = torch.eye(256)
        code = torch.zeros(256, 128)  # an orthonormal basis of the positional code's subspace
        for k in range(64):
            code[[k, 64 + k], k] = code[[128 + k, 192 + k], 64 + k] = 2 ** -0.5
        attn = first.self_attn
        for linear, weight in ((attn.q_proj, 4 * eye), (attn.k_proj, 4 * eye), (attn.v_proj, eye - code @ code.T),
                               (attn.out_proj, eye)):
            linear.weight.copy_(weight)
            linear.bias.zero_()
        for linear in (first.cross_attn_token_to_image.out_proj, first.mlp.lin2,
                       second.cross_attn_image_to_token.out_proj, second.cross_attn_token_to_image.out_proj,
                       md.transformer.final_attn_token_to_image.out_proj):
            linear.weight.zero_()
            linear.bias.zero_()
        attn = first.cross_attn_image_to_token
        heads = torch.zeros(128, 256)  # head h: sine and cosine of frequencies 8h .. 8h + 7
        for h in range(8):
            for k in range(8):
                heads[16 * h + k, 8 * h + k] = heads[16 * h + 8 + k, 128 + 8 * h + k] = 1
        for linear in (attn.q_proj, attn.k_proj):
            linear.weight.copy_(sharpness * heads)
            linear.bias.zero_()
        attn.out_proj.weight.mul_(update)
        up = md.output_upscaling  # ConvTranspose, LayerNorm2d, GELU, ConvTranspose, GELU
        for conv in (up[0], up[3]):
            conv.weight.copy_(conv.weight.mean((2, 3), keepdim=True).expand_as(conv.weight))
        up[3].weight[:, -1].zero_()
        up[3].bias[-1] = 3.0  # channel 31: a constant, the masks' offset
        # the signature: features near a point in the middle of a blank embedding against those far from it
        middle = (torch.tensor([[[512.0, 512.0]]]), torch.ones(1, 1, dtype=torch.int))
        point = pe(points=middle, boxes=None, masks=None)[0]
        tokens = torch.cat((torch.cat([md.iou_token.weight, md.mask_tokens.weight])[None], point), 1)
        blank = pe.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(1, -1, 64, 64)
        _, src = _transformer(md.transformer, blank, pe.get_dense_pe(), tokens)
        x = src.transpose(1, 2).reshape(1, 256, 64, 64)
        for layer in up:
            x = layer(x)
        features = x[0, :, ::4, ::4].reshape(32, -1)  # one per token
        yy, xx = np.mgrid[:64, :64]
        distance = torch.from_numpy(np.hypot(yy - 32, xx - 32).ravel())
        signature = features[:-1, distance < 1.5].mean(1) - features[:-1, distance > 12].mean(1)
        signature /= signature.norm()
        strength = signature @ features[:-1]
        near, far = float(strength[distance < 1.5].mean()), float(strength[distance > 12].mean())
        constant = float(features[-1].mean())
        for mlp, level in zip(md.output_hypernetworks_mlps[1:], levels):
            mlp.layers[-1].weight.zero_()
            mlp.layers[-1].bias[:-1] = steepness * signature
            mlp.layers[-1].bias[-1] = -steepness * (far + (near - far) * level) / constant
        md.iou_prediction_head.layers[-1].bias.add_(iou_offset)


# name: image file, label file, plane, (y0, x0) of the crop (None: the whole plane)
SOURCES = {
    "hela": ("Fluo_Hela_02_img.tif", "Fluo_Hela_02_ERR_SEG.tif", 0, (100, 200)),
    # frame 19: the colony has grown to 16 bacteria (prompts); frame 0 holds two, but its crop
    # gives the random decoder's AIS something other than one all-covering object
    "bacteria": ("trpL_150310-11_img.tif", "trpL_150310-11_mask.tif", 19, (120, 0)),
    "bacteria_f0": ("trpL_150310-11_img.tif", "trpL_150310-11_mask.tif", 0, (100, 100)),
    "nuclei3d": ("nuclei3d_img.tif", "nuclei3d_mask.tif", 15, None),  # a (61, 57) slice of a zyx volume
}


def load_images(names: list[str], crop: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per name of :data:`SOURCES`: the ``crop`` x ``crop`` image and its instance labels."""
    import tifffile

    data = Path(os.environ.get("SAMZOO_SHARED", ROOT.parent / "shared")) / "data"
    out = {}
    for name in names:
        image_file, label_file, plane, corner = SOURCES[name]
        window = (slice(None),) * 2 if corner is None else (slice(corner[0], corner[0] + crop),
                                                             slice(corner[1], corner[1] + crop))
        image, labels = (tifffile.imread(data / f) for f in (image_file, label_file))
        out[name] = (image[plane][window], labels[plane][window])
    return out


def make_prompts(labels: np.ndarray, n: int, rng: np.random.Generator) -> list[dict]:
    """Per object: its innermost pixel and another positive, a negative just outside, its box, its mask."""
    from scipy import ndimage as ndi
    from skimage.measure import regionprops

    regions = [r for r in regionprops(labels) if r.area >= 30]
    chosen = rng.choice(len(regions), size=min(n, len(regions)), replace=False) if regions else []
    prompts = []
    for i in chosen:
        r = regions[i]
        obj = labels == r.label
        inner = ndi.distance_transform_edt(obj)
        centre = np.unravel_index(np.argmax(inner), obj.shape)
        ys, xs = np.nonzero(obj)
        second = (ys[len(ys) // 3], xs[len(xs) // 3])
        ring = ndi.binary_dilation(obj, iterations=3) & ~ndi.binary_dilation(obj, iterations=1)
        ry, rx = np.nonzero(ring)
        negative = (ry[len(ry) // 2], rx[len(rx) // 2]) if len(ry) else (0, 0)
        y0, x0, y1, x1 = r.bbox
        prompts.append({"id": int(r.label), "points": [list(map(int, centre)), list(map(int, second)),
                                                       list(map(int, negative))],
                        "labels": [1, 1, 0], "box": [int(y0), int(x0), int(y1 - 1), int(x1 - 1)]})
    return prompts


def run_samzoo(work: Path, images: dict, prompts: dict, amg_images: tuple[str, ...] = (),
               amg_checkpoint: str | None = None) -> tuple[dict, dict]:
    import torch

    import samzoo
    from samzoo.segmentation.automatic import segment_amg
    from samzoo.segmentation.predictor import Prompt

    model = samzoo.load_model(work / "checkpoint.pt")
    plain = samzoo.load_model(work / next(p.name for p in work.glob("sam_vit_b_seed*[0-9].pth")))
    assert all(torch.equal(a, b) for a, b in zip(model.sam.state_dict().values(), plain.sam.state_dict().values()))
    amg = samzoo.load_model(work / amg_checkpoint) if amg_images else None
    if amg is not None:  # the same image encoder: the embeddings serve both
        assert all(torch.equal(a, b) for a, b in zip(model.sam.image_encoder.state_dict().values(),
                                                     amg.sam.image_encoder.state_dict().values()))
    results, timings = {}, {}
    for name, (image, _) in images.items():
        start = time.perf_counter()
        emb = samzoo.compute_embeddings(model, image, cache=False)
        timings[f"{name}_embedding"] = time.perf_counter() - start
        for obj in prompts[name]:
            pts, labels, box = np.array(obj["points"]), np.array(obj["labels"]), obj["box"]
            mask = np.load(work / f"{name}_mask_{obj['id']}.npy")
            cases = {"point": Prompt(points=pts[:1], point_labels=labels[:1]),
                     "points_negative": Prompt(points=pts, point_labels=labels), "box": Prompt(box=box),
                     "box_points": Prompt(points=pts, point_labels=labels, box=box), "mask": Prompt(mask=mask)}
            decoded = samzoo.predict(model, emb, dict(enumerate(cases.values())))
            for i, case in enumerate(cases):
                results[f"{name}|{obj['id']}|{case}"] = decoded[i].full_mask(emb.shape)
        start = time.perf_counter()
        results[f"{name}|ais"] = samzoo.segment_ais(model, image, embeddings=emb)
        timings[f"{name}_ais"] = time.perf_counter() - start
        if name in amg_images:
            start = time.perf_counter()
            results[f"{name}|amg"] = segment_amg(amg, image, embeddings=emb)  # micro-sam's AMG: the default here
            timings[f"{name}_amg"] = time.perf_counter() - start
    return results, timings


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def matched_fraction(reference: np.ndarray, labels: np.ndarray, threshold: float = 0.9) -> tuple[float, int]:
    """Fraction of ``reference``'s objects that one object of ``labels`` overlaps at IoU >= threshold."""
    ids = [i for i in np.unique(reference) if i]
    if not ids:
        return float("nan"), 0
    pairs = np.stack([reference.ravel(), labels.ravel()])
    uniq, counts = np.unique(pairs, axis=1, return_counts=True)
    area_r = dict(zip(*np.unique(reference, return_counts=True)))
    area_l = dict(zip(*np.unique(labels, return_counts=True)))
    best = {}
    for (r, l), c in zip(uniq.T, counts):
        if r and l:
            best[r] = max(best.get(r, 0.0), c / (area_r[r] + area_l[l] - c))
    return sum(best.get(i, 0.0) >= threshold for i in ids) / len(ids), len(ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--msam-python", type=Path, default=ROOT.parent / "msam-venv" / "bin" / "python")
    parser.add_argument("--images", default="hela,bacteria,bacteria_f0,nuclei3d")
    parser.add_argument("--crop", type=int, default=512)
    parser.add_argument("--objects", type=int, default=6, help="prompted objects per image")
    parser.add_argument("--amg-images", default="hela,bacteria_f0",
                        help="images also segmented by AMG (of --images; 'none': no AMG)")
    parser.add_argument("--seed", type=int, default=0)
    # ~0.7 GB of weights: outside the repository by default
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "samzoo_parity")
    parser.add_argument("--reuse-microsam", action="store_true",
                        help="keep micro-sam's outputs from an earlier run in OUT with the same arguments")
    parser.add_argument("--reference", type=Path,
                        help="also store micro-sam's outputs on the nuclei3d slice here (the CI test data)")
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker)
    work = args.out.absolute()
    work.mkdir(parents=True, exist_ok=True)
    python = ensure_msam(args.msam_python)
    images = load_images(args.images.split(","), args.crop)
    amg_images = tuple(n for n in args.amg_images.split(",") if n in images)
    make_weights(work, args.seed, amg=bool(amg_images))
    amg_checkpoint = f"sam_vit_b_seed{args.seed}_amg.pth"
    (work / "amg.json").write_text(json.dumps({"images": amg_images, "checkpoint": amg_checkpoint}))
    rng = np.random.default_rng(args.seed)
    prompts = {}
    for name, (image, labels) in images.items():
        np.save(work / f"{name}.npy", image)
        prompts[name] = make_prompts(labels, args.objects, rng)
        for obj in prompts[name]:
            np.save(work / f"{name}_mask_{obj['id']}.npy", labels == obj["id"])
    (work / "prompts.json").write_text(json.dumps(prompts))
    if not (args.reuse_microsam and (work / "microsam.npz").is_file()):
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
        subprocess.run([str(python), __file__, "--worker", str(work)], check=True, env=env)
    reference = dict(np.load(work / "microsam.npz"))
    ours, timings = run_samzoo(work, images, prompts, amg_images, amg_checkpoint)
    report = {"seed": args.seed, "crop": args.crop, "cases": {}, "ais": {}, "amg": {},
              "timings_s": {"microsam": json.loads((work / "microsam_timings.json").read_text()), "samzoo": timings}}
    for case in CASES:
        scores = []
        for key, ref_mask in reference.items():
            if key.endswith(f"|{case}") and 0 < ref_mask.mean() < 0.9:  # non-trivial masks only
                scores.append(iou(ref_mask, ours[key]))
        report["cases"][case] = {"mean_iou": float(np.mean(scores)) if scores else None, "n": len(scores),
                                 "min_iou": float(np.min(scores)) if scores else None}
    for mode, name in [("ais", n) for n in images] + [("amg", n) for n in amg_images]:
        ref_labels = reference[f"{name}|{mode}"]
        fraction, n = matched_fraction(ref_labels, ours[f"{name}|{mode}"])
        largest = np.bincount(ref_labels.ravel())[1:].max(initial=0) / ref_labels.size
        report[mode][name] = {"matched_at_0.9": fraction, "microsam_objects": n,
                              "samzoo_objects": int(np.count_nonzero(np.unique(ours[f"{name}|{mode}"]))),
                              # samzoo's objects that one of micro-sam's matches: the other way round
                              "reverse_matched_at_0.9": matched_fraction(ours[f"{name}|{mode}"], ref_labels)[0],
                              # random weights leave little background, and can make the whole image one
                              # object: only label images with a few objects or more are counted
                              "largest_object_fraction": float(largest), "trivial": bool(n < 5)}
    (work / "parity.json").write_text(json.dumps(report, indent=1))
    if args.reference and "nuclei3d" in prompts:
        # small enough for the repository: a 61 x 57 slice, masks bit-packed
        keep = {k: np.packbits(v) if v.dtype == bool else v for k, v in reference.items()
                if k.startswith("nuclei3d|") and not k.endswith("|amg")}
        np.savez_compressed(args.reference, seed=args.seed, prompts=json.dumps(prompts["nuclei3d"]), **keep)
    print(f"{'case':<16} {'n':>3}  mean IoU  min IoU")
    for case, r in report["cases"].items():
        print(f"{case:<16} {r['n']:>3}  {r['mean_iou'] or float('nan'):.4f}    {r['min_iou'] or float('nan'):.4f}")
    for mode in ("ais", "amg"):
        for name, r in report[mode].items():
            print(f"{mode.upper()} {name:<12} micro-sam objects {r['microsam_objects']:>4}, samzoo "
                  f"{r['samzoo_objects']:>4}, matched at IoU >= 0.9: {r['matched_at_0.9']:.3f} (reverse "
                  f"{r['reverse_matched_at_0.9']:.3f})" + ("  (trivial: not counted)" * r["trivial"]))


if __name__ == "__main__":
    main()
