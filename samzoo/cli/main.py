"""Entry point of the ``samzoo`` command.

Each subcommand lives in its own module of this package and exposes two functions:
``add_parser(subparsers)`` registers its arguments, and ``run(args) -> int`` does the work.
Errors reach the user as one line on stderr and a non-zero exit code; ``--debug`` shows
the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from samzoo.errors import SamzooError, option_style

# Subcommand modules, in the order ``samzoo --help`` lists them.
SUBCOMMANDS = [
    "samzoo.cli.models_cmd",
    "samzoo.cli.fetch_cmd",
    "samzoo.cli.segment_cmd",
    "samzoo.cli.finetune_cmd",
    "samzoo.cli.evaluate_cmd",
    "samzoo.cli.track_cmd",
    "samzoo.cli.evaluate_tracking_cmd",
    "samzoo.cli.package_cmd",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="samzoo",
        description="Segment Anything for microscopy: models, segmentation, tracking.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in SUBCOMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name == module_name:  # subcommand not written yet
                continue
            raise
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if not args.debug:
        # tifffile logs its repairs of damaged files as warnings; the error message says enough
        logging.getLogger("tifffile").setLevel(logging.ERROR)
    try:
        with option_style("cli"):  # messages about parameters name them as options: --block-halo
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("samzoo: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the CLI's one place that turns errors into messages
        if args.debug:
            raise
        print(f"samzoo: {error_message(err)}", file=sys.stderr)
        return 1


def error_message(err: BaseException) -> str:
    """One line for any exception: samzoo's own, the operating system's, or unexpected ones."""
    message = " ".join(str(err).split()) or type(err).__name__
    if isinstance(err, SamzooError):
        return f"error: {message}"
    if isinstance(err, MemoryError):
        return "error: not enough memory; use smaller inputs, Zarr inputs (processed block by block) or --block"
    if isinstance(err, OSError) and err.strerror:
        where = f"{err.filename}: " if err.filename else ""
        return f"error: {where}{err.strerror}"
    return f"unexpected error ({type(err).__name__}): {message} (run `samzoo --debug ...` for the traceback)"


if __name__ == "__main__":
    sys.exit(main())
