"""Loading bioimage.io model packages back into a :class:`~samzoo.models.model.SamzooModel`.

A package is a zip file or a folder holding ``rdf.yaml`` (or ``bioimageio.yaml``). samzoo reads
it without running any code from it:

- zips are unpacked member by member, refusing absolute paths, ``..``, links and oversized
  content (zip-slip and zip-bomb safe), into ``$SAMZOO_CACHE_DIR/packages/<sha256 of the zip>``;
- the YAML is parsed with ``yaml.safe_load``;
- the ``pytorch_state_dict`` weights are sha256-checked against the hash the package declares,
  then read with ``torch.load(weights_only=True)`` (no arbitrary unpickling).

samzoo's own packages (architecture ``samzoo.packaging.networks``) load with their AIS decoder.
micro-sam's packages (architecture ``PredictorAdaptor``) load as SAM without an AIS decoder,
because micro-sam's UNETR decoder has another layout than samzoo's.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

import yaml

from samzoo.errors import CheckpointError, PackageError, UnsafeCheckpointError
from samzoo.models.architectures import ARCHITECTURES
from samzoo.models.checkpoint import read_checkpoint
from samzoo.models.model import ModelConfig, SamzooModel

RDF_NAMES = ("rdf.yaml", "bioimageio.yaml")
SAMZOO_MODULE = "samzoo.packaging.networks"
MAX_UNPACKED_BYTES = 20 * 2**30  # far above any SAM package (vit_h: ~2.5 GB per weights file)


def sha256_of(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(2**20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_package(path: str | os.PathLike) -> bool:
    """Whether ``path`` looks like a bioimage.io package: a ``.zip`` file, a folder with an RDF, or an RDF."""
    path = Path(path)
    if path.is_file():
        return path.suffix.lower() == ".zip" or path.name in RDF_NAMES or path.name.endswith(".bioimageio.yaml")
    return path.is_dir() and any((path / name).is_file() for name in RDF_NAMES)


def _packages_cache() -> Path:
    import platformdirs

    return Path(os.environ.get("SAMZOO_CACHE_DIR") or platformdirs.user_cache_dir("samzoo")) / "packages"


def _safe_member_path(name: str) -> PurePosixPath:
    """The relative path of a zip member, or an error when it could escape the target folder."""
    posix = PurePosixPath(name.replace("\\", "/"))
    if posix.is_absolute() or ".." in posix.parts or (posix.parts and ":" in posix.parts[0]):
        raise UnsafeCheckpointError(f"zip member {name!r} points outside the package folder; refusing to unpack it")
    return posix


def safe_extract(zip_path: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Unpack a zip into ``target`` (created), refusing anything that could write elsewhere.

    Raises
    ------
    UnsafeCheckpointError
        A member with an absolute path, ``..``, a drive letter, a symbolic link, or a total
        uncompressed size above :data:`MAX_UNPACKED_BYTES`.
    PackageError
        Not a zip file.
    """
    target = Path(target)
    try:
        archive = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile as err:
        raise PackageError(f"{zip_path} is not a zip file: {err}") from None
    with archive:
        members = archive.infolist()
        if sum(m.file_size for m in members) > MAX_UNPACKED_BYTES:
            raise UnsafeCheckpointError(f"{zip_path} unpacks to more than {MAX_UNPACKED_BYTES} bytes; refusing it")
        root = target.resolve()
        for member in members:
            relative = _safe_member_path(member.filename)
            if stat.S_ISLNK(member.external_attr >> 16):
                raise UnsafeCheckpointError(f"zip member {member.filename!r} is a symbolic link; refusing to unpack it")
            destination = (root / relative).resolve()
            if destination != root and root not in destination.parents:  # belt and braces
                raise UnsafeCheckpointError(f"zip member {member.filename!r} resolves outside {root}")
            if member.is_dir():
                destination.mkdir(parents=True, exist_ok=True)
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as source, open(destination, "wb") as out:
                shutil.copyfileobj(source, out)
    return target


def package_folder(path: str | os.PathLike) -> Path:
    """The folder of an unpacked package: the folder itself, or a zip unpacked into the cache.

    The cache entry is named after the zip's sha256 and renamed into place when complete, so
    a half-unpacked package is never read and an unchanged zip is unpacked once.
    """
    path = Path(path)
    if path.is_dir():
        return path
    if path.name in RDF_NAMES or path.name.endswith(".bioimageio.yaml"):
        return path.parent
    entry = _packages_cache() / sha256_of(path)
    if entry.is_dir():
        return entry
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=entry.parent, prefix=f".{entry.name}."))
    try:
        safe_extract(path, tmp / "pkg")
        try:
            os.replace(tmp / "pkg", entry)
        except OSError:
            if not entry.is_dir():  # not "another process finished first"
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return entry


