"""Label range checks in a compiled plan. The portable sparse cross-entropy reads its labels
where that costs no device synchronisation (``host_reads``), which a traced function cannot:
traced, the ops read nothing (a bad label gives a NaN row), and labels fed from the host are
checked here, on the host, before the call, with the portable error naming the op.

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

import numpy as np

from .. import ops
from ..plan import StepFailed, bind


class LabelChecks:
    """The (step, labels' feed slot, class count) of each op that reads its labels."""

    def __init__(self, plan, session):
        feeds = {feed.slot for feed in plan.feeds}
        self.checks = []
        for step in plan.steps:
            op = step.op  # a step that only infers the op's shape runs it too
            if op is None or not op.reads_values:
                continue
            bind(step, session.device, session.uniform, host_reads=False)
            labels = step.inputs[op.labels_input]
            logits = op.inputs[op.labels_input + 1]
            classes = logits.shape[-1] if logits.shape else None
            if labels in feeds and isinstance(classes, int):
                self.checks.append((step, labels, classes))

    def run(self, values) -> None:
        """Raise the portable error for a fed host array holding a label out of range."""
        for step, slot, classes in self.checks:
            labels = values[slot]
            if type(labels) is np.ndarray:
                try:
                    ops.check_label_values(np, labels, classes)
                except ValueError as exc:
                    raise StepFailed(step, exc) from None
