"""String tensors, as far as xpnn has them: ``tf.constant`` of strings is a node held on the
host (xpnn's arrays hold numbers and bools), fetched as bytes, for ``tf.summary.text``."""

from __future__ import annotations

import numpy as np

from ...graph import Node


class TextConstant(Node):
    """``tf.constant`` of strings: held on the host (xpnn's arrays hold numbers and bools),
    for ``tf.summary.text``; fetched, it gives bytes as TF1's string tensors do."""

    kind = "constant"
    host_inputs = ()

    def __init__(self, value, name=None):
        super().__init__(None, name)
        strings = np.asarray(value)
        self.strings = np.array([s if isinstance(s, bytes) else str(s).encode()
                                 for s in strings.reshape(-1).tolist()],
                                dtype=object).reshape(strings.shape)
        self.shape, self.dtype = strings.shape, "string"

    def from_host(self, values):
        return self.strings[()] if self.strings.ndim == 0 else self.strings.copy()
