"""ReluGrad(MaxPoolGrad(x, g), x), the backward pass of a ReLU before a max-pool, as one
kernel: the pool's gradient gives shares to window maxima only, and there x is the maximum,
so the ReLU's mask (x > 0) is the maxima's (t > 0). The pool's kernel applies it to the
pooled shares (a quarter of the entries for 2x2 windows) and the ReluGrad step passes its
input on, which spares a pass over the whole input. Products by 1 and 0 are exact, so the
result is the unfused kernels' bit for bit, NaN, infinities and signed zeros included, where
the windows tile the input; where they overlap or pad it (or the maxima hold NaN), the
masked shares are added into zeros, so a zero the unfused kernels give as -0.0 may be 0.0.
``sigmoid_into_bce_grad`` likewise folds a sigmoid's gradient into the binary
cross-entropy's gradient before it (both compute p (1 - p)), ``relu_into_bias_add`` a
conv layer's ReLU into its bias add (one pass over the activation instead of two),
``bias_add_into_conv`` that bias add into the conv's products (no pass of its own), and
``pool_into_conv`` the max-pool after them (pooled while each block is in cache).

>>> import numpy as np, xpnn as xn
>>> with xn.Graph().as_default():
...     x = xn.placeholder(shape=(1, 2, 2, 1))
...     loss = xn.reduce_sum(xn.max_pool2d(xn.relu(x), 2, 2, "VALID"))
...     sess = xn.Session(device="cpu")
...     dx = xn.gradients(loss, [x])[0]
...     up = sess.run(dx, {x: np.array([-1.0, 3.0, 2.0, 0.5]).reshape(1, 2, 2, 1)})
...     down = sess.run(dx, {x: np.array([-1.0, -3.0, -2.0, -0.5]).reshape(1, 2, 2, 1)})
>>> up.ravel().tolist(), down.ravel().tolist()  # all ReLU outputs 0: the mask stops all
([0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0])
"""

from __future__ import annotations

from ... import ops
from ...ops import conv
from . import conv as conv_kernels
from . import kernels


def _passed_on(g, y):
    return g


def _passed_on_alone(x):
    return x


def relu_into_pool_grad(plan, facts, skip=()) -> tuple[dict, set]:
    """Fuse each ReluGrad whose gradient input is a MaxPoolGrad of the same ``x``, read by
    that ReluGrad alone. Returns the kernel options of the pool gradients' slots
    (``relu_grad``: the portable ReluGrad, for the kernel's non-float fallback) and the
    ReluGrad slots, whose steps now pass their input on."""
    return _fold(plan, facts, skip, ops.ReluGrad, conv.MaxPoolGrad, "relu_grad",
                 lambda inner, outer: inner.inputs[0] == outer.inputs[1])


def sigmoid_into_bce_grad(plan, facts, skip=()) -> tuple[dict, set]:
    """Fuse each SigmoidGrad(BinaryCrossEntropyGrad(g, p, y), p), the backward pass of a
    binary cross-entropy on a sigmoid's output (lesson 5's logistic unit): both compute
    p (1 - p), which the fused kernel computes once (``kernels._bce_grad``), in the same
    operations and order, so the result is the unfused kernels' bit for bit. Returns the
    BinaryCrossEntropyGrad slots' kernel options (``sigmoid_grad``: the portable SigmoidGrad,
    the fallback) and the SigmoidGrad slots, whose steps now pass their input on."""
    return _fold(plan, facts, skip, ops.SigmoidGrad, ops.BinaryCrossEntropyGrad,
                 "sigmoid_grad", lambda inner, outer: inner.inputs[1] == outer.inputs[1])


def relu_into_bias_add(plan, facts, skip=()) -> tuple[dict, set]:
    """Fuse each Relu of a BiasAdd read by that Relu alone (a conv layer's activation): the
    BiasAdd kernel clamps each block of its result while the block is in cache, with the
    Relu kernel's ufunc and zeros, so the result is the unfused kernels' bit for bit.
    Returns the BiasAdd slots' kernel options (``relu``: the portable Relu, the fallback)
    and the Relu slots, whose steps now pass their input on."""
    return _fold(plan, facts, skip, ops.Relu, conv.BiasAdd, "relu",
                 lambda inner, outer: True)


