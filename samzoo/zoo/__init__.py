"""The model zoo: the registry of every model samzoo knows, and fetching their files."""

from samzoo.zoo.fetch import cache_dir, fetch_model_file, is_cached
from samzoo.zoo.registry import DEFAULT_MODEL, ModelSpec, decoder_for, get_model_spec, list_models

__all__ = ["cache_dir", "fetch_model_file", "is_cached", "DEFAULT_MODEL", "ModelSpec", "decoder_for",
           "get_model_spec", "list_models"]
