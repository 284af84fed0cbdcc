"""Exceptions raised by samzoo.

Every error that a user can cause (bad input, unknown model, failed download, unsafe
checkpoint) is a :class:`SamzooError`, so that the CLI can print it as one line and
scripts can catch them all with one ``except``.

Messages about a parameter name it as the caller knows it: ``tile`` when a script called a
function, ``--tile`` when the command line did (:func:`option`, :func:`option_style`).
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from typing import Any, Callable, Iterator

_OPTION_STYLE: contextvars.ContextVar[str] = contextvars.ContextVar("samzoo_option_style", default="python")


def option(name: str) -> str:
    """How a message names the parameter ``name``: ``block_halo`` for scripts, ``--block-halo`` on the command line.

    Examples
    --------
    >>> option("block_halo")
    'block_halo'
    >>> with option_style("cli"):
    ...     option("block_halo")
    '--block-halo'
    """
    return "--" + name.replace("_", "-") if _OPTION_STYLE.get() == "cli" else name


@contextmanager
def option_style(style: str) -> Iterator[None]:
    """Within this block, messages name parameters in ``style``: ``"python"`` (the default) or ``"cli"``."""
    if style not in ("python", "cli"):
        raise ValueError(f"unknown option style {style!r}")
    token = _OPTION_STYLE.set(style)
    try:
        yield
    finally:
        _OPTION_STYLE.reset(token)


def in_option_style(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` bound to the current option style, for work that runs in other threads or processes (dask)."""
    return _Styled(_OPTION_STYLE.get(), fn)


class _Styled:
    """A picklable callable that calls ``fn`` in a given option style."""

    def __init__(self, style: str, fn: Callable[..., Any]):
        self.style, self.fn = style, fn

    def __call__(self, *args, **kwargs):
        with option_style(self.style):
            return self.fn(*args, **kwargs)


class SamzooError(Exception):
    """Base class of all errors samzoo raises on purpose."""


class InputError(SamzooError, ValueError):
    """The input data is unusable: wrong axes, dtype, shape, empty, or malformed."""


class UnknownModelError(SamzooError, KeyError):
    """A model name that is neither in the registry nor a usable path."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DownloadError(SamzooError, RuntimeError):
    """A model file could not be fetched (offline, no mirror, server error)."""


class HashMismatchError(SamzooError, RuntimeError):
    """A file's content does not match the hash the registry expects."""


class UnsafeCheckpointError(SamzooError, RuntimeError):
    """A checkpoint that cannot be loaded without unpickling arbitrary objects."""


class CheckpointError(SamzooError, RuntimeError):
    """A checkpoint whose contents do not fit the requested architecture."""


class OutputError(SamzooError, OSError):
    """An output could not be written (read-only folder, full disk, ...)."""


class BatchError(SamzooError, RuntimeError):
    """Some items of a batch failed; the finished ones are kept and a rerun resumes."""


class PackageError(SamzooError, RuntimeError):
    """A bioimage.io model package that cannot be built, read or validated."""
