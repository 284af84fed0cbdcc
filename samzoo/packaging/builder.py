"""Build bioimage.io model packages (spec 0.5) of any samzoo model.

Two packages per model, each a zip written with ``bioimageio.spec.save_bioimageio_package``:

- ``<name>_ais.bioimageio.zip`` -- one image in, foreground + centre/boundary distance maps out
  (:class:`~samzoo.packaging.networks.AISNetwork`), any image size; ``pytorch_state_dict``,
  TorchScript and ONNX weights, so that consumers without samzoo run it. Only for models with an AIS decoder.
- ``<name>_prompt.bioimageio.zip`` -- image + optional prompts in; masks, IoU scores and the
  embedding out (:class:`~samzoo.packaging.networks.PromptNetwork`), micro-sam's layout.

Test tensors and covers come from a real image (:mod:`samzoo.packaging.samples`), metadata
from the model card (:mod:`samzoo.packaging.cards`), and every weight file's sha256 is in the RDF. The two
descriptions are built in :mod:`samzoo.packaging.ais_package` and :mod:`samzoo.packaging.prompt_package`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from samzoo.errors import PackageError
from samzoo.models.model import SamzooModel
from samzoo.packaging import samples
from samzoo.packaging.ais_package import build_ais_description
from samzoo.packaging.cards import ModelCard, read_card
from samzoo.packaging.descriptions import default_metadata
from samzoo.packaging.people import people_metadata
from samzoo.packaging.prompt_package import build_prompt_description

KINDS = ("ais", "prompt")


@dataclass
class BuiltPackage:
    """One written package.

    Attributes
    ----------
    kind : {"ais", "prompt"}
    path : Path
        The zip file.
    test_status : str or None
        ``bioimageio test``'s status ("passed", "valid-format", "failed"); None when not tested.
    test_report : str
        The failed checks and warnings of that test, one per line ('' when none or not tested).
    """

    kind: str
    path: Path
    test_status: str | None = None
    test_report: str = ""


def validate_package(path: str | os.PathLike) -> tuple[str, str]:
    """Run ``bioimageio test`` (bioimageio.core's ``test_model``) on a package, offline, on the CPU.

    Returns
    -------
    status : str
        "passed" or "failed" (or "valid-format").
    report : str
        The failed checks and the warnings, one per line.
    """
    from bioimageio.core import test_model

    summary = test_model(str(path), devices=["cpu"])
    lines = []
    for detail in summary.details:
        lines += [f"{detail.name}: {e.msg}" for e in detail.errors]
        lines += [f"warning: {detail.name}: {' '.join(w.msg.split())}" for w in detail.warnings
                  if "all elements agree" not in w.msg]  # reproduced outputs are reported as warnings too
    return str(summary.status), "\n".join(lines)


def build_packages(model: SamzooModel, output_dir: str | os.PathLike, *, name: str | None = None,
                   image: np.ndarray | None = None, labels: np.ndarray | None = None,
                   image_description: str = "", kinds: tuple[str, ...] = KINDS, card: ModelCard | None = None,
                   test: bool = True, authors: list[dict] | None = None,
                   maintainers: list[dict] | None = None) -> list[BuiltPackage]:
    """Write the bioimage.io packages of ``model`` into ``output_dir``.

    Parameters
    ----------
    model : SamzooModel
    output_dir : path
        Created if needed; packages are ``<name>_ais.bioimageio.zip`` and ``<name>_prompt.bioimageio.zip``.
    name : str, optional
        The model's registry name (selects its card); default ``model.name``.
    image : ndarray (H, W) or (H, W, C), optional
        A real image for test tensors and covers; default: a held-out frame of the shared HeLa movie.
    labels : ndarray (H, W), optional
        Instances of ``image`` for the prompt package's test prompts.
    image_description : str
        Where ``image`` came from, for the documentation.
    kinds : tuple of {"ais", "prompt"}
        Which packages. Models without an AIS decoder get no AIS package (asking for it alone
        is an error).
    card : ModelCard, optional
        Default: ``model_cards/<name>.md`` when it exists, else generic metadata.
    test : bool
        Run ``bioimageio test`` on each package.
    authors, maintainers : list of dict, optional
        ``{"name": ..., "github_user": ...}`` (also ``affiliation``, ``email``, ``orcid``), replacing
        the card's; see :mod:`samzoo.packaging.people` (bioimage.io wants a maintainer, or an
        author, with a GitHub user).

    Returns
    -------
    list of BuiltPackage
    """
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise PackageError(f"unknown package kind(s) {sorted(unknown)}; choose from {', '.join(KINDS)}")
    name = name or model.name
    card = card if card is not None else read_card(name) or ModelCard()
    meta = people_metadata({**default_metadata(name), **card.meta}, authors, maintainers)
    if image is None:
        image, image_description = samples.default_test_image(), "frame 17 of the Cell Tracking Challenge " \
            "Fluo-N2DL-HeLa sequence 02 (held out from samzoo's training)"
    image_description = image_description or "a user-supplied image"
    if "ais" in kinds and model.ais_decoder is None and len(kinds) > 1:
        kinds = tuple(k for k in kinds if k != "ais")  # nothing to package: the prompt package still is
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    from bioimageio.spec import save_bioimageio_package

    model = model.eval()
    built = []
    for kind in kinds:
        with tempfile.TemporaryDirectory(prefix=f"samzoo-package-{kind}-") as tmp:
            folder = Path(tmp)
            if kind == "ais":
                descr = build_ais_description(model, image, meta, card.body, folder, image_description)
            else:
                descr = build_prompt_description(model, image, meta, card.body, folder, image_description, labels)
            target = output_dir / f"{name}_{kind}.bioimageio.zip"
            partial = output_dir / f".{target.name}.partial.zip"
            save_bioimageio_package(descr, output_path=partial)
            shutil.move(partial, target)  # a package file is either complete or absent
        result = BuiltPackage(kind, target)
        if test:
            result.test_status, result.test_report = validate_package(target)
        built.append(result)
    return built


__all__ = ["BuiltPackage", "KINDS", "build_packages", "build_ais_description", "build_prompt_description",
           "validate_package", "default_metadata"]
