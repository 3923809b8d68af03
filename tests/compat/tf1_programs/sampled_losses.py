"""A word2vec skip-gram as TF1 tutorials trained it: an embedding table, tf.nn.nce_loss
over the output weights, and a few SGD steps; beside it the same pairs under
tf.nn.sampled_softmax_loss (accidental hits removed) and a weighted nce_loss with two true
classes. The negative samples are fixed by ``sampled_values=`` (TF's sampler and xpnn's
draw other numbers)."""

import numpy as np

VOCAB, DIM, SAMPLED, BATCH = 12, 4, 5, 6


def _fixed_sample(tf, rng, batch, num_true):
    """The (sampled, true_expected_count, sampled_expected_count) a sampler would give."""
    sampled = rng.choice(VOCAB, SAMPLED, replace=False).astype(np.int64)
    true_expected = rng.uniform(0.2, 0.9, (batch, num_true)).astype(np.float32)
    sampled_expected = rng.uniform(0.2, 0.9, SAMPLED).astype(np.float32)
    return (tf.constant(sampled), tf.constant(true_expected), tf.constant(sampled_expected))


def main(tf, workdir=None):
    tf.reset_default_graph()
    rng = np.random.RandomState(11)
    centre = tf.placeholder(tf.int32, [BATCH], name="centre")
    context = tf.placeholder(tf.int64, [BATCH, 1], name="context")
    embeddings = tf.Variable(rng.uniform(-1.0, 1.0, (VOCAB, DIM)).astype(np.float32),
                             name="embeddings")
    nce_w = tf.Variable(rng.randn(VOCAB, DIM).astype(np.float32) * 0.5, name="nce_w")
    nce_b = tf.Variable(np.zeros(VOCAB, np.float32), name="nce_b")
    embed = tf.nn.embedding_lookup(embeddings, centre)

    nce = tf.reduce_mean(tf.nn.nce_loss(weights=nce_w, biases=nce_b, labels=context,
                                        inputs=embed, num_sampled=SAMPLED, num_classes=VOCAB,
                                        sampled_values=_fixed_sample(tf, rng, BATCH, 1)))
    softmax = tf.reduce_mean(tf.nn.sampled_softmax_loss(
        weights=nce_w, biases=nce_b, labels=context, inputs=embed, num_sampled=SAMPLED,
        num_classes=VOCAB, sampled_values=_fixed_sample(tf, rng, BATCH, 1)))
    two = tf.placeholder(tf.int64, [BATCH, 2], name="two")
    nce_two = tf.nn.nce_loss(nce_w, nce_b, two, embed, SAMPLED, VOCAB, num_true=2,
                             sampled_values=_fixed_sample(tf, rng, BATCH, 2),
                             remove_accidental_hits=True)
    grads = tf.gradients(softmax + tf.reduce_sum(nce_two), [nce_w, nce_b])
    dense = [tf.convert_to_tensor(g) for g in grads]  # TF: IndexedSlices
    train = tf.train.GradientDescentOptimizer(0.5).minimize(nce)

    words = rng.randint(0, VOCAB, BATCH)
    near = ((words + rng.randint(1, 3, BATCH)) % VOCAB).reshape(-1, 1)
    pairs = np.stack([near[:, 0], (near[:, 0] + 1) % VOCAB], axis=1)
    feed = {centre: words, context: near, two: pairs}
    record = {}
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        record["softmax"], record["nce_two"], record["grad_w"], record["grad_b"] = sess.run(
            [softmax, nce_two] + dense, feed)
        for step in range(5):
            record[f"nce{step}"] = sess.run([nce, train], feed)[0]
        record["embeddings"], record["nce_w"] = sess.run([embeddings, nce_w])
    return record
