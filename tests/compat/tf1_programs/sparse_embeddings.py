"""A bag-of-embeddings classifier as TF 1.x tutorials wrote it: tf.nn.embedding_lookup of
token ids, averaged, then a softmax layer; its gradients clipped with tf.clip_by_global_norm
(the embedding's gradient an IndexedSlices) and applied by each optimizer in turn. Every
batch looks up only some rows of the table (one row never), repeated ids included: Momentum,
RMSProp and Adagrad update only those rows, slots too, as TF1's sparse updates do."""

import numpy as np

VOCAB, DIM, CLASSES, BATCH, WORDS = 10, 4, 3, 6, 4


def batches(rng, steps):
    """Token ids from rows 0-5 on even steps and 3-8 on odd ones: row 9 is never looked up,
    rows 0-2 and 6-8 sit out every other step."""
    for step in range(steps):
        low = 0 if step % 2 == 0 else 3
        ids = rng.randint(low, low + 6, size=(BATCH, WORDS)).astype(np.int32)
        yield ids, rng.randint(0, CLASSES, size=BATCH).astype(np.int32)


def classifier(tf, name, start_table, start_w, ids, labels):
    with tf.variable_scope(name):
        table = tf.Variable(start_table, name="embeddings")
        w = tf.Variable(start_w, name="w")
        b = tf.Variable(np.zeros(CLASSES, np.float32), name="b")
    bag = tf.reduce_mean(tf.nn.embedding_lookup(table, ids), axis=1)
    logits = tf.matmul(bag, w) + b
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=labels, logits=logits))
    return table, w, b, loss


def main(tf, workdir=None):
    tf.reset_default_graph()
    rng = np.random.RandomState(27)
    start_table = rng.randn(VOCAB, DIM).astype(np.float32)
    start_w = (0.5 * rng.randn(DIM, CLASSES)).astype(np.float32)
    ids = tf.placeholder(tf.int32, [None, WORDS], name="ids")
    labels = tf.placeholder(tf.int32, [None], name="labels")

    optimizers = {
        "sgd": tf.train.GradientDescentOptimizer(0.5),
        "momentum": tf.train.MomentumOptimizer(0.5, momentum=0.9),
        "nesterov": tf.train.MomentumOptimizer(0.3, momentum=0.8, use_nesterov=True),
        "rmsprop": tf.train.RMSPropOptimizer(0.05, decay=0.8, momentum=0.5),
        "centered": tf.train.RMSPropOptimizer(0.02, centered=True),
        "adagrad": tf.train.AdagradOptimizer(0.5),
        "adam": tf.train.AdamOptimizer(0.05),
    }
    tables, losses, norms, steps = {}, {}, {}, {}
    for name, optimizer in optimizers.items():
        table, w, b, loss = classifier(tf, name, start_table, start_w, ids, labels)
        grads, variables = zip(*optimizer.compute_gradients(loss, [table, w, b]))
        clipped, norm = tf.clip_by_global_norm(grads, 1.0)
        steps[name] = optimizer.apply_gradients(zip(clipped, variables))
        tables[name], losses[name], norms[name] = table, loss, norm

    # One table looked up twice (a word and its context): the gradient sums two lookups.
    table2, w2, b2, loss2 = classifier(tf, "tied", start_table, start_w, ids, labels)
    context = tf.nn.embedding_lookup(table2, tf.reverse(ids, [1]))
    loss2 = loss2 + 0.1 * tf.reduce_sum(tf.reduce_mean(context, axis=[0, 1]))
    tied_grad = tf.gradients(loss2, table2)[0]
    tied_step = tf.train.MomentumOptimizer(0.2, momentum=0.9).apply_gradients(
        [(tf.clip_by_norm(tied_grad, 0.5), table2)])

    record = {"grad_kind": np.array(type(grads[0]).__name__),
              "tied_kind": np.array(type(tied_grad).__name__)}
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for step, (batch_ids, batch_labels) in enumerate(batches(rng, 6)):
            feed = {ids: batch_ids, labels: batch_labels}
            if step == 0:
                first = sess.run(grads[0], feed)
                record["grad_values"], record["grad_indices"] = first.values, first.indices
                record["grad_dense"] = sess.run(tf.convert_to_tensor(grads[0]), feed)
                record["tied_dense"] = sess.run(tf.convert_to_tensor(tied_grad), feed)
            values = sess.run([losses, norms, steps, tied_step], feed)
            for name in optimizers:
                record[f"loss_{name}_{step}"] = values[0][name]
                record[f"norm_{name}_{step}"] = values[1][name]
            for name, table in sess.run(tables).items():
                record[f"table_{name}_{step}"] = table
        record["table_tied"] = sess.run(table2)
    for name in optimizers:  # row 9 is never looked up: no optimizer changes it
        record[f"row9_kept_{name}"] = np.array(
            bool(np.all(record[f"table_{name}_5"][9] == start_table[9])))
    return record
