import csv

import pytest

from samzoo.errors import UnknownModelError
from samzoo.zoo.registry import decoder_for, get_model_spec, list_models


def test_every_published_model_is_listed_exactly(shared_data):
    upstream = list(csv.DictReader(open(shared_data.parent / "upstream_models.tsv"), delimiter="\t"))
    assert len(upstream) == 24
    for row in upstream:
        spec = get_model_spec(row["name"])
        assert (spec.url, spec.hash) == (row["url"], row["hash"])
        if row["bioimageio_nickname"] and not row["name"].endswith("_decoder"):
            assert get_model_spec(row["bioimageio_nickname"]) == spec


def test_registry_names_are_unique_and_files_distinct():
    names = [s.name for s in list_models()]
    files = [s.filename for s in list_models()]
    assert len(set(names)) == len(names) and len(set(files)) == len(files)
    assert decoder_for(get_model_spec("vit_b_lm")).name == "vit_b_lm_decoder"
    assert decoder_for(get_model_spec("vit_h")) is None


def test_unknown_name_suggests_close_ones():
    with pytest.raises(UnknownModelError, match="vit_b_lm"):
        get_model_spec("vit_b_ml")


def test_versioned_bioimageio_id_matches_only_the_registry_version():
    spec = next(s for s in list_models() if s.bioimageio_nickname)
    version = spec.url.split(f"/{spec.bioimageio_nickname}/")[1].split("/")[0]
    assert get_model_spec(f"{spec.bioimageio_nickname}/{version}") == spec
    with pytest.raises(UnknownModelError, match="only in the version"):
        get_model_spec(f"{spec.bioimageio_nickname}/999.0")
