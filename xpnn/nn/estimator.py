"""The scikit-learn side of ``NNClassifier``: ``X`` and ``y`` checked as scikit-learn's
``validate_data`` checks them, with its messages (its ``check_estimator`` matches them), the
class labels found in ``y``, and scikit-learn's exception classes where it is installed.
scikit-learn is imported only on an error path, never by xpnn itself."""

from __future__ import annotations

import warnings

import array_api_compat
import numpy as np

from ..host import to_numpy


class NotFittedError(ValueError, AttributeError):
    """An estimator used before ``fit`` (scikit-learn's class where it is installed)."""


class DataConversionWarning(UserWarning):
    """Data given in another form than expected and converted (as scikit-learn's)."""


def _sklearn(name, fallback):
    """scikit-learn's exception class ``name`` where it is installed, so that its
    ``check_is_fitted`` and checks catch ours; else xpnn's own."""
    try:
        from sklearn import exceptions
    except ImportError:
        return fallback
    return getattr(exceptions, name, fallback)


def not_fitted(message) -> Exception:
    return _sklearn("NotFittedError", NotFittedError)(message)


def _is_sparse(X) -> bool:
    return type(X).__module__.startswith("scipy.sparse")


def check_X(X, n_features=None, flat=True, hint="", finite=True):
    """``X`` as an array, checked: dense, real numbers, at least one sample, finite (with
    ``finite``; else a NaN reaches the loss, which stops fit as Keras's TerminateOnNaN); with
    ``flat``, two-dimensional with ``n_features`` columns (any number >= 1 when None).
    Device arrays stay where they are; ``hint`` ends a wrong width's message."""
    if _is_sparse(X):
        raise TypeError("sparse input is not supported: pass a dense array (X.toarray())")
    if not array_api_compat.is_array_api_obj(X):
        X = np.asarray(X)
    if isinstance(X, np.ndarray) and X.dtype.kind in "OUS":
        X = X.astype(np.float64)  # raises, naming a value that is not a number
    if isinstance(X, np.ndarray) and X.dtype.kind == "c":
        raise ValueError("Complex data not supported: pass the real part (X.real) or split "
                         "it into real and imaginary columns")
    shape = tuple(X.shape)
    if flat:
        _check_width(shape, n_features, hint)
    if shape and shape[0] == 0:
        raise ValueError(f"X has no samples: Found array with 0 sample(s) (shape={shape}) "
                         f"while a minimum of 1 is required.")
    if finite:
        _check_finite(X)
    return X


def _check_width(shape, n_features, hint) -> None:
    want = f"X must have shape (n_samples, {n_features or 'n_features'}), got {shape}"
    if len(shape) == 1:
        raise ValueError(f"{want}. Reshape your data either using X.reshape(-1, 1) if your "
                         f"data has a single feature or X.reshape(1, -1) if it contains a "
                         f"single sample.")
    if len(shape) != 2:
        raise ValueError(want)
    if shape[1] == 0:
        raise ValueError(f"Found array with 0 feature(s) (shape={shape}) while a minimum of "
                         f"1 is required: {want}")
    if n_features is not None and shape[1] != n_features:
        raise ValueError(f"X has {shape[1]} features, but NNClassifier is expecting "
                         f"{n_features} features as input: {want}{hint}")


def _check_finite(X) -> None:
    xp = array_api_compat.array_namespace(X)
    if not xp.isdtype(X.dtype, "real floating"):
        return
    if not bool(xp.all(xp.isfinite(X))):
        raise ValueError("Input X contains NaN or infinity: remove or impute those values "
                         "first")


def column_y(y, who):
    """``y`` as a host array of one label per sample; a column (n, 1) is flattened with
    scikit-learn's DataConversionWarning."""
    if y is None:
        raise ValueError(f"{who}: NNClassifier requires y to be passed, but the target y is "
                         f"None: call fit(X, y)")
    if _is_sparse(y):
        raise TypeError(f"{who}: sparse labels are not supported: pass a dense array")
    y = np.asarray(to_numpy(y) if array_api_compat.is_array_api_obj(y) else y)
    if y.ndim == 2 and y.shape[1] == 1:
        warnings.warn("A column-vector y was passed when a 1d array was expected. Please "
                      "change the shape of y to (n_samples, ), for example using ravel().",
                      _sklearn("DataConversionWarning", DataConversionWarning), stacklevel=4)
        y = y.ravel()
    return y


def label_type(y) -> str:
    """scikit-learn's ``type_of_target`` in short: ``"continuous"`` (floats that are not
    whole numbers), ``"unknown"`` (objects mixing strings and numbers, or not labels), or
    ``"labels"``."""
    if y.dtype.kind == "f":
        return "labels" if np.isfinite(y).all() and (y == np.round(y)).all() else "continuous"
    if y.dtype.kind == "c" or y.dtype.kind == "V":
        return "unknown"
    if y.dtype.kind == "O":
        kinds = {type(v) for v in y.ravel()}
        if not (all(issubclass(k, str) for k in kinds)
                or all(issubclass(k, (int, np.integer)) for k in kinds)):
            return "unknown"
    return "labels"


def classes_of(y, n, who, sample_weight=None) -> np.ndarray:
    """The sorted class labels in ``y`` (one per sample, any labels: strings, ints not
    starting at 0), checked: class labels, at least two classes (among the samples of
    positive weight where ``sample_weight`` is given)."""
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"{who}: y must hold one label per sample, shape ({n},), got "
                         f"{y.shape}")
    kind = label_type(y)
    if kind != "labels":
        raise ValueError(f"{who}: Unknown label type: {kind}. NNClassifier is a classifier: "
                         f"y must hold class labels (ints or strings), got {y.dtype} values "
                         f"such as {y.ravel()[0]!r}")
    classes, kept = np.unique(y), y
    if sample_weight is not None:
        weights = np.asarray(to_numpy(sample_weight) if array_api_compat.is_array_api_obj(
            sample_weight) else sample_weight, dtype=np.float64)
        if weights.shape != (n,):
            raise ValueError(f"{who}: sample_weight must hold one weight per sample, shape "
                             f"({n},), got shape {weights.shape}")
        kept = y[weights > 0]
        if kept.size == 0:
            raise ValueError(f"{who}: every sample_weight is zero: give some weight > 0")
    seen = np.unique(kept)
    if seen.size < 2:
        raise ValueError(f"{who}: a classifier needs samples of at least 2 classes, but y "
                         f"holds only one class ({seen[0]!r})"
                         + (" with weight > 0" if sample_weight is not None else ""))
    return classes


def indices(y, classes) -> np.ndarray:
    """Each label of ``y`` as its index in ``classes`` (int32); an unknown label raises."""
    at = np.clip(np.searchsorted(classes, y), 0, len(classes) - 1)
    unknown = classes[at] != y
    if unknown.any():
        raise ValueError(f"label {y[unknown][0]!r} is not one of the classes seen in fit, "
                         f"{classes.tolist()}")
    return at.astype(np.int32)


def class_weight_by_index(class_weight, classes):
    """``{label: weight}`` as ``{class index: weight}``; a label not in ``classes`` raises."""
    if not isinstance(class_weight, dict):
        return class_weight
    unknown = [k for k in class_weight if k not in set(classes.tolist())]
    if unknown:
        raise ValueError(f"class_weight names class {unknown[0]!r}, which y does not hold; "
                         f"its classes are {classes.tolist()}")
    return {int(np.searchsorted(classes, k)): w for k, w in class_weight.items()}
