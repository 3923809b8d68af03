"""``run(fetches, feed_dict)``: the compat tests' one-shot TF1 session (Variables
initialized, then one run), on the device the ``on`` fixture (conftest.py) selected."""

from __future__ import annotations

import xpnn.compat.v1 as tf


def run(fetches, feed_dict=None):
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        return sess.run(fetches, feed_dict)
