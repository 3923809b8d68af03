"""xpnn: a from-scratch neural-network library whose graph, backprop and losses run on any
array-API namespace: NumPy on the CPU, CuPy on a CUDA GPU, array-api-strict, PyTorch, JAX.

>>> import xpnn as xn
>>> with xn.Graph().as_default():
...     x = xn.placeholder(name="x")
...     w = xn.Variable([[2.0], [1.0]], name="w")
...     y = x @ w
...     xn.Session(device="cpu").run(y, {x: [[1.0, 3.0]]}).tolist()
[[5.0]]
"""

from . import (
    assignment,
    control_flow,
    data,
    debug,
    devices,
    distributed,
    init,
    io,
    metrics,
    nn,
    onnx,
    ops,
    summary,
    train,
)
from .assignment import assign, assign_add, assign_sub, group
from .autodiff import RegisterGradient, gradients
from .control_flow import TensorArray, cond, foldl, foldr, scan, while_loop
from .devices import get_default_device, set_default_device
from .drawing import GraphvizNotFoundError, draw_graph, to_dot
from .gradcheck import GradcheckError, GradcheckReport, gradcheck
from .graph import (
    Constant,
    Graph,
    Node,
    Operation,
    Placeholder,
    Update,
    Variable,
    constant,
    get_default_graph,
    name_scope,
    placeholder,
    reset_default_graph,
)
from .host import to_numpy
from .nn import callbacks  # xn.callbacks, Keras's name
from .normalization import batch_normalization, moments

# The op families that kept their module's name stay reachable as xn.<family>
# (xn.losses.softmax_cross_entropy, xn.conv.Conv2D...).
from .ops import (
    abs,
    activations,
    add,
    add_n,
    argmax,
    argmin,
    avg_pool2d,
    bias_add,
    cast,
    check_numerics,
    clip,
    concat,
    conv,
    conv2d,
    cumsum,
    divide,
    dropout,
    einsum,
    embedding_lookup,
    equal,
    exp,
    flatten,
    floor,
    gather,
    gather_nd,
    greater,
    greater_equal,
    identity,
    leaky_relu,
    less,
    less_equal,
    log,
    log_softmax,
    logic,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
    logsumexp,
    losses,
    masked_softmax,
    matmul,
    max_pool2d,
    maximum,
    minimum,
    multiply,
    negative,
    not_equal,
    ones_like,
    pad,
    random,
    random_normal,
    random_shuffle,
    random_uniform,
    reduce_all,
    reduce_any,
    reduce_max,
    reduce_mean,
    reduce_min,
    reduce_prod,
    reduce_sum,
    relu,
    reshape,
    scatter_nd,
    sequence_mask,
    sigmoid,
    softmax,
    split,
    sqrt,
    square,
    squeeze,
    stack,
    stop_gradient,
    subtract,
    tanh,
    tensordot,
    tile,
    top_k,
    transpose,
    truncated_normal,
    unsorted_segment_sum,
    unstack,
    where,
    zeros_like,
)
from .session import NumericsError, OpError, Session

__version__ = "0.1.0"
