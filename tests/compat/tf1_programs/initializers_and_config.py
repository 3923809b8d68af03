"""The set-up lines of TF 1.x scripts: a version check, a ConfigProto with GPU options and
soft placement, ops built under tf.device, and get_variable with the tf.initializers and
tf.keras.initializers names whose values are fixed (constant, identity, zeros, ones); a
linear model trained from them for a few steps. The random initializers give other draws
than TF's: their shapes and dtypes are what this compares."""

import numpy as np


def main(tf, workdir=None):
    tf.reset_default_graph()
    assert tf.__version__.startswith(("1.", "2."))  # 2.x: the oracle's tf.compat.v1
    rng = np.random.RandomState(5)
    config = tf.ConfigProto(allow_soft_placement=True, log_device_placement=False)
    config.gpu_options.allow_growth = True
    config.gpu_options.per_process_gpu_memory_fraction = 0.5

    x = tf.placeholder(tf.float32, [None, 3], name="x")
    y = tf.placeholder(tf.float32, [None, 3], name="y")
    with tf.device("/gpu:0"):
        w = tf.get_variable("w", [3, 3], initializer=tf.initializers.identity(gain=0.5))
        b = tf.get_variable("b", [3], initializer=tf.initializers.constant(0.1))
        h = tf.matmul(x, w) + b
    with tf.device(None):
        v = tf.get_variable("v", [3, 3], initializer=tf.keras.initializers.Identity())
        c = tf.get_variable("c", [3], initializer=tf.keras.initializers.Constant(-0.2))
        out = tf.matmul(tf.tanh(h), v) + c
    with tf.device("/cpu:0"):
        loss = tf.reduce_mean(tf.square(out - y))
    train = tf.train.GradientDescentOptimizer(0.3).minimize(loss)
    zeros = tf.get_variable("zeros", [2, 2], initializer=tf.initializers.zeros())
    ones = tf.get_variable("ones", [2], tf.int32, initializer=tf.keras.initializers.Ones())
    drawn = [
        tf.get_variable(name, shape, initializer=make)
        for name, shape, make in [
            ("glorot_u", [4, 5], tf.initializers.glorot_uniform()),
            ("glorot_n", [4, 5], tf.keras.initializers.glorot_normal()),
            ("he_n", [3, 3, 2, 4], tf.initializers.he_normal()),
            ("he_u", [5, 4], tf.keras.initializers.he_uniform()),
            ("lecun_n", [5, 4], tf.initializers.lecun_normal()),
            ("lecun_u", [5, 4], tf.initializers.lecun_uniform()),
            ("scaled", [5, 4], tf.initializers.variance_scaling(2.0, "fan_avg", "uniform")),
            ("orthogonal", [6, 4], tf.initializers.orthogonal(gain=2.0)),
            ("orth_top", [3, 5], tf.orthogonal_initializer()),
            ("normal", [7], tf.initializers.random_normal(stddev=0.1)),
            ("uniform", [7], tf.initializers.random_uniform(-0.1, 0.1)),
            ("truncated", [7], tf.initializers.truncated_normal(stddev=0.1))]]

    data = rng.randn(6, 3).astype(np.float32)
    target = rng.randn(6, 3).astype(np.float32)
    record = {}
    with tf.Session(config=config) as sess:
        sess.run(tf.global_variables_initializer())
        record["w0"], record["b0"], record["v0"], record["c0"] = sess.run([w, b, v, c])
        record["zeros"], record["ones"] = sess.run([zeros, ones])
        for step in range(4):
            record[f"loss{step}"] = sess.run([loss, train], {x: data, y: target})[0]
        record["w"], record["c"] = sess.run([w, c])
        for variable, value in zip(drawn, sess.run(drawn)):
            name = variable.name.split(":")[0]
            record[f"{name}_shape"] = np.array(value.shape)
            record[f"{name}_dtype"] = str(value.dtype)
        orthogonal = sess.run(drawn[7])
        record["orthogonal_gram"] = np.round(orthogonal.T @ orthogonal, 4)
    return record
