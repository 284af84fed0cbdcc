"""``samzoo models``: the registry as a table."""

from __future__ import annotations

import argparse
from urllib.parse import urlparse

from samzoo.zoo import DEFAULT_MODEL, cache_dir, is_cached, list_models
from samzoo.zoo.fetch import package_file
from samzoo.zoo.registry import decoder_for


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("models", help="list the models samzoo knows",
                                   description="List every model in the registry: name, kind, architecture, AIS "
                                               "decoder (samzoo's own, micro-sam's UNETR fetched with the model, "
                                               "or none), source, size, cached.")
    parser.set_defaults(func=run)


def _size(spec) -> str:
    path = package_file(spec) if spec.source == "package" else cache_dir() / spec.filename
    return f"{path.stat().st_size / 2**20:.1f} MB" if path.is_file() else "-"


def _ais(spec) -> str:
    """Whether the model can segment automatically with a decoder (``--mode ais``), and with which."""
    if spec.kind == "sam+ais":
        return "samzoo"
    if spec.kind == "sam" and decoder_for(spec) is not None:
        return "micro-sam"
    return "-"


def run(args: argparse.Namespace) -> int:
    rows = [("name", "kind", "architecture", "ais", "source", "size", "cached")]
    for spec in list_models():
        source = "package" if spec.source == "package" else urlparse(spec.url).netloc
        name = spec.name + (" (default)" if spec.name == DEFAULT_MODEL else "")
        rows.append((name, spec.kind, spec.architecture, _ais(spec), source, _size(spec),
                     "yes" if is_cached(spec) else "no"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    print(f"\ncache: {cache_dir()}  (set SAMZOO_CACHE_DIR; SAMZOO_MODEL_MIRROR for an offline mirror)")
    return 0
