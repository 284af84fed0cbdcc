"""Ship a trained samzoo model file as the package's default model.

Copies the file into ``samzoo/models/weights/``, writes its sha256 into ``registry.tsv`` and
refuses to replace a shipped model unless the new one's held-out validation score (stored in the
file by the trainer) is higher, or ``--force`` is given.

    python scripts/ship_model.py runs/samzoo_tiny/best.safetensors [--name samzoo_tiny_lm] [--force]
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", type=Path)
    parser.add_argument("--name", default="samzoo_tiny_lm")
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args()
    size_mb = args.weights.stat().st_size / 2**20
    if size_mb > MAX_MB:
        sys.exit(f"{args.weights} is {size_mb:.1f} MB; the package takes at most {MAX_MB} MB")
    target = WEIGHTS / f"{args.name}.safetensors"
    new = _score(args.weights)
    if target.exists() and not args.force and new <= _score(target):
        sys.exit(f"not shipped: validation score {new:.4f} does not beat the shipped {_score(target):.4f}")
    WEIGHTS.mkdir(parents=True, exist_ok=True)
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
