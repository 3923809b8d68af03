"""TensorBoard logging as TF 1.x tutorials wrote it: scalars (in name scopes, with a
family), histograms of weights, images, text, summaries in a collection of their own,
merge_all, a FileWriter given the session's graph, add_summary at every step and a
hand-made tf.Summary; then the event file read back with tf.train.summary_iterator."""

import glob
import os

import numpy as np

# xpnn.compat.v1 writes with tensorboardX and reads back with TensorBoard's reader
REQUIRES = ("tensorboardX", "tensorboard")


def main(tf, workdir):
    tf.reset_default_graph()
    rng = np.random.RandomState(3)
    x_data = rng.randn(16, 3).astype(np.float32)
    y_data = (x_data @ np.float32([[1.0], [-2.0], [0.5]]) + 0.3).astype(np.float32)
    x = tf.placeholder(tf.float32, [None, 3], name="x")
    y = tf.placeholder(tf.float32, [None, 1], name="y")
    with tf.name_scope("model"):
        w = tf.Variable(rng.randn(3, 1).astype(np.float32), name="w")
        b = tf.Variable(np.zeros(1, np.float32), name="b")
        pred = tf.matmul(x, w) + b
    with tf.name_scope("loss"):
        loss = tf.reduce_mean(tf.square(pred - y))
        tf.summary.scalar("mse", loss)
        tf.summary.scalar("mse", loss, family="losses")
    tf.summary.histogram("weights", w)
    tf.summary.histogram("residuals", pred - y)
    tf.summary.image("inputs", tf.reshape(x[:2], [2, 1, 3, 1]), max_outputs=2)
    tf.summary.text("notes", tf.constant("learning rate 0.1"))
    tf.summary.scalar("bias", b[0], collections=["extra"])
    train = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
    merged = tf.summary.merge_all()
    extra = tf.summary.merge_all(key="extra")

    record = {}
    logdir = os.path.join(workdir, "logs")
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        writer = tf.summary.FileWriter(logdir, sess.graph)
        for step in range(3):
            sess.run(train, {x: x_data, y: y_data})
            # (in a run of their own: TF1 may read w before or after the same run's update)
            summary, bias, record[f"loss{step}"] = sess.run(
                [merged, extra, loss], {x: x_data, y: y_data})
            writer.add_summary(summary, step)
            writer.add_summary(bias, step)
            _record_summary(tf.Summary.FromString(summary), record, f"step{step}")
        accuracy = tf.Summary(value=[tf.Summary.Value(tag="accuracy", simple_value=0.75)])
        writer.add_summary(accuracy, 3)
        writer.close()
    (path,) = glob.glob(os.path.join(logdir, "events.out.tfevents.*"))
    events = list(tf.train.summary_iterator(path))
    record["file_version"] = events[0].file_version
    record["has_graph"] = np.bool_(any(e.HasField("graph_def") for e in events))
    read = [(e.step, v.tag, v.simple_value) for e in events if e.HasField("summary")
            for v in e.summary.value if v.HasField("simple_value")]
    record["read_steps"] = np.array([s for s, _, _ in read], np.int64)
    record["read_tags"] = np.array([t for _, t, _ in read])
    record["read_values"] = np.array([v for _, _, v in read], np.float32)
    return record


def _record_summary(summary, record, key):
    record[f"{key}_tags"] = np.array([v.tag for v in summary.value])
    for v in summary.value:
        name = f"{key}_{v.tag}"
        if v.HasField("simple_value"):
            record[name] = np.float32(v.simple_value)
        elif v.HasField("histo"):
            h = v.histo
            record[name] = np.array([h.min, h.max, h.num, h.sum, h.sum_squares])
            record[name + "_limits"] = np.array(h.bucket_limit)
            record[name + "_counts"] = np.array(h.bucket)
        elif v.HasField("image"):
            record[name] = np.array([v.image.height, v.image.width, v.image.colorspace])
        elif v.HasField("tensor"):
            record[name] = np.array([s.decode() for s in v.tensor.string_val])
            record[name + "_plugin"] = v.metadata.plugin_data.plugin_name
