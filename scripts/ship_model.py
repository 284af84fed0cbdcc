"""Ship a trained samzoo model file as the package's default model.

Copies the file into ``samzoo/models/weights/``, writes its sha256 into ``registry.tsv`` and
refuses to replace a shipped model unless the new one's held-out validation score (stored in the
file by the trainer) is higher, or ``--force`` is given.

``--rescore`` scores both models afresh on the main training's held-out validation crops
(:func:`samzoo.training.validation.make_validation`, 24 crops of frames 16-19 and nuclei3d z 25-30)
and compares those scores; the new file is shipped with its fresh score in its metadata. Use it
for a model whose stored score is of another kind (``scripts/train_ais_decoder.py`` stores minus
the AIS loss alone) or comes from another version of the validation.

    python scripts/ship_model.py runs/samzoo_tiny/best.safetensors [--name samzoo_tiny_lm] [--force] [--rescore]
"""

from __future__ import annotations

import argparse
import csv
import io
import shutil
import sys
from pathlib import Path

import pooch

from samzoo.models.model import read_config

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / "samzoo" / "models" / "weights"
REGISTRY = REPO / "samzoo" / "zoo" / "registry.tsv"
MAX_MB = 30


def _score(path: Path) -> float:
    return float(read_config(path).training.get("validation", {}).get("score", float("-inf")))


def _rescored(new_path: Path, shipped: Path | None, tmp: Path) -> tuple[Path, float, float]:
    """Both models scored on the same validation crops; the new one re-saved with its score."""
    import torch

    from samzoo.models.load import load_model
    from samzoo.training.validation import make_validation

    sys.path.insert(0, str(REPO / "scripts"))
    from train_samzoo_tiny import VAL_FRAMES, load_pairs

    new = load_model(new_path)
    validate = make_validation(load_pairs(VAL_FRAMES, range(25, 31))[0], new.input_size, n_crops=24)
    with torch.no_grad():
        metrics = validate(new)
        old = validate(load_model(shipped))["score"] if shipped is not None else float("-inf")
    new.config.training = {**new.config.training, "validation": metrics,
                           "validation_note": "rescored by scripts/ship_model.py --rescore"}
    return new.save(tmp), metrics["score"], old


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", type=Path)
    parser.add_argument("--name", default="samzoo_tiny_lm")
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--rescore", action="store_true", help="score both models afresh on the same crops")
    args = parser.parse_args()
    size_mb = args.weights.stat().st_size / 2**20
    if size_mb > MAX_MB:
        sys.exit(f"{args.weights} is {size_mb:.1f} MB; the package takes at most {MAX_MB} MB")
    target = WEIGHTS / f"{args.name}.safetensors"
    source = args.weights
    if args.rescore:
        source, new, old = _rescored(args.weights, target if target.exists() else None,
                                     WEIGHTS / f".{args.name}.rescored.safetensors")
        print(f"rescored: new {new:.4f}, shipped {old:.4f}")
    else:
        new, old = _score(args.weights), (_score(target) if target.exists() else float("-inf"))
    if target.exists() and not args.force and new <= old:
        if args.rescore:
            source.unlink()
        sys.exit(f"not shipped: validation score {new:.4f} does not beat the shipped {old:.4f}")
    WEIGHTS.mkdir(parents=True, exist_ok=True)
    if args.rescore:
        source.replace(target)  # same folder: an atomic rename
    else:
        shutil.copyfile(args.weights, target)
    digest = f"sha256:{pooch.file_hash(str(target), alg='sha256')}"
    rows = list(csv.DictReader(REGISTRY.open(encoding="utf-8"), delimiter="\t"))
    row = next(r for r in rows if r["name"] == args.name)
    row["hash"] = digest
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), delimiter="\t", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    REGISTRY.write_text(out.getvalue(), encoding="utf-8")
    print(f"shipped {target} ({size_mb:.1f} MB, {digest}, validation score {new:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
