"""``samzoo fetch NAME``: download (or copy from a mirror) and verify one model file."""

from __future__ import annotations

import argparse

from samzoo.zoo import fetch_model_file


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("fetch", help="download and verify a model",
                                   description="Fetch a registry model into the cache and print its local path.")
    parser.add_argument("name", help="registry name or bioimage.io nickname (see `samzoo models`)")
    parser.add_argument("--mirror", help="local folder or base URL to fetch from instead of upstream")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print(fetch_model_file(args.name, mirror=args.mirror))
    return 0
