"""mkdocs hooks: pages generated from the code, so they cannot go stale.

- ``reference/zoo.md``: the model zoo table, from the registry (``samzoo/zoo/registry.tsv``);
- ``reference/cli.md``: every ``samzoo`` subcommand's ``--help``, from the argument parser.

They are generated in memory (``File.generated``) and never written into ``docs/``. Nav entries
whose page does not exist yet (guides other engineers are writing) are left out with a note in
the build log instead of failing the strict build.
"""

from __future__ import annotations

import logging
import os

from mkdocs.structure.files import File

log = logging.getLogger("mkdocs.hooks.samzoo")
GENERATED = ("reference/zoo.md", "reference/cli.md")


def _existing(nav, docs_dir: str):
    """The nav without entries whose markdown page is missing (generated pages count as present)."""
    kept = []
    for entry in nav:
        if isinstance(entry, dict):
            (title, target), = entry.items()
            if isinstance(target, list):
                target = _existing(target, docs_dir)
                if target:
                    kept.append({title: target})
            elif target in GENERATED or "://" in target or os.path.exists(os.path.join(docs_dir, target)):
                kept.append(entry)
            else:
                log.info("samzoo docs: %s is not written yet; left out of the nav", target)
        else:
            kept.append(entry)
    return kept


def on_config(config):
    config["nav"] = _existing(config["nav"], config["docs_dir"])
    return config


def zoo_page() -> str:
    from samzoo.zoo.registry import DEFAULT_MODEL, list_models

    rows = ["| name | kind | architecture | bioimage.io nickname | source | description |",
            "|---|---|---|---|---|---|"]
    for spec in list_models():
        name = f"**{spec.name}** (default)" if spec.name == DEFAULT_MODEL else f"`{spec.name}`"
        source = "in the package" if spec.source == "package" else f"[download]({spec.url})"
        rows.append(f"| {name} | {spec.kind} | `{spec.architecture}` | {spec.bioimageio_nickname or '-'} | "
                    f"{source} | {spec.description} |")
    return "\n".join([
        "# Model zoo",
        "",
        "Generated from samzoo's registry (`samzoo/zoo/registry.tsv`) when the docs are built; "
        "`samzoo models` prints the same list with the local cache status.",
        "",
        "Published models are downloaded on first use and checked against the hashes micro-sam publishes; "
        "see [Working offline](../offline.md) for machines without internet. bioimage.io nicknames work "
        "wherever a model name does. Kinds: `sam` is an image encoder with SAM's prompt encoder and mask "
        "decoder; `ais_decoder` the matching automatic-segmentation decoder (micro-sam's UNETR, fetched "
        "with its `sam` model, so `--mode ais` works with every `sam` row that has one); `sam+ais` both in one "
        "file (samzoo's own format). Files of your own (SAM checkpoints, micro-sam models and training "
        "checkpoints) load by path: see [Coming from micro-sam](../guides/micro_sam.md).",
        "",
        *rows,
        "",
    ])


def cli_page() -> str:
    import argparse

    from samzoo.cli.main import build_parser

    os.environ["COLUMNS"] = "100"  # argparse wraps help at the terminal width: make it stable
    parser = build_parser()
    parts = ["# Command line reference", "",
             "Generated from the argument parser when the docs are built. Every error is one line on "
             "stderr with exit code 1; `samzoo --debug COMMAND ...` shows the traceback instead.", "",
             "```text", parser.format_help().rstrip(), "```", ""]
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subparsers.choices.items():
        parts += [f"## samzoo {name}", "", "```text", sub.format_help().rstrip(), "```", ""]
    return "\n".join(parts)


def on_files(files, config):
    for path, make in (("reference/zoo.md", zoo_page), ("reference/cli.md", cli_page)):
        files.append(File.generated(config, path, content=make()))
    return files
