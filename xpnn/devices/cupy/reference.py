"""The stand-in for the CUDA fuser: the same interface, and each kernel the same traced
statements (``source.trace``), run on the Session's own namespace with the NumPy models of
the C they print to (``source.run``) instead of compiled. So on a machine without a GPU the
whole CuPy pass (which steps get kernels, which updates go in place, every kernel's
arithmetic) runs and is tested; what only a GPU checks is the printed C and CuPy's calls
(``cuda.py``). ``launches`` lists the kernels run, by name, for tests to count.

>>> import numpy as np
>>> from xpnn.devices.cupy import formulas, reference
>>> fuser = reference.ReferenceFuser(np)
>>> param = np.array([1.0, 2.0], np.float32)
>>> fuser.elementwise(formulas.sgd, (param, np.array([1.0, 1.0], np.float32), 0.5), writes=1)
>>> param.tolist(), fuser.launches
([0.5, 1.5], ['xpnn_sgd'])
"""

from __future__ import annotations

from . import source


class ReferenceFuser:
    def __init__(self, xp):
        self.xp, self.traced, self.launches = xp, {}, []

    def _kernel(self, formula, args, writes=0):
        kinds = tuple(source.kind_of(a) for a in args)
        key = (formula, kinds, writes)
        kernel = self.traced.get(key)
        if kernel is None:
            kernel = self.traced[key] = source.trace(formula, kinds, writes)
        if len(self.launches) >= 4096:  # a long-lived stand-in: keep the recent ones
            del self.launches[:2048]
        self.launches.append(kernel.name)
        return kernel

    def _run(self, kernel, args):
        """The results, each broadcast to the shape of all array arguments (a kernel's
        output shape), and the arguments' floating dtype (a kernel's T)."""
        xp = self.xp
        arrays = [a for a, (_, _, is_array) in zip(args, kernel.params) if is_array]
        dtype = _one_dtype(kernel, args, "float")
        shape = xp.broadcast_arrays(*[xp.asarray(a) for a in arrays])[0].shape
        results = source.run(kernel, xp, args, dtype, _one_dtype(kernel, args, "int", 0))
        return [xp.broadcast_to(xp.asarray(r), shape) for r in results], dtype

    def elementwise(self, formula, args, writes=0):
        kernel = self._kernel(formula, args, writes)
        results, _ = self._run(kernel, args)
        if writes:
            for buffer, new in zip(args[:writes], results):
                buffer[...] = new
            return None
        fresh = [self.xp.asarray(r, copy=True) for r in results]
        return fresh[0] if len(fresh) == 1 else tuple(fresh)

    def row_sum(self, formula, args, negate=False, keepdims=True):
        kernel = self._kernel(formula, args)
        (value,), _ = self._run(kernel, args)
        total = self.xp.sum(value, axis=-1, keepdims=keepdims)
        return -total if negate else total


def _one_dtype(kernel, args, kind, least=1):
    """The dtype of the kernel's type parameter for ``kind`` (T for "float", I for "int"):
    CuPy takes one dtype for all the arrays of a type parameter."""
    found = {a.dtype for a, (_, k, is_array) in zip(args, kernel.params)
             if is_array and k == kind}
    if len(found) > 1 or len(found) < least:
        raise TypeError(f"{kernel.name}: its {kind} arrays must share one dtype, got "
                        f"{sorted(map(str, found))}")
    return next(iter(found), None)
