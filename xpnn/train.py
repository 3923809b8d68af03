"""TensorFlow-1 style optimizer namespace: ``xn.train.GradientDescentOptimizer`` and friends.
(``xn.nn.SGD(model, lr)`` is the lesson's optimizer of a model; there is no ``xn.train.SGD``.)

>>> import xpnn as xn
>>> xn.train.GradientDescentOptimizer(0.1).learning_rate
0.1
>>> type(xn.train.get("rmsprop")).__name__  # Keras's names, with Keras's default rates
'RMSPropOptimizer'
"""

from .optimizers import (  # noqa: F401
    AdagradOptimizer,
    AdamOptimizer,
    AdamWOptimizer,
    GradientDescentOptimizer,
    MomentumOptimizer,
    Optimizer,
    RMSPropOptimizer,
    get,
)
from .precision import LossScaleOptimizer  # noqa: F401
