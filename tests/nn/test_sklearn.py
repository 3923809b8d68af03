"""NNClassifier as a scikit-learn estimator (issue #28): get_params/set_params, clone,
predict/predict_proba/score, and scikit-learn's own ``check_estimator``."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import xpnn as xn

# The checks that cannot apply, and why; every other check passes.
EXPECTED_FAILURES = {
    "check_estimators_fit_returns_self": "fit returns Keras's History (history['loss'], "
                                         "history.epoch), as xn.nn.Model.fit does",
    "check_readonly_memmap_input": "asserts fit returns self (see above); fitting read-only "
                                   "memmaps is test_fit_takes_read_only_memmaps",
    "check_sample_weight_equivalence_on_dense_data": "minibatch SGD: a weight of 2 is not two "
                                                     "copies of a row (other batches), as "
                                                     "for scikit-learn's SGD estimators",
}
PASSED_AT_LEAST = 56  # of 62 checks in scikit-learn 1.9 (13 before the network was lazy;
# 3 skip without pandas or SCIPY_ARRAY_API)


def test_get_params_set_params_and_clone(dev):
    sklearn_base = pytest.importorskip("sklearn.base", reason="scikit-learn is not installed")
    model = xn.nn.NNClassifier([2, 4, 2], activation="tanh", device=dev, seed=3)
    params = model.get_params()
    assert params == dict(units=[2, 4, 2], activation="tanh", device=dev, backend=None,
                          seed=3, dtype="float32", input_shape=None, warm_start=None,
                          epochs=None, batch_size=None, optimizer=None, learning_rate=None,
                          verbose=None)
    twin = sklearn_base.clone(model)
    assert twin.get_params() == params and twin is not model
    np.testing.assert_array_equal(twin.get_weights()[0], model.get_weights()[0])
    assert model.set_params(activation="relu", units=[2, 5, 2]) is model
    assert model.activation == "relu" and model.get_weights()[0].shape == (2, 5)
    with pytest.raises(ValueError, match="no parameter 'max_iter'"):
        model.set_params(max_iter=3)
    X, y = xn.data.make_blobs(n_per_class=20, seed=0)
    model.fit(X, y, epochs=20, learning_rate=0.1, verbose=0)
    proba = model.predict_proba(X)
    np.testing.assert_array_equal(model.predict(X), proba.argmax(1))
    assert model.score(X, y) == (model.predict(X) == y).mean()
    np.testing.assert_array_equal(model.classes_, [0, 1])


def test_check_estimator_passes_what_applies(dev):
    checks = pytest.importorskip("sklearn.utils.estimator_checks",
                                 reason="scikit-learn is not installed")
    # check_classifiers_train wants 83% accuracy from fit(X, y): fit's settings given here.
    model = xn.nn.NNClassifier([None, 8, None], device=dev, epochs=20, optimizer="adam",
                               learning_rate=0.05, verbose=0)
    results = checks.check_estimator(model,
                                     expected_failed_checks=EXPECTED_FAILURES, on_fail=None)
    failed = [r["check_name"] for r in results if r["status"] == "failed"]
    passed = [r["check_name"] for r in results if r["status"] == "passed"]
    assert failed == []
    assert len(passed) >= PASSED_AT_LEAST
    assert {"check_no_attributes_set_in_init", "check_fit_idempotent", "check_estimators_pickle",
            "check_classifiers_classes", "check_estimators_unfitted",
            "check_estimators_nan_inf", "check_methods_subset_invariance"} <= set(passed)


def test_init_stores_parameters_and_fit_takes_sizes_and_labels_from_the_data(dev):
    model = xn.nn.NNClassifier([None, 8, None], device=dev, seed=0)
    assert set(vars(model)) == {"_given", "_net"}  # no network yet
    with pytest.raises(AttributeError, match="not fitted yet.*units=\\[None, 8, None\\]"):
        model.predict(np.zeros((2, 3)))
    X, y = xn.data.make_blobs(n_per_class=20, seed=0)
    X = np.hstack([X, X[:, :1]])  # three features
    labels = np.array(["dog", "cat"])[y]
    model.fit(X, labels, epochs=30, learning_rate=0.1, verbose=0)
    assert model.n_features_in_ == 3 and model.units == [3, 8, 2]
    np.testing.assert_array_equal(model.classes_, ["cat", "dog"])
    assert set(model.predict(X)) <= {"cat", "dog"}
    assert model.score(X, labels) > 0.9
    with pytest.raises(ValueError, match="X has 2 features, but NNClassifier is expecting 3"):
        model.predict(X[:, :2])


def test_fit_on_fixed_units_names_both_widths(dev):
    model = xn.nn.NNClassifier([2, 4, 2], device=dev)
    X = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match=r"X has 3 features, but NNClassifier is expecting 2.*"
                                         r"units=\[2, 4, 2\] fixes 2"):
        model.fit(X, [0, 1, 0, 1], verbose=0)


def test_fit_starts_over_unless_warm_start(dev):
    X, y = xn.data.make_blobs(n_per_class=20, seed=0)
    first = xn.nn.NNClassifier([None, 4, None], device=dev, seed=0)
    h1 = first.fit(X, y, epochs=2, verbose=0)
    h2 = first.fit(X, y, epochs=2, verbose=0)
    assert h1["loss"] == h2["loss"]  # the same run again
    warm = xn.nn.NNClassifier([None, 4, None], device=dev, seed=0, warm_start=True)
    warm.fit(X, y, epochs=2, verbose=0)
    assert warm.fit(X, y, epochs=2, verbose=0)["loss"][0] < h1["loss"][-1]


def test_pickle_keeps_the_weights_and_classes_without_the_session(dev):
    X, y = xn.data.make_blobs(n_per_class=20, seed=0)
    model = xn.nn.NNClassifier([None, 4, None], device=dev, seed=0)
    model.fit(X, np.array([3, 7])[y], epochs=5, learning_rate=0.1, verbose=0)
    state = model.__getstate__()
    assert "session" not in repr(state.keys()) and set(state["arrays"]) == {
        "layers.0.W", "layers.0.b", "layers.1.W", "layers.1.b"}
    twin = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(twin.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(twin.classes_, [3, 7])


def test_fit_takes_read_only_memmaps(dev, tmp_path):
    X, y = xn.data.make_blobs(n_per_class=10, seed=0)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    Xm = np.load(tmp_path / "X.npy", mmap_mode="r")
    ym = np.load(tmp_path / "y.npy", mmap_mode="r")
    model = xn.nn.NNClassifier([None, 4, None], device=dev, seed=0)
    model.fit(Xm, ym, epochs=2, verbose=0)
    assert model.predict(Xm).shape == (20,)


@pytest.mark.parametrize("bad, message", [
    (lambda X, y: (np.where(X > 0, np.nan, X), y), "NaN"),
    (lambda X, y: (X, y + 0.5), "Unknown label type: continuous"),
    (lambda X, y: (X, np.zeros_like(y)), "at least 2 classes.*only one class"),
    (lambda X, y: (X.astype(complex), y), "Complex data not supported"),
    (lambda X, y: (X[:, 0], y), "Reshape your data"),
    (lambda X, y: (X[:, :0], y), r"0 feature\(s\)"),
])
def test_fit_refuses_what_scikit_learn_refuses(dev, bad, message):
    X, y = xn.data.make_blobs(n_per_class=10, seed=0)
    model = xn.nn.NNClassifier([None, 4, None], device=dev, seed=0)
    with pytest.raises(ValueError, match=message):
        model.fit(*bad(X, y), verbose=0)
    assert vars(model)["_net"] is None  # nothing built


def test_a_refused_refit_changes_nothing(dev):
    X, y = xn.data.make_blobs(n_per_class=20, seed=0)
    model = xn.nn.NNClassifier([None, 4, None], device=dev, seed=0)
    model.fit(X, y, epochs=3, learning_rate=0.1, verbose=0)
    before = model.get_weights()
    with pytest.raises(ValueError, match="learning_rate must be a finite number > 0"):
        model.fit(X, y, learning_rate=-1.0, verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_the_constructor_gives_fits_settings_and_grid_search_tunes_them(dev):
    model_selection = pytest.importorskip("sklearn.model_selection",
                                          reason="scikit-learn is not installed")
    X, y = xn.data.make_moons(64, noise=0.1, seed=0)
    model = xn.nn.NNClassifier([None, 4, None], device=dev, epochs=3, verbose=0)
    assert model.fit(X, y).epoch == [0, 1, 2]
    assert model.fit(X, y, epochs=2).epoch == [0, 1]  # fit's own argument first
    default = model.fit(X, y)["loss"]
    by_fit = model.fit(X, y, learning_rate=0.5)["loss"]
    assert model.set_params(learning_rate=0.5).fit(X, y)["loss"] == by_fit != default
    search = model_selection.GridSearchCV(model, {"learning_rate": [0.01, 0.5]}, cv=2)
    search.fit(X, y)
    assert search.best_params_["learning_rate"] in (0.01, 0.5)
    assert search.best_estimator_.get_params()["learning_rate"] == \
        search.best_params_["learning_rate"]


def test_pickle_a_stack_keeps_its_layers_and_weights(dev):
    X = np.random.default_rng(0).normal(size=(16, 4, 4, 1)).astype("float32")
    with xn.Graph().as_default():
        model = xn.nn.NNClassifier([xn.nn.Conv2D(1, 2, 3, seed=0), xn.nn.Flatten(),
                                    xn.nn.Linear(8, 3, seed=1)], input_shape=(4, 4, 1),
                                   device=dev)
    model.fit(X, np.arange(16) % 3, epochs=2, learning_rate=0.1, verbose=0)
    twin = pickle.loads(pickle.dumps(model))
    assert repr(twin.net) == repr(model.net) and twin.device.backend == dev.backend
    np.testing.assert_array_equal(twin.predict_proba(X), model.predict_proba(X))


def test_a_dataset_needs_the_sizes_first(dev):
    X, y = xn.data.make_blobs(n_per_class=10, seed=0)
    model = xn.nn.NNClassifier([None, 4, None], device=dev, verbose=0)
    with pytest.raises(AttributeError, match="not fitted yet.*call fit\\(X, y\\) first"):
        model.fit(xn.data.Dataset(X, y, batch_size=8))
    model.fit(X, np.array(["a", "b"])[y], epochs=1)
    history = model.fit(xn.data.Dataset(X, np.array(["a", "b"])[y], batch_size=8), epochs=1)
    assert len(history["loss"]) == 1 and model.classes_.tolist() == ["a", "b"]
