"""Batches on dask.distributed: many files or many tiles, resumable, every result written atomically.

The contract of a batch (:func:`run_batch`):

- one *work unit* per item; ``work_fn(item, out_path)`` computes it and writes ``out_path``
  atomically (e.g. with :func:`samzoo.io.write.atomic_path`), so an output that exists is a
  complete output;
- a rerun skips every item whose output exists, so a job killed at any moment (even by
  SIGKILL) and run again ends with exactly the outputs of an uninterrupted run, provided
  ``work_fn`` is deterministic;
- a job record (:func:`check_job_record`) in the output folder names the settings that made
  the outputs, so a rerun with other settings is refused instead of silently mixing results.

The work runs on a local dask.distributed cluster by default (one worker in this process,
threads, so a model is loaded once and shared), or on an existing cluster given by its
scheduler address. :func:`samzoo.segment_files` (``samzoo segment``) uses it for folders of files
and for images larger than memory (one unit per block); :func:`samzoo.track_files`
(``samzoo track``) for many movies (one unit per movie, its output a folder written atomically).
"""

from __future__ import annotations

import glob
import json
import logging
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from tqdm import tqdm

from samzoo.errors import BatchError, InputError, SamzooError, in_option_style

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".zarr")
JOB_RECORD = ".samzoo-job.json"


@dataclass
class BatchReport:
    """What :func:`run_batch` did.

    Attributes
    ----------
    done : list of Path
        Outputs computed by this run.
    skipped : list of Path
        Outputs that existed already (finished by an earlier run) and were not recomputed.
    results : dict of Path -> object
        What ``work_fn`` returned for each output in ``done`` (e.g. counts and warnings, which
        a worker in another process cannot print for the caller).
    """

    done: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    results: dict[Path, Any] = field(default_factory=dict)


