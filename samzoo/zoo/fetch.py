"""Fetch model files with pooch: hash-checked, cached, and optionally from a mirror.

Where files come from, in order:

1. ``source == "package"``: the file inside the installed samzoo (no download);
2. the cache (``$SAMZOO_CACHE_DIR/models``, default the platform cache folder), re-verified;
3. the mirror, when set (``mirror=`` or ``$SAMZOO_MODEL_MIRROR``): a local folder or a base URL
   holding the files under their registry file names; used *instead of* the upstream URL;
4. the upstream URL.

pooch downloads into a temporary file next to the cache entry and moves it into place only
when its hash matches, so the cache never holds a partial or corrupt file. Fetches of the same
file are serialised by a lock file (in ``locks/`` beside the models folder): two processes
fetching the same model at once download it once, and neither can delete or replace the file
while the other is checking or returning it.
"""

from __future__ import annotations

import os
import shutil
from importlib import resources
from pathlib import Path

import filelock
import platformdirs
import pooch
import requests

from samzoo.errors import DownloadError, HashMismatchError
from samzoo.zoo.registry import ModelSpec, get_model_spec

MIRROR_ENV = "SAMZOO_MODEL_MIRROR"
CACHE_ENV = "SAMZOO_CACHE_DIR"


def cache_dir() -> Path:
    """Folder of downloaded model files: ``$SAMZOO_CACHE_DIR/models`` or the user cache folder."""
    return Path(os.environ.get(CACHE_ENV) or platformdirs.user_cache_dir("samzoo")) / "models"


def hash_matches(path: str | os.PathLike, known_hash: str) -> bool:
    """Whether a file's content has the hash ``"alg:hex"`` (pooch's ``file_hash`` does the hashing)."""
    alg, _, expected = known_hash.partition(":")
    return pooch.file_hash(str(path), alg=alg).lower() == expected.lower()


def package_file(spec: ModelSpec) -> Path:
    """Path of a ``package`` model's file inside the installed samzoo (may not exist)."""
    return Path(str(resources.files("samzoo.models").joinpath("weights", spec.filename)))


def is_cached(spec: ModelSpec) -> bool:
    """Whether the model's file is available without a download (hash not re-checked)."""
    path = package_file(spec) if spec.source == "package" else cache_dir() / spec.filename
    return path.is_file()


def fetch_model_file(model: ModelSpec | str, *, mirror: str | None = None, progress: bool = True) -> Path:
    """Return a local, hash-verified path of a registry model's file, downloading it if needed.

    Parameters
    ----------
    model : ModelSpec or str
        A registry entry or name (aliases work).
    mirror : str, optional
        A local folder or base URL to fetch from instead of the upstream URL; defaults to
        ``$SAMZOO_MODEL_MIRROR``.
    progress : bool
        Show a download progress bar.

    Raises
    ------
    DownloadError
        Not cached and not reachable (offline, no mirror, missing in the mirror).
    HashMismatchError
        The file's content is not what the registry expects; nothing is kept.
    """
    spec = get_model_spec(model) if isinstance(model, str) else model
    if spec.source == "package":
        return _package_file_verified(spec)
    mirror = mirror if mirror is not None else os.environ.get(MIRROR_ENV) or None
    try:
        # locks live beside the models folder, so that folder holds only verified model files
        # (it can be copied as a mirror as it is)
        locks = cache_dir().parent / "locks"
        locks.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(str(locks / f"{spec.filename}.lock"))
    except OSError as err:
        raise DownloadError(f"cannot use the model cache folder {cache_dir()} ({err.strerror or err}); "
                            f"set {CACHE_ENV} to a writable folder") from None
    # the lock spans check, download and return: without it, one process could delete a
    # corrupt entry just after another replaced it with a good one it is about to return
    with lock:
        return _fetch_locked(spec, mirror, progress)


def _fetch_locked(spec: ModelSpec, mirror: str | None, progress: bool) -> Path:
    target = cache_dir() / spec.filename
    if target.exists() and not hash_matches(str(target), spec.hash):
        target.unlink()  # a corrupt or stale cache entry is never returned nor kept
    url, downloader = _source(spec, mirror)
    try:
        path = pooch.retrieve(url, known_hash=spec.hash, fname=spec.filename, path=cache_dir(),
                              downloader=downloader, progressbar=progress)
    except ValueError as err:
        if "hash" in str(err).lower():
            raise HashMismatchError(f"model {spec.name!r}: the file from {url} does not match the registry hash "
                                    f"{spec.hash} ({err}); it was not kept") from None
        raise
    except (requests.exceptions.RequestException, OSError) as err:
        raise DownloadError(
            f"model {spec.name!r} is not cached and could not be fetched from {url} ({type(err).__name__}). "
            f"Online, samzoo downloads it from {spec.url}. Offline, put {spec.filename} in a folder (or serve it) and "
            f"set {MIRROR_ENV} to that folder or URL, or place it in the cache folder {cache_dir()} "
            f"(set by {CACHE_ENV})."
        ) from None
    return Path(path)


def _source(spec: ModelSpec, mirror: str | None):
    """The URL to fetch from and the pooch downloader to use."""
    if not mirror:
        return spec.url, None
    if "://" in mirror and not mirror.startswith("file://"):
        return f"{mirror.rstrip('/')}/{spec.filename}", None
    folder = Path(mirror.removeprefix("file://"))
    return str(folder / spec.filename), _copy_from_folder


def _copy_from_folder(url: str, output_file, pooch_obj, check_only: bool = False) -> bool | None:
    """A pooch downloader for a mirror folder; pooch has none for local files."""
    source = Path(url)
    if check_only:
        return source.is_file()
    if not source.is_file():
        raise FileNotFoundError(f"{source} not found in the mirror folder")
    if isinstance(output_file, (str, os.PathLike)):
        shutil.copyfile(source, output_file)
    else:
        with open(source, "rb") as f:
            shutil.copyfileobj(f, output_file)
    return None


def _package_file_verified(spec: ModelSpec) -> Path:
    path = package_file(spec)
    if not path.is_file() or not spec.hash:
        raise DownloadError(f"samzoo's own model {spec.name!r} has not been trained into this installation "
                            f"(no {spec.filename} in samzoo/models/weights); see the README's Status section")
    if not hash_matches(str(path), spec.hash):
        raise HashMismatchError(f"{path} does not match the registry hash {spec.hash}: the installation is corrupt")
    return path
