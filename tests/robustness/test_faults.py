"""Faults outside samzoo's control: concurrent fetches, a full disk, a size limit, a read-only folder.

Each runs real processes against real conditions (a loopback HTTP server, a tiny tmpfs in a
private mount namespace, RLIMIT_FSIZE, a folder the process may not write); the checks are a
clear one-line message and no half-written output.
"""

import functools
import http.server
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pooch
import pytest
import tifffile

PAYLOAD = os.urandom(1 << 20)


def _env(cache: Path) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "SAMZOO_CACHE_DIR": str(cache), "PYTHONDONTWRITEBYTECODE": "1"}


def _cli(*args) -> list[str]:
    return [sys.executable, "-m", "samzoo", *map(str, args)]


def _assert_one_line_error(result, *needles):
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


@pytest.fixture
def slow_server(tmp_path):
    """An HTTP mirror on 127.0.0.1 that takes a second per request and counts them."""
    folder = tmp_path / "served"
    folder.mkdir()
    requests = []

    class Slow(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            time.sleep(1.0)  # long enough for both clients to be fetching at the same time
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Slow, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()


def test_two_processes_fetching_one_model(tmp_path, slow_server):
    folder, url, requests = slow_server
    (folder / "shared_model.pt").write_bytes(PAYLOAD)
    (tmp_path / "ref").write_bytes(PAYLOAD)
    known = "sha256:" + pooch.file_hash(str(tmp_path / "ref"), alg="sha256")
    script = textwrap.dedent(f"""
        from samzoo.zoo.fetch import fetch_model_file
        from samzoo.zoo.registry import ModelSpec
        spec = ModelSpec("shared_model", "sam", "vit_t", "", "url", "http://127.0.0.1:9/x.pt", {known!r},
                         "shared_model.pt", "test")
        print(fetch_model_file(spec, mirror={url!r}, progress=False))
    """)
    cache = tmp_path / "cache"
    processes = [subprocess.Popen([sys.executable, "-c", script], env=_env(cache), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in processes]
    assert all(p.returncode == 0 for p in processes), outputs
    paths = {out.strip() for out, _ in outputs}
    assert paths == {str(cache / "models" / "shared_model.pt")}
    assert (cache / "models" / "shared_model.pt").read_bytes() == PAYLOAD
    assert os.listdir(cache / "models") == ["shared_model.pt"]  # no temporaries, no second copy
    assert len(requests) == 1  # the second process waited for the first and used its file


@pytest.fixture
def frame_file(tmp_path, shared_data):
    path = tmp_path / "in" / "frame.tif"
    path.parent.mkdir()
    tifffile.imwrite(path, tifffile.imread(shared_data / "Fluo_Hela_02_img.tif", key=0))
    return path


def _private_tmpfs_works() -> bool:
    if not shutil.which("unshare"):
        return False
    with tempfile.TemporaryDirectory() as d:
        check = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=8k tmpfs {d}"],
                               capture_output=True)
    return check.returncode == 0


@pytest.mark.skipif(not _private_tmpfs_works(), reason="no private mount namespaces here (unshare -rm)")
def test_full_disk(tmp_path, frame_file):
    """A 8 KiB tmpfs, mounted in a private namespace: the label file does not fit."""
    full = tmp_path / "full"
    full.mkdir()
    script = " ; ".join([
        f"mount -t tmpfs -o size=8k tmpfs {full}",
        " ".join(_cli("segment", frame_file, "-o", full / "labels.tif", "--mode", "classical")) + f" 2> {tmp_path}/e1",
        f"echo rc=$? >> {tmp_path}/log",
        " ".join(_cli("segment", frame_file.parent, "-o", full / "batch", "--mode", "classical", "--format", "zarr",
                      "--no-progress")) + f" 2> {tmp_path}/e2",
        f"echo rc=$? >> {tmp_path}/log",
        f"find {full} -mindepth 1 | sort > {tmp_path}/left",
    ])
    subprocess.run(["unshare", "-rm", "sh", "-c", script], env=_env(tmp_path / "cache"), timeout=300, check=True)
    assert (tmp_path / "log").read_text().split() == ["rc=1", "rc=1"]
    for name, needles in (("e1", ["labels.tif", "No space left on device"]),
                          ("e2", ["1 of 1 images failed", "No space left on device"])):
        err = (tmp_path / name).read_text()
        assert "Traceback" not in err and err.count("\n") == 1 and all(n in err for n in needles), err
    # nothing half-written: only the batch's folder and its job record
    left = (tmp_path / "left").read_text().split()
    assert left == [str(full / "batch"), str(full / "batch" / ".samzoo-job.json")]


def test_file_size_limit(tmp_path, frame_file):
    """RLIMIT_FSIZE makes the kernel refuse the write part-way (EFBIG): the same path as a full disk."""
    out = tmp_path / "out"
    out.mkdir()

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))

    result = subprocess.run(_cli("segment", frame_file, "-o", out / "labels.tif", "--mode", "classical"),
                            env=_env(tmp_path / "cache"), capture_output=True, text=True, preexec_fn=limit,
                            timeout=300)
    _assert_one_line_error(result, "cannot write", "labels.tif", "File too large", "no partial file")
    assert os.listdir(out) == []


