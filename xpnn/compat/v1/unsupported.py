"""What ``xpnn.compat.v1`` does not have: asking for it raises :class:`TF1NameError`, a
NotImplementedError naming the TF1 symbol and, where there is one, the xpnn way. It is an
AttributeError too, so ``hasattr``, ``getattr(tf, name, default)`` and tools that probe
modules (pytest, doctest, IDEs) work as they do on any module.

>>> import xpnn.compat.v1 as tf
>>> try:
...     tf.estimator
... except NotImplementedError as error:
...     print(str(error).split(":")[0])
tf.estimator is not in xpnn.compat.v1
"""

from __future__ import annotations

HINTS = {
    "tf.case": "not in xpnn.compat.v1; nest tf.cond",
    "tf.py_func": "ops are array-API code: subclass xn.Operation with forward(xp, ...)",
    "tf.numpy_function": "ops are array-API code: subclass xn.Operation",
    "tf.contrib": "tf.contrib is gone from TensorFlow too",
    "tf.estimator": "train with tf.Session and an optimizer's minimize",
    "tf.data.TFRecordDataset": "xpnn reads no TFRecord files; load arrays with NumPy and "
                               "use tf.data.Dataset.from_tensor_slices",
    "tf.data.TextLineDataset": "xpnn holds numbers and bools; read the file in Python and "
                               "use tf.data.Dataset.from_tensor_slices",
    "tf.data.Dataset.padded_batch": "not in xpnn.compat.v1 yet; pad in NumPy first",
    "tf.data.Dataset.interleave": "not in xpnn.compat.v1; concatenate the datasets",
    "tf.data.Dataset.flat_map": "not in xpnn.compat.v1; unbatch() flattens batches",
    "tf.data.Iterator.from_string_handle": "switch datasets with "
                                           "Iterator.from_structure and make_initializer",
    "tf.data.Iterator.string_handle": "switch datasets with Iterator.from_structure and "
                                      "make_initializer",
    "tf.summary.tensor_summary": "tf.summary.scalar, histogram, image, audio or text",
    "tf.app": "run the program as a script",
    "tf.flags": "use argparse",
    "tf.logging": "use print or the logging module",
    "tf.image": "preprocess images on the host with NumPy",
    "tf.unique": "its shape is known only at run time; do it on the host",
    "tf.dynamic_partition": "its shape is known only at run time",
    "tf.sparse_tensor_to_dense": "xpnn has dense arrays only",
    "tf.SparseTensor": "xpnn has dense arrays only",
    "tf.string": "xpnn holds numbers and bools",
    "tf.Print": "fetch the value and print it",
    "tf.print": "fetch the value and print it",
    "tf.nn.conv2d_transpose": "not implemented in xpnn yet",
    "tf.lgamma": "not implemented in xpnn yet",
    "tf.digamma": "not implemented in xpnn yet",
    "tf.math.lgamma": "not implemented in xpnn yet",
    "tf.math.digamma": "not implemented in xpnn yet",
    "tf.initializers.uniform_unit_scaling": "deprecated in TF1; tf.initializers."
                                            "variance_scaling(distribution='uniform')",
    "tf.nn.fixed_unigram_candidate_sampler": "not in xpnn.compat.v1; give nce_loss its "
                                             "sampled_values",
    "tf.nn.raw_rnn": "not in xpnn.compat.v1; tf.nn.dynamic_rnn, or a tf.while_loop",
    "tf.nn.static_bidirectional_rnn": "not in xpnn.compat.v1; use bidirectional_dynamic_rnn",
    "tf.nn.static_state_saving_rnn": "not in xpnn.compat.v1; feed the state in a placeholder",
    "tf.nn.rnn_cell.DeviceWrapper": "not in xpnn.compat.v1; a Session runs on one device",
    "tf.nn.ctc_loss": "not implemented in xpnn",
    "tf.losses.cosine_distance": "not implemented in xpnn yet",
    "tf.losses.mean_pairwise_squared_error": "not implemented in xpnn yet",
    "tf.layers.conv1d": "a 1-D convolution is tf.layers.conv2d on images of height 1",
    "tf.layers.conv2d_transpose": "not implemented in xpnn yet",
    "tf.layers.separable_conv2d": "not implemented in xpnn yet",
    "tf.layers.conv3d": "not implemented in xpnn yet",
    "tf.train.Coordinator": "xpnn has no input queues: use tf.data.Dataset iterators",
    "tf.train.start_queue_runners": "xpnn has no input queues: use tf.data.Dataset iterators",
    "tf.train.MonitoredTrainingSession": "use tf.Session and a Python loop",
    "tf.train.Supervisor": "use tf.Session and a Python loop",
    "tf.train.FtrlOptimizer": "not implemented in xpnn yet",
    "tf.train.AdadeltaOptimizer": "not implemented in xpnn yet",
    "tf.train.ProximalGradientDescentOptimizer": "not implemented in xpnn yet",
    "tf.train.SyncReplicasOptimizer": "data parallelism is xpnn.distributed's",
    "tf.train.import_meta_graph": "rebuild the graph in Python, then tf.train.Saver().restore",
}


class TF1NameError(NotImplementedError, AttributeError):
    """A TF1 name that xpnn.compat.v1 does not have."""


def message(symbol: str) -> str:
    hint = HINTS.get(symbol, "see help(xpnn.compat.v1) for every name it has")
    return f"{symbol} is not in xpnn.compat.v1: {hint}"


def module_getattr(module, prefix: str):
    """A module ``__getattr__`` raising TF1NameError for a missing public name (a plain
    AttributeError for private and dunder names)."""

    def __getattr__(name: str):
        if name.startswith("_"):
            raise AttributeError(f"module {module.__name__!r} has no attribute {name!r}")
        raise TF1NameError(message(f"{prefix}.{name}"))

    return __getattr__