def expand_inputs(patterns: Sequence[str | os.PathLike]) -> list[Path]:
    """Every input image named by files, folders and glob patterns, in a stable order.

    Parameters
    ----------
    patterns : sequence of str or path
        A file (a ``.zarr`` folder counts as one file), a folder (its images, not recursive)
        or a glob pattern such as ``"imgs/*.tif"``.

    Returns
    -------
    list of Path, without duplicates; a folder's and a pattern's matches sorted by name.

    Raises
    ------
    InputError
        A name that matches nothing, or no images at all.
    """
    found: list[Path] = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir() and path.suffix.lower() != ".zarr":
            matches = sorted(p for p in path.iterdir() if _is_image(p))
            if not matches:
                raise InputError(f"{path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        elif path.exists():
            matches = [path]
        elif glob.has_magic(str(pattern)):
            matches = sorted(p for p in map(Path, glob.glob(str(pattern))) if _is_image(p))
            if not matches:
                raise InputError(f"{pattern!s} matches no images")
        else:
            raise InputError(f"{path} does not exist")
        found.extend(matches)
    unique = list(dict.fromkeys(found))
    if not unique:
        raise InputError("no input images given")
    return unique


def _is_image(path: Path) -> bool:
    # hidden files are skipped: they are other tools' (and our own atomic writes') temporaries
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def output_paths(inputs: Sequence[Path], folder: str | os.PathLike, suffix: str) -> list[Path]:
    """One output per input: ``folder / (input stem + suffix)``.

    Raises
    ------
    InputError
        Two inputs with the same stem (they would overwrite each other's output).
    """
    folder = Path(folder)
    paths = [folder / (Path(p).stem + suffix) for p in inputs]
    seen: dict[Path, Path] = {}
    for source, out in zip(inputs, paths):
        if out in seen:
            raise InputError(f"{seen[out]} and {source} would both write {out}; rename one of them")
        seen[out] = source
    return paths


def check_job_record(folder: str | os.PathLike, settings: dict[str, Any], *, overwrite: bool = False) -> None:
    """Refuse to resume a job in ``folder`` that was started with other settings; then record them.

    A resumed job must produce the same results as an uninterrupted one, which only holds when
    the finished outputs were made with the same settings (model, mode, tiling, ...).

    Parameters
    ----------
    folder : path
        The job's output folder (created if missing).
    settings : dict
        JSON-serialisable settings that determine the outputs.
    overwrite : bool
        Replace a differing record instead of refusing (the caller then removes the old
        outputs, or they would be skipped as finished).

    Raises
    ------
    InputError
        The folder holds a job record with other settings.
    """
    from samzoo.io.write import atomic_path

    folder = Path(folder)
    record = folder / JOB_RECORD
    text = json.dumps(settings, sort_keys=True, indent=1, default=str)
    if record.is_file() and not overwrite:
        try:
            old = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = None
        if old != json.loads(text):
            changed = sorted(k for k in set(settings) | set(old or {})
                             if (old or {}).get(k) != json.loads(text).get(k))
            raise InputError(f"{folder} holds results of a job with other settings ({', '.join(changed) or 'unreadable record'}); "
                             "use another output folder, or --overwrite to recompute everything")
    with atomic_path(record) as tmp:
        tmp.write_text(text, encoding="utf-8")


def remove_leftovers(out_path: Path) -> None:
    """Delete temporaries (``.NAME.*``) that a killed run left next to ``out_path``."""
    parent = out_path.parent
    if not parent.is_dir():
        return
    for stale in parent.glob(f".{glob.escape(out_path.name)}.*"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


@contextmanager
def open_client(scheduler: Any = None, workers: int = 1) -> Iterator[Any]:
    """A dask.distributed client for :func:`run_batch`.

    Parameters
    ----------
    scheduler : None, str or distributed.Client
        ``None``: a local cluster, one worker in this process with ``workers`` threads (models
        are loaded once and shared). ``"synchronous"``: no dask, one item after the other
        (for debugging). An address such as ``"tcp://10.0.0.5:8786"``: an existing cluster;
        its workers need samzoo installed and must see the input and output paths. A Client
        is used as it is and not closed.
    workers : int
        Threads of the local cluster.
    """
    if scheduler == "synchronous":
        yield None
        return
    import distributed

    if isinstance(scheduler, distributed.Client):
        yield scheduler
        return
    # distributed logs worker starts at INFO and every failed task with its traceback at ERROR;
    # run_batch reports failures itself, in one message, so the log would only repeat them as noise
    logging.getLogger("distributed").setLevel(logging.CRITICAL)
    if scheduler is None:
        cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=max(int(workers), 1), processes=False,
                                           dashboard_address=None)
        client = distributed.Client(cluster)
        try:
            yield client
        finally:
            client.close()
            cluster.close()
        return
    try:
        client = distributed.Client(str(scheduler), timeout="10s")
    except (OSError, TimeoutError) as err:
        raise SamzooError(f"cannot reach the dask scheduler at {scheduler}: {err}") from None
    try:
        yield client
    finally:
        client.close()


def run_batch(items: Sequence[Any], work_fn: Callable[[Any, Path], Any], out_paths: Sequence[str | os.PathLike], *,
              scheduler: Any = None, workers: int = 1, progress: bool = True, desc: str = "items",
              unit: str = "item") -> BatchReport:
    """Run ``work_fn(item, out_path)`` for every item whose output does not exist yet.

    Parameters
    ----------
    items : sequence
        Work units (file paths, tiles, ...). With a remote scheduler they and ``work_fn`` are
        sent to the workers (cloudpickle), so they should be small.
    work_fn : callable
        Computes one unit and writes ``out_path`` atomically; its return value (small and
        picklable) is kept in :attr:`BatchReport.results`. It runs in the caller's option style
        (:func:`samzoo.errors.option_style`), so its messages name parameters as the caller does.
    out_paths : sequence of path
        One per item, all different.
    scheduler, workers
        See :func:`open_client`.
    progress : bool
        A progress bar counting finished units (skipped ones count as done).
    desc, unit : str
        Progress bar label and unit name, e.g. ``"tiles"``, ``"tile"``.

    Returns
    -------
    BatchReport

    Raises
    ------
    BatchError
        Some units failed; the others ran to the end and their outputs are kept, so a rerun
        only does the failed ones. The message names how many failed, the first error and the
        other failed units.

    Examples
    --------
    >>> def square(x, out):                                           # doctest: +SKIP
    ...     with atomic_path(out) as tmp:
    ...         np.save(tmp, x ** 2)
    >>> run_batch([1, 2], square, ["a.npy", "b.npy"])                 # doctest: +SKIP
    """
    out_paths = [Path(p) for p in out_paths]
    if len(out_paths) != len(items):
        raise ValueError(f"{len(items)} items but {len(out_paths)} output paths")
    if len(set(out_paths)) != len(out_paths):
        raise ValueError("two items have the same output path")
    report = BatchReport()
    work_fn = in_option_style(work_fn)
    todo = []
    for item, out in zip(items, out_paths):
        if out.exists():
            report.skipped.append(out)
        else:
            remove_leftovers(out)  # a killed run's temporaries: never read, just clutter
            todo.append((item, out))
    failures: list[tuple[str, str]] = []  # (output name, error)
    bar = tqdm(total=len(items), initial=len(report.skipped), desc=desc, unit=unit, disable=not progress)
    try:
        with open_client(scheduler, workers) if todo else _nothing() as client:
            for out, error, value in _execute(client, work_fn, todo):
                if error is None:
                    report.done.append(out)
                    report.results[out] = value
                else:
                    failures.append((out.name, error))
                bar.update(1)
    finally:
        bar.close()
    if failures:
        # name every failed unit (not just the first), so the user knows which inputs to look at
        others = [name for name, _ in failures[1:]]
        also = f"; also failed: {', '.join(others[:10])}{' ...' if len(others) > 10 else ''}" if others else ""
        raise BatchError(f"{len(failures)} of {len(items)} {unit}s failed ({len(report.done) + len(report.skipped)} "
                         f"finished and kept; a rerun does only the rest). First: {': '.join(failures[0])}{also}")
    return report


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


def _message(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text if isinstance(err, SamzooError) else f"{type(err).__name__}: {text}"


def _execute(client, work_fn, todo) -> Iterator[tuple[Path, str | None, Any]]:
    """Yield ``(out_path, None or error message, work_fn's return value)`` as units finish."""
    if client is None:
        for item, out in todo:
            try:
                value = work_fn(item, out)
                yield out, None, value
            except Exception as err:  # noqa: BLE001 - one bad item must not stop the others
                yield out, _message(err), None
        return
    import distributed

    futures = {client.submit(work_fn, item, out, pure=False): out for item, out in todo}
    try:
        for future in distributed.as_completed(futures):
            try:
                value = future.result()
                yield futures[future], None, value
            except Exception as err:  # noqa: BLE001 - collected and reported together
                yield futures[future], _message(err), None
    finally:
        client.cancel(list(futures))
