"""TF1's placement and configuration, accepted as documented no-ops: ``tf.device(...)``
places nothing (every op of a Session runs on its one device: xpnn's default, or
``tf.use_device``'s), ``tf.ConfigProto``/``tf.GPUOptions`` hold their fields for a
``tf.Session(config=...)`` that ignores them; and ``tf.__version__``, ``"1.15.0+xpnn"``:
TF 1.15's API (``startswith("1.")`` holds), its local part saying it is xpnn's.

>>> import xpnn.compat.v1 as tf
>>> config = tf.ConfigProto(allow_soft_placement=True, log_device_placement=False)
>>> config.gpu_options.allow_growth = True
>>> with tf.device("/gpu:0"):
...     x = tf.constant(2.0) * 3.0
>>> float(tf.Session(config=config).run(x)), tf.__version__.startswith("1.")
(6.0, True)
"""

from __future__ import annotations

import contextlib

VERSION = "1.15.0+xpnn"


@contextlib.contextmanager
def device(device_name_or_function):
    """TF1's ``tf.device``: accepted and ignored (xpnn places the whole graph on the
    Session's device, which ``tf.use_device`` or ``tf.Session(device=...)`` chooses)."""
    yield


class _Fields:
    """Keyword fields kept as attributes, unknown ones refused as TF's protos refuse them."""

    FIELDS: dict = {}

    def __init__(self, **fields):
        unknown = set(fields) - set(self.FIELDS)
        if unknown:
            raise ValueError(f"tf.{type(self).__name__} has no field(s) {sorted(unknown)}; "
                             f"its fields: {sorted(self.FIELDS)}")
        for key, default in self.FIELDS.items():
            value = fields.get(key, default)
            setattr(self, key, value() if callable(value) and key not in fields else value)

    def __repr__(self):
        fields = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.FIELDS)
        return f"{type(self).__name__}({fields})"


class GPUOptions(_Fields):
    """TF1's GPU options (``allow_growth``, ``per_process_gpu_memory_fraction``...): kept,
    not used."""

    FIELDS = {"allow_growth": False, "per_process_gpu_memory_fraction": 0.0,
              "visible_device_list": "", "allocator_type": "", "force_gpu_compatible": False}


class ConfigProto(_Fields):
    """TF1's Session configuration: kept, not used (a Session runs on its one device)."""

    FIELDS = {"gpu_options": GPUOptions, "allow_soft_placement": False,
              "log_device_placement": False, "device_count": dict,
              "intra_op_parallelism_threads": 0, "inter_op_parallelism_threads": 0,
              "use_per_session_threads": False, "operation_timeout_in_ms": 0,
              "graph_options": None, "isolate_session_state": False}