def bias_add_into_conv(plan, facts, options, skip=()) -> dict:
    """Fuse each NHWC BiasAdd of an NHWC Conv2D read by that BiasAdd alone (a conv layer):
    the Conv2D step reads the bias too, and its kernel adds it (and clamps at 0, where
    ``relu_into_bias_add`` folded a Relu into the BiasAdd) to each block of images right
    after the block's product, while the block is in cache (``conv.ConvBias``: the BiasAdd
    kernel's result bit for bit). The BiasAdd step then passes its input on; where this
    run's conv did not add the bias (a portable conv: integers, empty images, a bias not
    one per channel), it runs its own kernel. Run after ``relu_into_bias_add``: it adds
    the Conv2D slots' ``bias`` to ``options`` and returns the BiasAdd slots (which have
    their step functions) with their ``conv.ConvBias``."""
    made = {step.out: (index, step) for index, step in enumerate(plan.steps)
            if step.kind == "value"}
    readers = {}
    for step in plan.steps:
        for s in step.inputs:
            readers[s] = readers.get(s, 0) + 1
    fused = {}
    for index, step in enumerate(plan.steps):
        if (step.kind != "value" or type(step.op) is not conv.BiasAdd or step.out in skip
                or step.op.data_format != "NHWC" or len(step.inputs) != 2):
            continue
        first, bias = step.inputs
        at, inner = made.get(first, (None, None))
        if (inner is None or type(inner.op) is not conv.Conv2D or inner.out in skip
                or inner.op.data_format != "NHWC" or len(inner.inputs) != 2
                or bias == first or made.get(bias, (-1,))[0] > at or readers[first] != 1
                or first in facts.update_reads or not facts.owned(first, index)):
            continue
        own = options.get(step.out, {})
        applied = conv_kernels.ConvBias(relu="relu" in own)
        options[inner.out] = {**options.get(inner.out, {}), "bias": applied}
        inner.inputs = (*inner.inputs, bias)
        step.fn = _unless_applied(applied, kernels.forward_fn(step.op, True, step.fn, **own))
        fused[step.out] = applied
    return fused


def pool_into_conv(plan, options, biases, passed_on, skip=()) -> None:
    """Fuse each NHWC MaxPool of a conv layer's activation, where ``bias_add_into_conv``
    fused its BiasAdd (``biases``: BiasAdd slot -> ``conv.ConvBias``) and the Relu between
    them passes its input on (``passed_on``): the Conv2D kernel pools each block of images
    right after its bias and ReLU, while the block is in cache, and the MaxPool kernel
    (``after``: the ``conv.ConvPool``) returns those maxima for that very activation array
    (else it pools it itself). Adds the MaxPool slots' ``after`` to ``options``."""
    made = {step.out: step for step in plan.steps if step.kind == "value"}
    for step in plan.steps:
        if (step.kind != "value" or type(step.op) is not conv.MaxPool or step.out in skip
                or step.op.data_format != "NHWC"):
            continue
        source = made.get(step.inputs[0])
        if source is not None and type(source.op) is ops.Relu and source.out in passed_on:
            source = made.get(source.inputs[0])
        applied = None if source is None else biases.get(source.out)
        if applied is None or applied.pool is not None:
            continue
        applied.pool = conv_kernels.ConvPool(step.op)
        options[step.out] = {**options.get(step.out, {}), "after": applied.pool}


def _unless_applied(applied, kernel):
    def forward(v, b):
        return v if applied.done else kernel(v, b)

    return forward


def fold_all(plan, facts, skip=()) -> tuple[dict, set]:
    """Every fusion here: the kernel options by slot, and the slots whose steps are set
    (they pass their input on, or apply what the step before them did not)."""
    options, fused = {}, set()
    for fold in (relu_into_pool_grad, sigmoid_into_bce_grad, relu_into_bias_add):
        more, passed_on = fold(plan, facts, skip)
        options.update(more)
        fused |= passed_on
    biases = bias_add_into_conv(plan, facts, options, skip)
    pool_into_conv(plan, options, biases, fused, skip)
    return options, fused | set(biases)


def _fold(plan, facts, skip, outer_class, inner_class, option, same_operand):
    """Each ``outer_class`` step whose first input is made by an ``inner_class`` step, read
    there alone, with ``same_operand(inner, outer)``: the inner step's kernel is given
    ``{option: the outer step's portable fn}`` and the outer step passes its input on."""
    made = {step.out: step for step in plan.steps if step.kind == "value"}
    readers = {}
    for step in made.values():
        for s in step.inputs:
            readers[s] = readers.get(s, 0) + 1
    options, fused = {}, set()
    for index, step in enumerate(plan.steps):
        if step.kind != "value" or type(step.op) is not outer_class or step.out in skip:
            continue
        first = step.inputs[0]
        inner = made.get(first)
        if (inner is None or type(inner.op) is not inner_class or not same_operand(inner, step)
                or inner.out in skip or first in step.inputs[1:] or readers[first] != 1
                or first in facts.update_reads or not facts.owned(first, index)):
            continue
        options[inner.out] = {option: step.fn}
        step.fn = _passed_on if len(step.inputs) == 2 else _passed_on_alone
        fused.add(step.out)
    return options, fused
