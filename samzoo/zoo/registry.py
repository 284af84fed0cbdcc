"""The model registry: one table (``registry.tsv``) of every model samzoo knows.

Published models (SAM and the micro-sam family) are downloaded from their upstream URLs and
checked against the hashes micro-sam publishes; samzoo's own model ships inside the package.
bioimage.io nicknames (e.g. ``diplomatic-bug``) are aliases of the SAM models they hold.
"""

from __future__ import annotations

import csv
import difflib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from samzoo.errors import UnknownModelError

DEFAULT_MODEL = "samzoo_tiny_lm"


@dataclass(frozen=True)
class ModelSpec:
    """One row of the registry.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"vit_b_lm"``.
    kind : str
        ``"sam"`` (image encoder + prompt encoder + mask decoder), ``"ais_decoder"``, or
        ``"sam+ais"`` (both in one file, samzoo's own format).
    architecture : str
        A key of :data:`samzoo.models.architectures.ARCHITECTURES`.
    bioimageio_nickname : str
        The bioimage.io nickname holding these weights ('' if none).
    source : str
        ``"url"`` (download) or ``"package"`` (a file inside samzoo).
    url : str
    hash : str
        ``"alg:hex"`` as pooch understands it (xxh128, sha256, md5); '' when unknown.
    filename : str
        File name in the cache, the mirror and (for ``package``) the package.
    description : str
    """

    name: str
    kind: str
    architecture: str
    bioimageio_nickname: str
    source: str
    url: str
    hash: str
    filename: str
    description: str

    @property
    def aliases(self) -> tuple[str, ...]:
        """Other names this model answers to (its bioimage.io nickname, for SAM rows)."""
        return (self.bioimageio_nickname,) if self.bioimageio_nickname and self.kind != "ais_decoder" else ()


@lru_cache(maxsize=1)
def list_models() -> tuple[ModelSpec, ...]:
    """Every model in the registry, in table order."""
    text = resources.files("samzoo.zoo").joinpath("registry.tsv").read_text(encoding="utf-8")
    return tuple(ModelSpec(**row) for row in csv.DictReader(text.splitlines(), delimiter="\t"))


def get_model_spec(name: str) -> ModelSpec:
    """The registry entry called ``name``, having it as alias, or a bioimage.io id ``nickname/version``.

    A versioned id matches only the version the registry fetches (it is part of the entry's
    URL): another version would be other weights than the name promises.

    Raises
    ------
    UnknownModelError
        With the closest known names, when nothing matches.
    """
    for spec in list_models():
        if name == spec.name or name in spec.aliases:
            return spec
    nickname, _, version = name.partition("/")
    if version and "://" not in name:
        spec = next((s for s in list_models() if s.bioimageio_nickname == nickname), None)
        if spec is not None:
            if f"/{nickname}/{version}/" in spec.url:
                return spec
            raise UnknownModelError(f"samzoo knows bioimage.io model {nickname!r} only in the version of its "
                                    f"registry entry {spec.name!r} ({spec.url}), not version {version!r}")
    known = [s.name for s in list_models()] + [a for s in list_models() for a in s.aliases]
    close = difflib.get_close_matches(name, known, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; known models: {', '.join(s.name for s in list_models())}"
    raise UnknownModelError(f"unknown model {name!r}{hint} (`samzoo models` lists them all)")


def decoder_for(spec: ModelSpec) -> ModelSpec | None:
    """The AIS decoder published for a SAM model (``<name>_decoder``), if any."""
    return next((s for s in list_models() if s.name == f"{spec.name}_decoder"), None)
