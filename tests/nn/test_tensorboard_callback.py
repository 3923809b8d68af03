"""Keras's ``TensorBoard`` callback: ``fit`` writes each epoch's logs, the weights'
histograms and the graph to event files under log_dir/train and log_dir/validation, which
TensorBoard's own reader reads back."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import xpnn as xn

needs_tensorboard = pytest.mark.skipif(
    importlib.util.find_spec("tensorboardX") is None
    or importlib.util.find_spec("tensorboard") is None,
    reason="tensorboardX and tensorboard are not both installed "
           "(pip install xpnn[summary] tensorboard)")


@needs_tensorboard
def test_fit_logs_epochs_histograms_and_the_graph(dev, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    X, y = xn.data.make_moons(64, noise=0.1, seed=0)
    model = xn.nn.NNClassifier([2, 8, 2], device=dev, seed=0)
    board = xn.callbacks.TensorBoard(tmp_path / "logs", histogram_freq=2)
    history = model.fit(X, y, epochs=3, batch_size=16, validation_data=(X[:16], y[:16]),
                        callbacks=[board], verbose=0)
    train = EventAccumulator(str(tmp_path / "logs" / "train"),
                             size_guidance={"histograms": 0}).Reload()
    validation = EventAccumulator(str(tmp_path / "logs" / "validation")).Reload()
    for found, prefix in ((train, ""), (validation, "val_")):
        for name in ("loss", "accuracy"):
            events = found.Scalars(f"epoch_{name}")
            assert [e.step for e in events] == [0, 1, 2]
            np.testing.assert_allclose([e.value for e in events], history[prefix + name],
                                       rtol=1e-6)
    weights = [variable.label for variable in model.params]
    assert len(weights) == 4 and sorted(train.Tags()["histograms"]) == sorted(weights)
    first = weights[0]
    assert [e.step for e in train.Histograms(first)] == [0, 2]  # every second epoch
    assert train.Histograms(first)[0].histogram_value.num == 2 * 8
    assert any(node.op == "MatMul" for node in train.Graph().node)


def test_tensorboard_refuses_a_bad_histogram_freq():
    with pytest.raises(ValueError, match="histogram_freq must be a whole number >= 0"):
        xn.callbacks.TensorBoard("logs", histogram_freq=-1)
