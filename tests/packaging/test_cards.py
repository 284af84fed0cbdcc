"""The registry and the model cards never disagree."""

import importlib.util
from pathlib import Path

import pytest

from samzoo.packaging.cards import cards_dir, missing_fields, parse_card, read_card
from samzoo.zoo.registry import decoder_for, list_models

REPO = Path(__file__).resolve().parents[2]
MODELS = [s for s in list_models() if s.kind != "ais_decoder"]  # decoders are on their SAM model's card


def test_cards_folder_is_the_repos():
    assert cards_dir() == REPO / "model_cards"


@pytest.mark.parametrize("spec", MODELS, ids=lambda s: s.name)
def test_every_registry_model_has_a_card(spec):
    card = read_card(spec.name)
    assert card is not None, f"model_cards/{spec.name}.md is missing"
    for section in ("Training data", "Metrics", "Intended use", "Limitations"):
        assert section.lower() in card.body.lower(), f"{spec.name}'s card has no '{section}' section"


@pytest.mark.parametrize("spec", MODELS, ids=lambda s: s.name)
def test_card_facts_match_the_registry(spec):
    card = read_card(spec.name)
    if card is None:
        pytest.fail(f"model_cards/{spec.name}.md is missing")
    if spec.source == "url":  # published models: the card carries every fact the package needs
        assert not missing_fields(card), f"{spec.name}: missing {missing_fields(card)}"
    meta = card.meta
    for key in ("name", "architecture", "kind", "url", "hash"):
        if key in meta:
            assert meta[key] == getattr(spec, key), f"{spec.name}: card says {key}={meta[key]!r}"
    if "bioimageio_nickname" in meta:
        assert (meta["bioimageio_nickname"] or "") == spec.bioimageio_nickname
    decoder = decoder_for(spec)
    if "decoder" in meta or (decoder is not None and spec.source == "url"):
        assert decoder is not None and meta.get("decoder") == {"name": decoder.name, "url": decoder.url,
                                                                "hash": decoder.hash}


def test_no_card_without_a_registry_model():
    names = {s.name for s in MODELS}
    stray = [p.name for p in cards_dir().glob("*.md") if p.stem not in names and p.stem.lower() != "readme"]
    assert not stray, f"cards of models that are not in the registry: {stray}"


def test_generated_cards_are_up_to_date():
    spec_ = importlib.util.spec_from_file_location("make_model_cards", REPO / "scripts" / "make_model_cards.py")
    module = importlib.util.module_from_spec(spec_)
    spec_.loader.exec_module(module)
    for spec in MODELS:
        if spec.source == "url":
            assert read_card(spec.name).path.read_text(encoding="utf-8") == module.card_text(spec), \
                f"model_cards/{spec.name}.md is stale: run scripts/make_model_cards.py"


def test_parse_card():
    card = parse_card("---\nname: x\nlicense: MIT\n---\n# X\n\nbody\n")
    assert card.meta == {"name": "x", "license": "MIT"} and card.body.startswith("# X")
    assert parse_card("# no front matter\n").meta == {}
    assert missing_fields(card) == ["description", "authors", "cite", "tags"]
