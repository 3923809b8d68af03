"""Which tensors the torch passes may write in place: only the Session's own Variable values.

The updates write Variables (and optimizer slots) in place, so a Variable's tensor must
share memory with nothing else: a new value that a portable update made as (a view of) one
of its inputs (a fed tensor, a constant, another Variable) is copied before the Session
keeps it (``own``). An in-place update must not read what another one writes: gradients
that are (views of) Variables are told apart by ``passes.live_slots``.

>>> import torch
>>> from xpnn.devices.torch import ownership
>>> grad = torch.ones(3); fresh = grad * 2
>>> ownership.own(grad, [grad]) is grad, ownership.own(fresh, [grad]) is fresh
(False, True)
"""

from __future__ import annotations

import torch


def _storage(tensor) -> int:
    return tensor.untyped_storage().data_ptr()


def own(value, inputs):
    """``value`` as the Session keeps it: a copy when it is a view, or shares memory with one
    of the update's ``inputs``; fresh results pass as they are. Never one that tracks
    gradients."""
    if not isinstance(value, torch.Tensor):
        return value
    if value.requires_grad:
        value = value.detach()
    if value._is_view() or any(
            isinstance(a, torch.Tensor) and _storage(a) == _storage(value) for a in inputs):
        return value.clone()
    return value
