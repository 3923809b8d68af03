"""Other libraries' APIs over xpnn's own graph and ops: ``xpnn.compat.v1`` speaks
TensorFlow 1 (``import xpnn.compat.v1 as tf``).

>>> import xpnn.compat.v1 as tf
>>> tf.float32.name
'float32'
"""
