"""Control flow in the graph: ``cond``, ``while_loop``, ``scan`` and ``foldl``, each with
gradients. Branches and loop bodies are built once as graphs of their own
(``function_graph``), run by the op through the Session's device: in Python on NumPy,
array-api-strict, PyTorch and CuPy (``eager``), as ``lax`` control flow inside the one
``jax.jit`` on JAX.

>>> import xpnn as xn
>>> i, total = xn.while_loop(lambda i, s: i < 4, lambda i, s: [i + 1, s + 2.0],
...                          [xn.constant(0, "int32"), xn.constant(0.0)])
>>> xn.Session().run(total).item()
8.0
"""

from ..ops.outputs import MultiOutput, Output
from .cond import Cond, cond
from .function_graph import Body, FunctionGraph, trace
from .scan import Scan, ScanGradient, foldl, foldr, scan, scan_loop
from .tensor_array import TensorArray, WriteRow
from .while_loop import WhileGradient, WhileLoop, while_loop

__all__ = ["Body", "Cond", "FunctionGraph", "MultiOutput", "Output", "Scan", "ScanGradient",
           "TensorArray", "WhileGradient", "WhileLoop", "WriteRow", "cond", "foldl", "foldr",
           "scan", "scan_loop", "trace", "while_loop"]
