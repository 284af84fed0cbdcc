"""The real fetch path (pooch) against mirrors: a folder and an HTTP server on 127.0.0.1."""

import dataclasses
import functools
import http.server
import threading

import pooch
import pytest

from samzoo.errors import DownloadError, HashMismatchError
from samzoo.zoo.fetch import cache_dir, fetch_model_file, is_cached
from samzoo.zoo.registry import ModelSpec

PAYLOAD = b"pretend these are SAM weights\n" * 1000


def _spec(tmp_path, content=PAYLOAD, alg="xxh128", url="http://127.0.0.1:9/unreachable/model.pt"):
    ref = tmp_path / "reference.bin"
    ref.write_bytes(content)
    return ModelSpec("test_model", "sam", "vit_t", "", "url", url,
                     f"{alg}:{pooch.file_hash(str(ref), alg=alg)}", "test_model.pt", "a test entry")


@pytest.fixture
def http_mirror(tmp_path):
    """Serve a folder on an ephemeral loopback port."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_folder_mirror(tmp_path, monkeypatch):
    spec = _spec(tmp_path)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / spec.filename).write_bytes(PAYLOAD)
    monkeypatch.setenv("SAMZOO_MODEL_MIRROR", str(mirror))
    assert not is_cached(spec)
    path = fetch_model_file(spec, progress=False)
    assert path.read_bytes() == PAYLOAD and path.parent == cache_dir()
    assert is_cached(spec)
    (mirror / spec.filename).unlink()
    assert fetch_model_file(spec, progress=False) == path  # from the cache now


def test_http_mirror_and_sha256(tmp_path, http_mirror):
    folder, url = http_mirror
    spec = _spec(tmp_path, alg="sha256")
    (folder / spec.filename).write_bytes(PAYLOAD)
    assert fetch_model_file(spec, mirror=url, progress=False).read_bytes() == PAYLOAD


def test_http_hash_mismatch_keeps_nothing(tmp_path, http_mirror):
    folder, url = http_mirror
    spec = _spec(tmp_path)
    (folder / spec.filename).write_bytes(PAYLOAD + b"tampered")
    with pytest.raises(HashMismatchError, match="test_model"):
        fetch_model_file(spec, mirror=url, progress=False)
    assert not any(cache_dir().iterdir())


def test_folder_hash_mismatch_keeps_nothing(tmp_path):
    spec = _spec(tmp_path)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / spec.filename).write_bytes(b"corrupt")
    with pytest.raises(HashMismatchError):
        fetch_model_file(spec, mirror=str(mirror), progress=False)
    assert not (cache_dir() / spec.filename).exists()


def test_corrupt_cache_entry_is_replaced(tmp_path):
    spec = _spec(tmp_path)
    cache_dir().mkdir(parents=True)
    (cache_dir() / spec.filename).write_bytes(b"half a file")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / spec.filename).write_bytes(PAYLOAD)
    assert fetch_model_file(spec, mirror=str(mirror), progress=False).read_bytes() == PAYLOAD


def test_offline_error_names_everything(tmp_path):
    spec = _spec(tmp_path)
    with pytest.raises(DownloadError) as err:
        fetch_model_file(spec, progress=False)
    message = str(err.value)
    for expected in ("test_model", spec.url, "SAMZOO_MODEL_MIRROR", "SAMZOO_CACHE_DIR"):
        assert expected in message
    # a stale/corrupt cache entry is removed, not left behind, even offline
    cache_dir().mkdir(parents=True, exist_ok=True)
    (cache_dir() / spec.filename).write_bytes(b"stale")
    with pytest.raises(DownloadError):
        fetch_model_file(spec, progress=False)
    assert not (cache_dir() / spec.filename).exists()


def test_mirror_folder_missing_file_is_a_download_error(tmp_path):
    spec = dataclasses.replace(_spec(tmp_path))
    with pytest.raises(DownloadError, match="SAMZOO_MODEL_MIRROR"):
        fetch_model_file(spec, mirror=str(tmp_path / "empty"), progress=False)
