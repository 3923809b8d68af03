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
    activations,
    assignment,
    data,
    devices,
    distributed,
    init,
    io,
    logic,
    losses,
    math_ops,
    metrics,
    nn,
    random,
    structure,
    train,
)
from .assignment import assign, assign_add, assign_sub, group
from .autodiff import RegisterGradient, gradients
from .conv import avg_pool2d, bias_add, conv2d, flatten, max_pool2d
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
from .logic import (
    greater,
    greater_equal,
    less,
    less_equal,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
    not_equal,
    reduce_all,
    reduce_any,
    where,
)
from .math_ops import argmin, cast, floor, identity, reduce_min, reduce_prod, stop_gradient
from .normalization import batch_normalization, moments
from .ops import (
    abs,
    add,
    add_n,
    argmax,
    check_numerics,
    clip,
    divide,
    dropout,
    equal,
    exp,
    leaky_relu,
    log,
    log_softmax,
    logsumexp,
    matmul,
    maximum,
    minimum,
    multiply,
    negative,
    ones_like,
    reduce_max,
    reduce_mean,
    reduce_sum,
    relu,
    reshape,
    sigmoid,
    softmax,
    sqrt,
    square,
    subtract,
    tanh,
    transpose,
    zeros_like,
)
from .random import random_normal, random_shuffle, random_uniform, truncated_normal
from .session import NumericsError, OpError, Session
from .structure import concat, gather, pad, split, squeeze, stack, tile, unstack

__version__ = "0.1.0"
