"""Silence third-party progress bars and chatter (traccuracy, trackastra) during a call."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings


@contextlib.contextmanager
def quiet(*loggers: str):
    """Hide stderr (tqdm bars), warnings and INFO logs of ``loggers`` inside the block.

    Exceptions still propagate; only output is dropped, so a CLI prints its own result lines.
    """
    previous = {name: logging.getLogger(name).level for name in loggers}
    for name in loggers:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for name, level in previous.items():
            logging.getLogger(name).setLevel(level)
