"""Tests for xpnn.metrics: host-side metrics from labels or scores of any namespace."""

from __future__ import annotations

import numpy as np
import pytest

from xpnn import metrics

Y_TRUE = np.array([0, 1, 2, 2, 1, 0, 2], dtype=np.int64)
Y_PRED = np.array([0, 2, 2, 1, 1, 0, 0], dtype=np.int64)  # 4 of 7 right
CONFUSION = np.array([[2, 0, 0], [0, 1, 1], [1, 1, 1]])


def _scores(labels, k=3):
    """Probabilities whose argmax is ``labels``."""
    p = np.full((len(labels), k), 0.1, dtype=np.float32)
    p[np.arange(len(labels)), labels] = 0.8
    return p


def test_accuracy_and_misclassification_rate_from_labels():
    acc = metrics.accuracy(Y_TRUE, Y_PRED)
    assert type(acc) is float and acc == 4 / 7
    err = metrics.misclassification_rate(Y_TRUE, Y_PRED)
    assert type(err) is float and err == 3 / 7
    assert metrics.accuracy([1, 1], [1, 1]) == 1.0
    assert metrics.misclassification_rate([0, 1, 1, 0], [1, 1, 1, 1]) == 0.5


def test_metrics_on_device_arrays(dev):
    t, s = dev.from_host(Y_TRUE), dev.from_host(_scores(Y_PRED))
    assert metrics.accuracy(t, s) == 4 / 7
    assert metrics.misclassification_rate(t, dev.from_host(Y_PRED)) == 3 / 7
    m = metrics.confusion_matrix(t, s)
    assert isinstance(m, np.ndarray) and m.dtype == np.int64
    np.testing.assert_array_equal(m, CONFUSION)


def test_scores_are_argmaxed_on_either_side():
    assert metrics.accuracy(Y_TRUE, _scores(Y_PRED)) == 4 / 7
    # One-hot truth against raw logits (negative numbers too).
    logits = np.log(_scores(Y_PRED)) - 3.0
    assert metrics.accuracy(np.eye(3)[Y_TRUE], logits) == 4 / 7


def test_float_labels_that_are_whole_numbers_are_accepted():
    assert metrics.accuracy(Y_TRUE.astype(np.float32), Y_PRED) == 4 / 7
    with pytest.raises(ValueError, match="integer class labels, got dtype float64"):
        metrics.accuracy([0.5, 1.0], [0, 1])


def test_confusion_matrix_rows_true_columns_predicted():
    m = metrics.confusion_matrix(Y_TRUE, Y_PRED)
    assert m.dtype == np.int64 and m.shape == (3, 3)
    np.testing.assert_array_equal(m, CONFUSION)
    assert m.sum() == len(Y_TRUE) and np.trace(m) == 4
    np.testing.assert_array_equal(metrics.confusion_matrix([0, 0], [1, 1]), [[0, 2], [0, 0]])


def test_confusion_matrix_n_classes():
    m = metrics.confusion_matrix([0, 1], [0, 1], n_classes=4)
    np.testing.assert_array_equal(m, np.diag([1, 1, 0, 0]))
    # Scores fix the width even when the top classes never win.
    assert metrics.confusion_matrix([0, 0], _scores([0, 0], k=5)).shape == (5, 5)
    with pytest.raises(ValueError, match=r"y_true has label 3 outside the valid range \[0, 2\)"):
        metrics.confusion_matrix([0, 3], [0, 1], n_classes=2)
    with pytest.raises(ValueError, match=r"y_pred has label -1"):
        metrics.confusion_matrix([0, 1], [0, -1])


@pytest.mark.parametrize(
    "fn", [metrics.accuracy, metrics.misclassification_rate, metrics.confusion_matrix]
)
def test_length_mismatch_names_both_lengths(fn):
    with pytest.raises(ValueError, match=r"len\(y_true\) = 3, len\(y_pred\) = 2"):
        fn([0, 1, 1], _scores([0, 1]))


def test_bad_shapes_and_empty_inputs():
    with pytest.raises(ValueError, match=r"y_pred must be labels .* got shape \(2, 2, 2\)"):
        metrics.accuracy([0, 1], np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="empty"):
        metrics.accuracy([], [])
