"""TensorFlow 1 over xpnn: ``import xpnn.compat.v1 as tf`` runs TF 1.x tutorial programs
unchanged. A thin layer over xpnn's own graph, ops, autodiff and Session (no second engine):
TF1's names, argument orders, defaults and dtypes.

>>> import numpy as np
>>> import xpnn.compat.v1 as tf
>>> tf.reset_default_graph()
>>> x = tf.placeholder(tf.float32, [None, 2], name="x")
>>> W = tf.Variable(tf.zeros([2, 1]), name="W")
>>> loss = tf.reduce_mean(tf.square(tf.matmul(x, W) - 1.0))
>>> train = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
>>> with tf.Session() as sess:
...     sess.run(tf.global_variables_initializer())
...     for _ in [0] * 100:  # (the doctest runs among tf's names: range is tf.range)
...         _, value = sess.run([train, loss], {x: np.ones((4, 2))})
...     print("%.6f" % value, sess.run(W).ravel().round(3))
0.000000 [0.5 0.5]

Where it differs from TF1 (each is said again where it applies):

- Random tensors (``random_normal``, ``truncated_normal``, ``random_uniform``,
  ``random_shuffle``) and random initializers are ops that draw anew at every run, as TF1's,
  and as TF1 the graph's and the op's seeds fix the sequence each Session starts: two
  Sessions give the same draws. They are drawn on the host with NumPy's PCG64, not TF's
  Philox: identical on every backend (and compiled or not), other numbers than TF's. Where
  neither seed is set they draw from the Session's generator. Dropout masks come from the
  Session's generator, seeded by the graph's seed; ``tf.nn.dropout(seed=)`` is not used.
- A Variable's initial value is computed when it is made; ``global_variables_initializer``
  is a real op that sets every Variable back to it: a random initial value (one that reads
  no other Variable) is drawn anew at each run of it, the first run in a Session giving the
  values it was made with where a seed is set. Fetching a Variable before it runs gives the
  initial value (TF1 raises FailedPreconditionError).
- A run computes everything first and writes Variables last: a value fetched in the same
  run as an update is the value from before it (as TF1 gives for a training step and its
  loss). Under ``control_dependencies`` a node reads the new value of a Variable that the
  block's updates write, as TF1 does; gradients made there read what their forward read.
- ``AdamOptimizer`` keeps its beta powers per Variable (``w/adam_beta1_power``), TF1 once
  per graph (``beta1_power``); the other slots have TF1's names (``w/Adam``, ``w/Adam_1``).
- A node's ``name`` is its op name (``"x"``, not ``"x:0"``); ``"x:0"`` finds it by
  ``get_tensor_by_name`` and in fetches and feeds. ``x.shape`` is a tuple;
  ``x.get_shape()`` a TensorShape with ``as_list()``.
- ``tf.data``'s ``shuffle`` draws its order from NumPy's PCG64, not TF's Philox: a seed
  gives the same order in every Session and on every backend, not TF's order.
- ``Session(config=...)`` and ``target`` are accepted and ignored; the Session runs on
  xpnn's default device, ``tf.use_device(...)``'s, or its own ``device=``/``backend=``;
  ``tf.device(...)`` places nothing.
- ``tf.nn.nce_loss``/``sampled_softmax_loss`` without ``sampled_values=`` and the
  candidate samplers draw their classes from xpnn's generator: TF1's distributions, other
  classes than TF's.
- ``tf.boolean_mask``, ``tf.where(condition)`` and ``tf.segment_sum`` have a length known
  at run time: on JAX a plan with one runs op by op instead of compiled.
- ``tf.keras`` holds ``initializers`` only. ``tf.initializers`` has TF1's names (zeros,
  ones, constant, random_normal, random_uniform, truncated_normal, variance_scaling,
  glorot_uniform, glorot_normal, he_normal, he_uniform, lecun_normal, lecun_uniform,
  orthogonal, identity, global_variables, local_variables, variables, tables_initializer);
  ``tf.keras.initializers`` those and their CamelCase classes, with Keras's defaults
  (stddev 0.05, ±0.05) for random_normal, random_uniform and truncated_normal.
- ``tf.device(...)``, ``tf.ConfigProto``, ``tf.GPUOptions`` are accepted and do nothing
  (``xpnn.compat.v1.config``); ``tf.__version__`` is ``"1.15.0+xpnn"``.
- ``tf.erf`` is computed portably (a series near 0, a Chebyshev fit of erfc beyond):
  within 1e-15 of the exact value in float64.
- An IndexedSlices (the gradient of gather / embedding_lookup, whose rows alone Momentum,
  RMSProp and Adagrad update, as TF1) is made dense by ``convert_to_tensor``, by Python
  arithmetic and by the ops that convert their arguments; an op that takes only nodes
  refuses it: ``tf.convert_to_tensor`` it first. GradientDescent adds its repeated rows up
  before the update (TF1 subtracts them one by one: rounding apart).
- Shapes given as tensors (``tf.reshape(x, [tf.shape(x)[0], -1])``, ``tf.zeros``,
  ``tf.fill``, ``tf.tile``, ``tf.range``, ``tf.random_*``) work on every backend; a static
  shape may know more than TF1's (that reshape of (None, 4, 5) is (None, 20), TF1 says
  (None, None)). A fed or computed value used as a shape makes a JAX plan run op by op.
- String tensors are only ``tf.constant`` of strings, held on the host (fetched as bytes),
  for ``tf.summary.text``; ``help(tf.summary)`` says where summaries differ.
- Anything else not listed below raises NotImplementedError naming the TF1 symbol and the
  xpnn way (``tf.keras.layers``, ``tf.estimator``, ``tf.nn.raw_rnn``...).

Every name (tf.nn, tf.losses, tf.train and tf.layers list theirs):

- dtypes: DType, as_dtype, float16, half, float32, float64, double, int8, int16, int32,
  int64, uint8, uint16, bool
- graphs: Graph, Tensor, Operation, TensorShape, get_default_graph, reset_default_graph,
  name_scope, GraphKeys, get_collection, get_collection_ref, add_to_collection,
  add_to_collections, control_dependencies, group, no_op, tuple, set_random_seed, newaxis,
  disable_eager_execution, disable_v2_behavior, enable_resource_variables,
  executing_eagerly, enable_eager_execution
- sessions: Session, InteractiveSession, get_default_session, use_device
- placement: device, ConfigProto, GPUOptions
- values: constant, convert_to_tensor, zeros, ones, fill, zeros_like, ones_like, range,
  placeholder, placeholder_with_default, cast, to_float, to_double, to_int32, to_int64,
  identity, stop_gradient, random_normal, truncated_normal, random_uniform, random_shuffle
- variables: Variable, global_variables, trainable_variables, local_variables,
  model_variables, global_variables_initializer, variables_initializer,
  initialize_all_variables, local_variables_initializer, tables_initializer,
  is_variable_initialized, assign, assign_add, assign_sub, variable_scope, VariableScope,
  get_variable, get_variable_scope, AUTO_REUSE, moving_average_variables
- initializers: zeros_initializer, ones_initializer, constant_initializer,
  random_normal_initializer, truncated_normal_initializer, random_uniform_initializer,
  variance_scaling_initializer, glorot_uniform_initializer, glorot_normal_initializer,
  orthogonal_initializer
- math: add, subtract, multiply, divide, truediv, realdiv, scalar_mul, add_n, matmul, pow,
  maximum, minimum, negative, abs, sign, square, sqrt, rsqrt, reciprocal, exp, log,
  sigmoid, tanh, floor, ceil, round, squared_difference, equal, not_equal, greater,
  greater_equal, less, less_equal, logical_and, logical_or, logical_xor, logical_not,
  reduce_sum, reduce_mean, reduce_max, reduce_min, reduce_prod, reduce_all, reduce_any,
  reduce_logsumexp, argmax, argmin, clip_by_value, clip_by_norm, clip_by_global_norm,
  global_norm, gradients
- sparse: IndexedSlices
- functions: sin, cos, tan, asin, acos, atan, atan2, sinh, cosh, asinh, acosh, atanh,
  log1p, expm1, erf, is_nan, is_inf, is_finite, floordiv, floor_div, floormod, mod,
  truncatediv, truncatemod, softsign, segment_sum, boolean_mask, div, div_no_nan,
  divide_no_nan, log_sigmoid
- structure: concat, stack, unstack, split, gather, one_hot, where, where_v2, squeeze,
  expand_dims, tile, pad, shape, size, rank, reshape, transpose, slice, reverse
- sequences: gather_nd, scatter_nd, unsorted_segment_sum, sequence_mask, cumsum, einsum,
  tensordot
- loops: cond, while_loop, scan, foldl, foldr, map_fn, TensorArray
- summaries: Summary
- modules: nn, losses, train, layers, math, initializers, keras, data, errors, summary,
  metrics
"""

