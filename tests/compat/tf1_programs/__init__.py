"""TensorFlow 1.x programs in tutorial style, each a ``main(tf, workdir)`` that builds and
trains with whatever module it is given as ``tf`` (``tensorflow.compat.v1`` or
``xpnn.compat.v1``) and returns what it recorded: losses per step, weights, gradients.

Their data and starting weights come from NumPy (``np.random.RandomState``): the two
libraries' random generators differ, everything else in the programs is TF1 code as a
tutorial writes it. ``PROGRAMS`` names them: every module of this package. A program that
needs an optional package names it in ``REQUIRES``; without it the tests skip the program.
"""

import importlib as _importlib
import importlib.util as _util
import pkgutil as _pkgutil

PROGRAMS = sorted(module.name for module in _pkgutil.iter_modules(__path__))


def missing(name: str) -> str | None:
    """Why program ``name`` cannot run here (a package of its REQUIRES is absent), or None."""
    program = _importlib.import_module(f"{__name__}.{name}")
    absent = [m for m in getattr(program, "REQUIRES", ()) if _util.find_spec(m) is None]
    if not absent:
        return None
    return f"{name} needs {', '.join(absent)} (pip install xpnn[summary] tensorboard)"
