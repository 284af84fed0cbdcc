"""Exceptions raised by samzoo.

Every error that a user can cause (bad input, unknown model, failed download, unsafe
checkpoint) is a :class:`SamzooError`, so that the CLI can print it as one line and
scripts can catch them all with one ``except``.
"""


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