import sys as _sys

from ...graph import Graph, Node, TensorShape, get_default_session
from . import data, errors, layers, losses, math, metrics, nn, summary, train
from .array_ops import (
    concat,
    cumsum,
    einsum,
    expand_dims,
    gather,
    gather_nd,
    one_hot,
    pad,
    rank,
    reshape,
    reverse,
    scatter_nd,
    sequence_mask,
    shape,
    size,
    slice,
    split,
    squeeze,
    stack,
    tensordot,
    tile,
    transpose,
    unsorted_segment_sum,
    unstack,
    where,
    where_v2,
)
from .config import VERSION as __version__
from .config import ConfigProto, GPUOptions, device
from .control_flow import TensorArray, cond, foldl, foldr, map_fn, scan, while_loop
from .dtypes import (
    DType,
    as_dtype,
    bool,
    double,
    float16,
    float32,
    float64,
    half,
    int8,
    int16,
    int32,
    int64,
    uint8,
    uint16,
)
from .elementary import *  # noqa: F403 - sin ... segment_sum, listed in its __all__
from .events import Summary
from .graphs import (
    GraphKeys,
    add_to_collection,
    add_to_collections,
    control_dependencies,
    disable_eager_execution,
    disable_v2_behavior,
    enable_eager_execution,
    enable_resource_variables,
    executing_eagerly,
    get_collection,
    get_collection_ref,
    get_default_graph,
    group,
    name_scope,
    no_op,
    reset_default_graph,
    set_random_seed,
)
from .graphs import tensor_tuple as tuple
from .indexed_slices import IndexedSlices
from .initializer_names import initializers, keras, orthogonal_initializer
from .initializers import (
    constant_initializer,
    glorot_normal_initializer,
    glorot_uniform_initializer,
    ones_initializer,
    random_normal_initializer,
    random_uniform_initializer,
    truncated_normal_initializer,
    variance_scaling_initializer,
    zeros_initializer,
)
from .math import (
    abs,
    add,
    add_n,
    argmax,
    argmin,
    ceil,
    clip_by_global_norm,
    clip_by_norm,
    clip_by_value,
    divide,
    equal,
    exp,
    floor,
    global_norm,
    gradients,
    greater,
    greater_equal,
    less,
    less_equal,
    log,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
    matmul,
    maximum,
    minimum,
    multiply,
    negative,
    not_equal,
    pow,
    realdiv,
    reciprocal,
    reduce_all,
    reduce_any,
    reduce_logsumexp,
    reduce_max,
    reduce_mean,
    reduce_min,
    reduce_prod,
    reduce_sum,
    round,
    rsqrt,
    scalar_mul,
    sigmoid,
    sign,
    sqrt,
    square,
    squared_difference,
    subtract,
    tanh,
    truediv,
)
from .moving_averages import moving_average_variables
from .session import InteractiveSession, Session, use_device
from .tensors import (
    cast,
    constant,
    convert_to_tensor,
    fill,
    identity,
    ones,
    ones_like,
    placeholder,
    placeholder_with_default,
    random_normal,
    random_shuffle,
    random_uniform,
    range,
    stop_gradient,
    to_double,
    to_float,
    to_int32,
    to_int64,
    truncated_normal,
    zeros,
    zeros_like,
)
from .unsupported import module_getattr as _module_getattr
from .variables import (
    AUTO_REUSE,
    Variable,
    VariableScope,
    assign,
    assign_add,
    assign_sub,
    get_variable,
    get_variable_scope,
    global_variables,
    global_variables_initializer,
    initialize_all_variables,
    is_variable_initialized,
    local_variables,
    local_variables_initializer,
    model_variables,
    tables_initializer,
    trainable_variables,
    variable_scope,
    variables_initializer,
)

Tensor = Node  # every xpnn node is a tensor (one output) and an operation
Operation = Node
newaxis = None

_IMPLEMENTATION = {"array_ops", "control_flow", "dtypes", "graphs", "indexed_slices",
                   "session", "tensors", "unsupported", "variables", "Node", "elementary",
                   "nn_extra", "sampled", "initializer_names", "config", "rnn", "rnn_cell",
                   "events", "strings", "moving_averages", "slots"}
__all__ = sorted(n for n in dir() if not n.startswith("_") and n not in _IMPLEMENTATION)
__getattr__ = _module_getattr(_sys.modules[__name__], "tf")
