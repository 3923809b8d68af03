"""TensorFlow 1.x programs in tutorial style, each a ``main(tf, workdir)`` that builds and
trains with whatever module it is given as ``tf`` (``tensorflow.compat.v1`` or
``xpnn.compat.v1``) and returns what it recorded: losses per step, weights, gradients.

Their data and starting weights come from NumPy (``np.random.RandomState``): the two
libraries' random generators differ, everything else in the programs is TF1 code as a
tutorial writes it. ``PROGRAMS`` names them: every module of this package.
"""

import pkgutil as _pkgutil

PROGRAMS = sorted(module.name for module in _pkgutil.iter_modules(__path__))
