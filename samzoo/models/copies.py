"""Copies of a module (or anything made from it), made once and remade only when its weights change."""

from __future__ import annotations

import weakref
from typing import Callable, TypeVar

from torch import nn

T = TypeVar("T")

# per module and kind of copy: the copy, with the weights it was made from
_COPIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def cached_copy(module: nn.Module, kind: str, make: Callable[[nn.Module], T]) -> T:
    """``make(module)``, kept for the next call until ``module``'s weights change.

    Making a copy can cost as much as running it once, so it is kept per module and ``kind``
    (e.g. ``"bfloat16"``); ``make`` may also return a tensor computed from the module. It is
    remade when a weight changes (e.g. between validations during training): every in-place
    update bumps a tensor's version counter, and replaced tensors change address. Modules made
    under ``torch.inference_mode`` have no version counters to watch; their copies are made
    every time.
    """
    tensors = list(module.state_dict(keep_vars=True).values())
    if any(t.is_inference() for t in tensors):
        return make(module)
    state = tuple((t.data_ptr(), t._version) for t in tensors)
    copies = _COPIES.setdefault(module, {})
    cached = copies.get(kind)
    if cached is None or cached[0] != state:
        cached = copies[kind] = (state, make(module))
    return cached[1]
