"""Classification metrics, computed on the host.

Each takes true labels and predictions as lists, NumPy arrays or arrays of any array-API
namespace (they are copied to the host first). A 2-D input of scores, probabilities or one-hot
rows stands for its argmax over axis 1.

>>> accuracy([0, 1, 1], [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
0.6666666666666666
"""

from __future__ import annotations

import array_api_compat
import numpy as np

from xpnn.host import to_numpy

__all__ = ["accuracy", "confusion_matrix", "misclassification_rate"]


def _host(y) -> np.ndarray:
    return to_numpy(y) if array_api_compat.is_array_api_obj(y) else np.asarray(y)


def _labels(a: np.ndarray, name: str) -> np.ndarray:
    """Int64 labels ``(n,)`` from labels or from 2-D scores (their argmax)."""
    if a.ndim == 2:
        return np.argmax(a, axis=1).astype(np.int64)
    if a.ndim != 1:
        raise ValueError(
            f"{name} must be labels (n,) or scores (n, n_classes), got shape {a.shape}"
        )
    integral = np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_
    if not integral and not (np.issubdtype(a.dtype, np.floating) and np.all(a == np.round(a))):
        raise ValueError(f"{name} must hold integer class labels, got dtype {a.dtype}")
    return a.astype(np.int64)


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray, int]:
    """Host labels for both, and the widest 2-D input's column count (0 if none)."""
    hosts = _host(y_true), _host(y_pred)
    t, p = _labels(hosts[0], "y_true"), _labels(hosts[1], "y_pred")
    if t.shape[0] != p.shape[0]:
        raise ValueError(
            f"y_true and y_pred differ in length: len(y_true) = {t.shape[0]}, "
            f"len(y_pred) = {p.shape[0]}"
        )
    if t.shape[0] == 0:
        raise ValueError("y_true and y_pred are empty: a metric needs at least one sample")
    width = max((a.shape[1] for a in hosts if a.ndim == 2), default=0)
    return t, p, width


def accuracy(y_true, y_pred) -> float:
    """The fraction of samples whose predicted class equals the true class.

    >>> accuracy([0, 1, 2, 2], [0, 1, 1, 2])
    0.75
    """
    t, p, _ = _pair(y_true, y_pred)
    return float(np.mean(t == p))


def misclassification_rate(y_true, y_pred) -> float:
    """The fraction of samples predicted wrongly (``1 - accuracy``, counted exactly).

    >>> misclassification_rate([0, 1, 2, 2], [0, 1, 1, 2])
    0.25
    """
    t, p, _ = _pair(y_true, y_pred)
    return float(np.mean(t != p))


def confusion_matrix(y_true, y_pred, n_classes: int | None = None) -> np.ndarray:
    """Counts ``M[i, j]`` of samples of true class ``i`` predicted as class ``j`` (int64).

    ``n_classes`` defaults to the width of 2-D scores, else to the largest label + 1.

    >>> confusion_matrix([0, 1, 1, 1], [0, 1, 0, 1]).tolist()
    [[1, 0], [1, 2]]
    """
    t, p, width = _pair(y_true, y_pred)
    if n_classes is None:
        n_classes = max(width, int(t.max()) + 1, int(p.max()) + 1)
    for name, labels in (("y_true", t), ("y_pred", p)):
        bad = labels[(labels < 0) | (labels >= n_classes)]
        if bad.size:
            raise ValueError(f"{name} has label {bad[0]} outside the valid range [0, {n_classes})")
    counts = np.bincount(t * n_classes + p, minlength=n_classes * n_classes)
    return counts.reshape(n_classes, n_classes).astype(np.int64)
