"""Host checks of fed values that ops read, in a compiled plan. Some portable ops read an
input's value where that costs no device synchronisation (``run_context``): the sparse
cross-entropy its labels, ``DropoutMaskOf`` its rate. A traced function cannot: traced,
the ops read nothing (a bad label gives a NaN row, a bad rate a NaN mask), and the values
fed to those inputs are checked here, before the call, with the portable error naming the
op: host arrays, and JAX arrays where the device reads them for free (on the CPU). A value
computed on the device is not checked: it gives the NaN. The labels' class count is the
logits' last dimension as the trace saw it (static for each cache entry).

>>> import numpy as np, xpnn as xn
>>> with xn.Graph().as_default():
...     t, logits = xn.placeholder("int64", (None,)), xn.Variable(np.zeros((2, 3), "float32"))
...     loss = xn.losses.sparse_softmax_cross_entropy(t, logits)
...     sess = xn.Session(backend="jax")
...     try:
...         sess.run(loss, {t: np.array([0, 3])})
...     except ValueError as exc:
...         print("labels must be class indices in [0, 3), got 3" in str(exc))
True
"""

from __future__ import annotations

import functools

import numpy as np

from ... import ops
from ...plan import StepFailed


class FedChecks:
    """The steps of ops that read an input's value, and which of those inputs are fed."""

    def __init__(self, plan, session):
        feeds = {feed.slot for feed in plan.feeds}
        self.xp = session.xp if session.device.reads_without_sync else None
        self.steps, self.checks, self.rates, self.seen = [], [], {}, {}
        for step in plan.steps:
            op = step.op  # a step that only infers the op's shape runs it too
            if op is None or not op.reads_values:
                continue
            if getattr(op, "labels_input", None) is not None:
                self.steps.append(step)
                if step.inputs[op.labels_input] in feeds:
                    self.checks.append((step, step.inputs[op.labels_input]))
            elif getattr(op, "rate_input", None) is not None:
                rate = step.inputs[op.rate_input]
                if rate in feeds:  # once per fed rate
                    self.rates.setdefault(rate, (step, rate, op.check_rate))

    def record(self) -> None:
        """Make the label steps note their class counts while tracing: after the kernels
        are swapped in (``kernels.swap_in``), which take the functions bound here."""
        for step in self.steps:
            step.fn = self._recording(step, step.fn)

    def _recording(self, step, fn):
        position = step.op.labels_input + 1

        @functools.wraps(fn)  # still says what it wraps (a shape-only step's describe)
        def forward(*inputs):  # while tracing: the class count of this entry
            self.seen[step] = inputs[position].shape[-1]
            return fn(*inputs)

        return forward

    def recorded(self) -> tuple:
        """What a run checks, as the last trace saw it: (step, fed slot, check), the fed
        rates, then the fed labels once per slot and class count (the loss and its gradient
        read the same labels)."""
        found = {}
        for step, slot in self.checks:
            if step in self.seen:
                found.setdefault((slot, self.seen[step]), step)
        labels = tuple((step, slot, functools.partial(check_labels, classes))
                       for (slot, classes), step in found.items())
        return tuple(self.rates.values()) + labels

    def run(self, values, checks) -> None:
        """Raise the portable error for a bad fed value, where it can be read; ``checks``:
        an entry's ``recorded()``."""
        for step, slot, check in checks:
            value = values[slot]
            try:
                if type(value) is np.ndarray:
                    check(np, value)
                elif self.xp is not None:
                    check(self.xp, value)
            except ValueError as exc:
                raise StepFailed(step, exc) from None


def check_labels(classes: int, xp, labels) -> None:
    """``ops.check_label_values``, on a NumPy array by ``check_host_labels``."""
    if xp is np:
        check_host_labels(labels, classes)
    else:
        ops.check_label_values(xp, labels, classes)


def check_host_labels(labels, classes: int) -> None:
    """``ops.check_label_values`` on a NumPy array in one pass over it where the labels are
    integers: read as unsigned, a negative label is larger than any class count.

    >>> check_host_labels(np.array([0, 2]), 3)
    >>> check_host_labels(np.array([0, -1]), 3)
    Traceback (most recent call last):
    ...
    ValueError: sparse_softmax_cross_entropy: labels must be class indices in [0, 3), got -1
    """
    kind = labels.dtype.kind
    if kind in "iu" and labels.size:
        as_unsigned = labels.view(f"u{labels.dtype.itemsize}") if kind == "i" else labels
        if as_unsigned.max() < classes:
            return
    ops.check_label_values(np, labels, classes)  # raises the error naming the bad label
