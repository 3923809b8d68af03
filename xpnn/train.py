"""TensorFlow-1 style optimizer namespace: ``xn.train.GradientDescentOptimizer`` and friends.
(``xn.nn.SGD(model, lr)`` is the lesson's optimizer of a model; there is no ``xn.train.SGD``.)

>>> import xpnn as xn
>>> xn.train.GradientDescentOptimizer(0.1).learning_rate
0.1
"""

from .optimizers import (  # noqa: F401
    AdagradOptimizer,
    AdamOptimizer,
    GradientDescentOptimizer,
    MomentumOptimizer,
    Optimizer,
    RMSPropOptimizer,
)