def read_rdf(path: str | os.PathLike) -> tuple[dict, Path]:
    """The parsed RDF of a package (zip, folder or RDF file) and the folder its files are in."""
    path = Path(path)
    folder = package_folder(path)
    rdf_file = path if path.is_file() and path.suffix.lower() != ".zip" else next(
        (folder / n for n in RDF_NAMES if (folder / n).is_file()), None)
    if rdf_file is None:
        raise PackageError(f"{path} holds no {' or '.join(RDF_NAMES)}; it is not a bioimage.io package")
    try:
        rdf = yaml.safe_load(rdf_file.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise PackageError(f"{rdf_file} is not valid YAML: {err}") from None
    if not isinstance(rdf, dict) or rdf.get("type") != "model":
        raise PackageError(f"{rdf_file} does not describe a bioimage.io model")
    return rdf, folder


def _local_file(folder: Path, source: str) -> Path:
    """A file named by the RDF, which must lie inside the package (no URLs, no escaping paths)."""
    if "://" in str(source):
        raise PackageError(f"the package's weights are a URL ({source}); samzoo only loads weights inside the package")
    relative = _safe_member_path(str(source))
    file = folder / relative
    if not file.is_file():
        raise PackageError(f"the package lacks its weights file {source}")
    return file


def load_package(path: str | os.PathLike) -> SamzooModel:
    """Load a bioimage.io package's ``pytorch_state_dict`` weights into a :class:`SamzooModel`.

    Parameters
    ----------
    path : path
        A package zip, an unpacked package folder, or its ``rdf.yaml``.

    Returns
    -------
    SamzooModel in eval mode; ``weights_hash`` is ``sha256:<hash of the weights file>``.

    Raises
    ------
    PackageError, HashMismatchError, UnsafeCheckpointError, CheckpointError
    """
    rdf, folder = read_rdf(path)
    weights = (rdf.get("weights") or {}).get("pytorch_state_dict")
    if not weights:
        raise PackageError(f"{path} has no pytorch_state_dict weights, the only format samzoo loads")
    if not weights.get("sha256"):
        raise PackageError(f"{path} does not declare the sha256 of its weights; samzoo loads only hash-checked weights")
    file = _local_file(folder, weights["source"])
    expected = f"sha256:{weights['sha256']}"
    architecture = weights.get("architecture") or {}
    kwargs = dict(architecture.get("kwargs") or {})
    name = str(rdf.get("name", ""))
    if architecture.get("import_from") == SAMZOO_MODULE:
        config = ModelConfig(kwargs["architecture"], int(kwargs["input_size"]), kwargs.get("ais_decoder"),
                             name=kwargs.get("name") or name)
        model = SamzooModel(config)
        state = read_checkpoint(file, expected_hash=expected)
        try:
            model.load_state_dict({k: v for k, v in state.items() if hasattr(v, "shape")}, strict=True)
        except RuntimeError as err:
            raise CheckpointError(f"{file} does not match the architecture its package declares: {err}") from None
    elif architecture.get("callable") == "PredictorAdaptor" and kwargs.get("model_type") in ARCHITECTURES:
        # micro-sam's export: a SAM state dict, possibly wrapped with its own decoder under model_state
        # (decoder_state), or with its instance decoder as a file of the package (``*decoder*.pt``)
        from samzoo.models.sam_files import load_sam_file

        decoder = next(iter(sorted(Path(folder).glob("*decoder*.pt"))), None)
        model = load_sam_file(file, decoder=decoder, weights_hash=expected, name=name)
        if model.config.architecture != kwargs["model_type"]:
            raise CheckpointError(f"{file} holds a {model.config.architecture} model, but its package declares "
                                  f"{kwargs['model_type']}")
    else:
        raise PackageError(f"{path}: samzoo cannot load the architecture {architecture.get('callable')!r} "
                           f"from {architecture.get('import_from') or architecture.get('source')!r}; it loads "
                           "samzoo's own packages and micro-sam's SAM packages")
    model.weights_hash = expected
    return model.eval()
