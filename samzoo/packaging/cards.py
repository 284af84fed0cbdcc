"""Model cards: ``model_cards/<name>.md``, one per registry model, read by the package builder.

A card is Markdown with a YAML front matter block holding the facts a bioimage.io package
needs and the registry also knows (so a test can check that the two agree)::

    ---
    name: vit_b_lm                 # the registry name
    architecture: vit_b
    bioimageio_nickname: diplomatic-bug
    url: https://...               # registry url and hash (published models)
    hash: xxh128:...
    decoder: {url: ..., hash: ...} # the registry's <name>_decoder row, if any
    description: one line
    license: CC-BY-4.0             # SPDX id
    authors: [{name: ..., affiliation: ...}]
    cite: [{text: ..., doi: ...}]  # or url
    tags: [...]
    ---
    # body: training data, metrics, intended use, limitations

The body becomes the package documentation (with the package's own sections added).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from samzoo.errors import PackageError

CARDS_ENV = "SAMZOO_MODEL_CARDS"
REQUIRED = ("name", "description", "license", "authors", "cite", "tags")


@dataclass
class ModelCard:
    """One model card.

    Attributes
    ----------
    meta : dict
        The front matter ({} when the card has none).
    body : str
        The Markdown after the front matter.
    path : Path or None
    """

    meta: dict = field(default_factory=dict)
    body: str = ""
    path: Path | None = None


def cards_dir() -> Path:
    """``$SAMZOO_MODEL_CARDS``, else ``model_cards/`` of the source checkout samzoo runs from."""
    return Path(os.environ.get(CARDS_ENV) or Path(__file__).resolve().parents[2] / "model_cards")


def parse_card(text: str, path: Path | None = None) -> ModelCard:
    """Split a card into front matter and body.

    Examples
    --------
    >>> parse_card("---\\nname: x\\n---\\n# X\\n").meta
    {'name': 'x'}
    """
    if not text.startswith("---"):
        return ModelCard({}, text, path)
    parts = text.split("\n---", 1)
    if len(parts) != 2:
        raise PackageError(f"model card {path}: the front matter block is not closed by '---'")
    try:
        meta = yaml.safe_load(parts[0].lstrip("-")) or {}
    except yaml.YAMLError as err:
        raise PackageError(f"model card {path}: invalid YAML front matter: {err}") from None
    if not isinstance(meta, dict):
        raise PackageError(f"model card {path}: the front matter is not a mapping")
    return ModelCard(meta, parts[1].lstrip("-").lstrip("\n"), path)


def read_card(name: str, folder: str | os.PathLike | None = None) -> ModelCard | None:
    """The card of registry model ``name``, or None when there is none."""
    path = Path(folder or cards_dir()) / f"{name}.md"
    if not path.is_file():
        return None
    return parse_card(path.read_text(encoding="utf-8"), path)


def missing_fields(card: ModelCard) -> list[str]:
    """The required front matter fields a card lacks (:data:`REQUIRED`)."""
    return [key for key in REQUIRED if not card.meta.get(key)]
