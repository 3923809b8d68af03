"""The CUDA fuser: each traced formula (``source.trace``) compiled once per process as a
``cupy.ElementwiseKernel`` (or, summed over rows, a ``cupy.ReductionKernel``; CuPy then
compiles it per dtype and device, and caches the binary on disk, ``CUPY_CACHE_DIR``). The
kernels are compiled with ``--fmad=false``: NVRTC would otherwise contract ``a * b + c``
into one fused multiply-add, rounded once where the portable ops round twice. CuPy adds
``-ftz=true`` to every kernel it compiles (its own too, so the portable plan on CuPy does
the same): float32 subnormal operands and results are flushed to zero, as TensorFlow does,
where NumPy keeps them (float64 is not flushed). ``cupy`` is imported at the first kernel,
never with xpnn. This file is the part of the CuPy pass that
only a GPU runs (``reference.py`` is its stand-in).

>>> from xpnn.devices.cupy import cuda
>>> cuda.OPTIONS
('--fmad=false',)
"""

from __future__ import annotations

from . import source

OPTIONS = ("--fmad=false",)


class CudaFuser:
    """Runs kernels on the current CUDA device (the Session's: it runs inside its context)."""

    def __init__(self):
        self.compiled = {}  # (formula, kinds, writes, reduction) -> (Kernel, cupy kernel)

    def _get(self, formula, args, writes=0, reduction=None):
        kinds = tuple(source.kind_of(a) for a in args)
        key = (formula, kinds, writes, reduction)
        found = self.compiled.get(key)
        if found is None:
            kernel = source.trace(formula, kinds, writes)
            found = self.compiled[key] = (kernel, _compile(kernel, reduction))
        return found

    def elementwise(self, formula, args, writes=0):
        """``formula`` on ``args`` (arrays broadcast together, numbers): its result as new
        arrays (one, or a tuple), or written into the first ``writes`` args (returns None)."""
        kernel, compiled = self._get(formula, args, writes)
        out = compiled(*kernel.arguments(args))
        return None if writes else out

    def row_sum(self, formula, args, negate=False, keepdims=True):
        """The sum over the last axis of ``formula`` on ``args`` (negated: ``negate``)."""
        kernel, compiled = self._get(formula, args, reduction="-a" if negate else "a")
        return compiled(*kernel.arguments(args), axis=-1, keepdims=keepdims)


def _compile(kernel, reduction):
    import cupy

    if reduction is None:
        return cupy.ElementwiseKernel(kernel.in_params(), kernel.out_params(), kernel.body(),
                                      name=kernel.name, options=OPTIONS)
    return cupy.ReductionKernel(kernel.in_params(), "T y", kernel.map_expr(), "a + b",
                                f"y = {reduction}", "0", name=kernel.name, options=OPTIONS)


_FUSER = None


def fuser() -> CudaFuser:
    """The process's CUDA fuser (its kernels shared by every Session)."""
    global _FUSER
    if _FUSER is None:
        _FUSER = CudaFuser()
    return _FUSER
