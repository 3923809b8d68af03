"""TensorFlow-1 style optimizer namespace: ``xn.train.GradientDescentOptimizer`` and friends.

>>> import xpnn as xn
>>> xn.train.SGD is xn.train.GradientDescentOptimizer
True
"""

from .optimizers import (  # noqa: F401
    SGD,
    AdamOptimizer,
    GradientDescentOptimizer,
    MomentumOptimizer,
    Optimizer,
)
