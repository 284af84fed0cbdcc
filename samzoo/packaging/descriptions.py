"""Pieces shared by the AIS and prompt package descriptions: metadata, files with hashes, weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from samzoo.models.model import SamzooModel
from samzoo.packaging.reader import SAMZOO_MODULE, sha256_of

ENVIRONMENT = """\
name: samzoo
channels:
  - conda-forge
  - nodefaults
dependencies:
  - python>=3.11
  - pytorch=={torch}
  - pip
  - pip:
      - samzoo=={samzoo}
"""
SAM_CITATION = {"text": "Kirillov et al. Segment Anything. ICCV 2023", "doi": "10.1109/ICCV51070.2023.00371"}
MICRO_SAM_CITATION = {"text": "Archit et al. Segment Anything for Microscopy. Nature Methods 2025",
                      "doi": "10.1038/s41592-024-02580-4"}


def default_metadata(name: str) -> dict:
    """Package metadata for a model without a card (e.g. a finetuned checkpoint)."""
    return {"description": f"{name}: Segment Anything for microscopy, packaged by samzoo",
            "authors": [{"name": "samzoo developers"}], "cite": [SAM_CITATION, MICRO_SAM_CITATION],
            "license": "MIT", "tags": ["segment-anything", "instance-segmentation", "microscopy", "samzoo"]}


def spec_metadata(meta: dict, kind: str) -> dict:
    """ModelDescr keyword arguments from card metadata."""
    from bioimageio.spec.model import v0_5 as spec

    def cite(entry: dict):
        if entry.get("doi"):
            return spec.CiteEntry(text=entry["text"], doi=spec.Doi(entry["doi"]))
        return spec.CiteEntry(text=entry["text"], url=spec.HttpUrl(entry["url"]))

    def person(entry: dict, keys: tuple[str, ...]) -> dict:
        # GitHub user names were checked by samzoo.packaging.people.people_metadata
        return {k: entry[k] for k in keys if entry.get(k)}

    authors = [spec.Author(**person(a, ("name", "affiliation", "github_user", "email", "orcid")))
               for a in meta["authors"]]
    tags = list(dict.fromkeys([*meta["tags"], "samzoo", "automatic-segmentation" if kind == "ais" else "prompts"]))
    maintainers = [spec.Maintainer(**person(m, ("name", "affiliation", "github_user", "email")))
                   for m in meta.get("maintainers") or [] if m.get("github_user")]
    return dict(description=meta["description"], authors=authors, cite=[cite(c) for c in meta["cite"]],
                license=spec.LicenseId(meta["license"]), tags=tags, maintainers=maintainers)


def file_descr(path: Path):
    from bioimageio.spec.model import v0_5 as spec

    return spec.FileDescr(source=path, sha256=spec.Sha256(sha256_of(path)))


def tensor_files(folder: Path, name: str, array: np.ndarray) -> dict:
    """``test_tensor`` (.npy, exact) and ``sample_tensor`` (.tif, for people and viewers) of one tensor."""
    import tifffile

    test, sample = folder / f"test_{name}.npy", folder / f"sample_{name}.tif"
    np.save(test, array)
    tifffile.imwrite(sample, np.ascontiguousarray(np.atleast_2d(array.squeeze())), photometric="minisblack")
    return {"test_tensor": file_descr(test), "sample_tensor": file_descr(sample)}


def architecture_kwargs(model: SamzooModel) -> dict:
    c = model.config
    return {"architecture": c.architecture, "input_size": c.input_size, "ais_decoder": c.ais_decoder,
            "name": c.name}


def state_dict_weights(network: torch.nn.Module, callable_name: str, kwargs: dict, folder: Path):
    from bioimageio.spec.model import v0_5 as spec

    path = folder / "weights.pt"
    # float32, plain tensors only: loads with torch.load(weights_only=True) everywhere
    torch.save({k: v.detach().float().clone() if v.is_floating_point() else v.detach().clone()
                for k, v in network.state_dict().items()}, path)
    # the architecture is samzoo's: a consumer creating the described environment gets samzoo too
    environment = folder / "environment.yaml"
    environment.write_text(ENVIRONMENT.format(torch=torch.__version__.split("+")[0], samzoo=samzoo_version()),
                           encoding="utf-8")
    return spec.PytorchStateDictWeightsDescr(
        source=path, sha256=spec.Sha256(sha256_of(path)), pytorch_version=spec.Version(torch.__version__),
        architecture=spec.ArchitectureFromLibraryDescr(callable=spec.Identifier(callable_name),
                                                       import_from=SAMZOO_MODULE, kwargs=kwargs),
        dependencies=file_descr(environment))


def samzoo_version() -> str:
    """The installed samzoo's version (the package metadata, else the module's)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("samzoo")
    except PackageNotFoundError:
        import samzoo

        return samzoo.__version__
