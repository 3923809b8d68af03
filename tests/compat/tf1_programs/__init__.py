"""TensorFlow 1.x programs in tutorial style, each a ``main(tf, workdir)`` that builds and
trains with whatever module it is given as ``tf`` (``tensorflow.compat.v1`` or
``xpnn.compat.v1``) and returns what it recorded: losses per step, weights, gradients.

Their data and starting weights come from NumPy (``np.random.RandomState``): the two
libraries' random generators differ, everything else in the programs is TF1 code as a
tutorial writes it. ``PROGRAMS`` names them in order.
"""

PROGRAMS = [
    "linear_regression",
    "mnist_softmax",
    "mlp_adam",
    "gradients",
    "momentum_nesterov",
    "logistic_regression",
    "perceptron",
    "mixed_bag",
    "small_cnn",
    "exponential_decay",
    "variable_scopes",
    "saver_round_trip",
    "losses_and_clipping",
    "rmsprop_adagrad",
    "layers_cnn",
    "layers_batch_norm",
    "control_flow",
]