def _run_with_read_only(folder: Path, command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run ``command`` while ``folder`` cannot be written.

    Root may write into any folder whatever its mode, so as root the folder is bind-mounted
    read-only in a private mount namespace (the mount vanishes with the process).
    """
    if os.geteuid() != 0:
        os.chmod(folder, 0o555)
        return subprocess.run(command, env=_env(cwd / "cache"), capture_output=True, text=True, cwd=cwd, timeout=300)
    if not _private_tmpfs_works():
        pytest.skip("running as root without private mount namespaces: no way to make a folder read-only")
    script = f"mount --bind {folder} {folder} && mount -o remount,bind,ro {folder} && exec " + " ".join(
        f"'{c}'" for c in command)
    return subprocess.run(["unshare", "-rm", "sh", "-c", script], env=_env(cwd / "cache"), capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def test_read_only_output_folder(tmp_path, frame_file):
    """Refused before any work, in one line: segment and track, one input and a batch."""
    from samzoo.tracking.simulate import simulate_movie

    readonly = tmp_path / "readonly"
    readonly.mkdir()
    movies, masks = tmp_path / "movies", tmp_path / "masks"
    movies.mkdir(), masks.mkdir()
    movie = simulate_movie(n_frames=3, shape=(64, 64), n_cells=3, seed=0)
    tifffile.imwrite(movies / "m.tif", movie.images, photometric="minisblack")
    tifffile.imwrite(masks / "m.tif", movie.masks, photometric="minisblack")
    track = ["--axes", "tyx", "--linker", "overlap", "--no-progress"]
    denied = "Permission denied" if os.geteuid() != 0 else "Read-only file system"
    for args, needles in (
        (["segment", frame_file, "-o", readonly / "labels.tif"], ["cannot write", "labels.tif", denied]),
        (["segment", frame_file.parent, "-o", readonly / "batch", "--no-progress"], ["cannot write", "batch", denied]),
        (["segment", frame_file.parent, "-o", readonly, "--no-progress"], ["cannot write", ".samzoo-job.json", denied]),
        (["track", movies / "m.tif", "--masks", masks / "m.tif", "-o", readonly / "tracks", *track],
         ["cannot write", "tracks", denied]),
        (["track", movies, "--masks", masks, "-o", readonly, *track], ["cannot write", ".samzoo-job.json", denied]),
    ):
        mode = ["--mode", "classical"] if args[0] == "segment" else []
        result = _run_with_read_only(readonly, _cli(*args, *mode), tmp_path)
        _assert_one_line_error(result, *needles)
    assert os.listdir(readonly) == []
